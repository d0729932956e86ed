//! A small Chrome DevTools Protocol client for the browser test: headless Chromium driven like a
//! user (navigate, click with the mouse, type, press Enter) and its live DOM read back as JSON.
//!
//! Transport: `--remote-debugging-pipe` rather than `--remote-debugging-port=0` + a WebSocket.
//! The pipe needs no dependency (no WebSocket client, no HTTP to find the page's socket), has no
//! port to discover from `DevToolsActivePort` or race for, lets no other local process connect,
//! and closes when the browser exits, so a crash shows up at once. Chromium reads commands from
//! fd 3 and writes answers and events to fd 4, each message one JSON text ended by a NUL byte;
//! std's `Command` can only hand over fds 0-2, so `sh` moves our stdin/stdout pipes to fds 3/4
//! (`exec` keeps one process id: the browser's).
//!
//! Every wait is bounded by one deadline for the whole session, so a hung browser fails the
//! test instead of hanging CI; Drop kills the browser's process group (on panic too).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A headless Chromium and one tab, attached over the pipe.
pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// The tab's flattened session (`Target.attachToTarget`).
    session: Option<String>,
    deadline: Instant,
    budget: Duration,
    log: PathBuf,
    closed: bool,
    /// Events received so far (`method` + `params`), e.g. `Runtime.exceptionThrown`.
    pub events: Vec<Value>,
}

impl Browser {
    /// Starts `chromium` with a fresh profile under `work` (its stderr goes to
    /// `work/chromium.log`); everything after must finish within `budget`.
    pub fn launch(chromium: &Path, work: &Path, budget: Duration) -> Browser {
        let profile = work.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = work.join("chromium.log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1200,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            // Its own process group, so Drop can end the renderers and helpers with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromium.display()));
        let to_browser = child.stdin.take().unwrap();
        let from = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            loop {
                let mut message = Vec::new();
                match r.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if message.last() == Some(&0) {
                    message.pop();
                }
                let value = serde_json::from_slice(&message).unwrap_or_else(
                    |e| json!({"unparsed": String::from_utf8_lossy(&message), "error": e.to_string()}),
                );
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: None,
            deadline: Instant::now() + budget,
            budget,
            log,
            closed: false,
            events: Vec::new(),
        }
    }

    /// The last lines of the browser's stderr, for failure messages (without the D-Bus noise
    /// of a machine with no session bus).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(":ERROR:dbus/"))
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        if let Err(e) = self
            .to_browser
            .write_all(&bytes)
            .and_then(|_| self.to_browser.flush())
        {
            panic!(
                "send {method} to chromium: {e} (exited?)\n{}",
                self.log_tail()
            );
        }
        self.next_id
    }

    /// Sends a command and waits for its answer: `Ok(result)` or `Err(error message)`.
    pub fn try_call_on(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.send(session, method, params);
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(message) => {
                    if message["id"].as_u64() == Some(id) {
                        return match message.get("error") {
                            Some(e) => Err(e.to_string()),
                            None => Ok(message["result"].clone()),
                        };
                    }
                    if message.get("method").is_some() {
                        self.events.push(message);
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "chromium did not answer {method} within the {:?} budget\n{}",
                    self.budget,
                    self.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "chromium closed the pipe while waiting for {method} (exited?)\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    /// A command on the browser (no session); an error answer fails the test.
    pub fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.try_call_on(None, method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// A command on the tab; an error answer fails the test.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone().expect("open_tab first");
        self.try_call_on(Some(&session), method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Opens a blank tab of `width` x `height` CSS pixels and attaches to it.
    pub fn open_tab(&mut self, width: u32, height: u32) {
        let target = self.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a targetId").to_string();
        let attached = self.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().expect("a sessionId").into());
        self.call("Page.enable", json!({}));
        // Collects `Runtime.exceptionThrown`: the pages' own script must not throw.
        self.call("Runtime.enable", json!({}));
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        // Headless tabs are never the focused window; focus must still move on click.
        self.call(
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        );
    }

    /// Loads `url` in the tab (the load itself is awaited with `wait_for`).
    pub fn navigate(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        if let Some(e) = r.get("errorText") {
            panic!("navigate to {url}: {e}");
        }
    }

    /// Evaluates `expression` in the page: its value (objects by value) or the thrown error.
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let session = self.session.clone().expect("open_tab first");
        let r = self.try_call_on(
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(e.to_string());
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Evaluates `expression`; a thrown error fails the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
    }

    /// Polls `expression` every 50 ms until it is truthy (errors while a page is being
    /// replaced count as not yet); returns that value. `what` names it in the failure.
    pub fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        loop {
            let last = match self.try_eval(expression) {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => v,
                Err(e) => Value::String(e),
            };
            // Leave time for the failure itself to be reported before the deadline.
            if Instant::now() + Duration::from_millis(500) >= self.deadline {
                let location = self.try_eval("location.href").unwrap_or_default();
                panic!(
                    "timed out waiting for {what} (last value {last}, at {location})\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the tab shows a fully loaded document at `path` (location.pathname).
    pub fn wait_for_page(&mut self, path: &str) {
        let path = serde_json::to_string(path).unwrap();
        self.wait_for(
            &format!("the page {path} to load"),
            &format!("location.pathname === {path} && document.readyState === 'complete'"),
        );
    }

    /// A left click with the mouse at viewport point (x, y), as a user's.
    pub fn click_at(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            );
        }
    }

    /// Scrolls the first element matching `selector` into view and clicks the centre of its first
    /// box (a link wrapped over two lines has two) with the mouse, after checking that the point
    /// hits that element (nothing drawn over it).
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let point = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
               e.scrollIntoView({{block: 'center'}});
               const r = e.getClientRects()[0] || e.getBoundingClientRect();
               const x = r.left + r.width / 2, y = r.top + r.height / 2;
               const hit = document.elementFromPoint(x, y);
               return {{x, y, hits: !!hit && (hit === e || e.contains(hit)),
                        hit: hit ? hit.outerHTML.slice(0, 200) : null}}; }})()"
        ));
        assert!(!point.is_null(), "nothing matches {selector}");
        assert!(
            point["hits"].as_bool() == Some(true),
            "{selector} is covered at its centre: {point}"
        );
        self.click_at(point["x"].as_f64().unwrap(), point["y"].as_f64().unwrap());
    }

    /// Types `text` into the focused element, as an IME or a paste would.
    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Presses and releases Enter (a form's implicit submission).
    pub fn press_enter(&mut self) {
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                   "nativeVirtualKeyCode": 13, "text": "\r", "unmodifiedText": "\r"}),
        );
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                   "nativeVirtualKeyCode": 13}),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }

    /// Page script errors seen so far (`Runtime.exceptionThrown` events).
    pub fn exceptions(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Runtime.exceptionThrown")
            .collect()
    }

    /// Asks the browser to quit; Drop then ends whatever is left.
    pub fn close(mut self) {
        let _ = self.try_call_on(None, "Browser.close", json!({}));
        self.closed = true;
        // The pipe closes when the browser has gone; a few seconds at most.
        let until = Instant::now() + Duration::from_secs(5);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.from_browser.recv_timeout(left) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chromium's log (last lines):\n{}", self.log_tail());
        }
        // The group is killed before the leader is reaped, so its id cannot have been reused.
        let _ = Command::new("sh")
            .args(["-c", r#"kill -KILL -- "-$1""#, "sh"])
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.closed {
            eprintln!("chromium killed (not closed)");
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Standard base64 (`Page.captureScreenshot`'s `data`).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("iVBORw=="), b"\x89PNG");
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
    assert_eq!(base64_decode("YWJj"), b"abc");
}

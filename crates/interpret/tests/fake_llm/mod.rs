//! A fake language-model server on loopback for the describe tests: it speaks Anthropic's
//! Messages API (`POST .../v1/messages`) and OpenAI's chat completions
//! (`POST .../chat/completions`, with `logprobs` when asked), answers through a function of the
//! prompt, reports token use as `len / 4`, and injects failures by rule: an HTTP status (with
//! `retry-after`), a sleep before answering, a malformed body, or a hang that tells the test
//! and never answers. One thread per connection; every request is recorded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What to do instead of (or before) a normal answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// This status and a JSON error body, with `retry-after` when given.
    Status(u16, Option<String>),
    /// Sleep, then answer normally (a client with a shorter timeout gives up first).
    Sleep(Duration),
    /// HTTP 200 with this body.
    Body(String),
    /// Tell the test (through [`FakeLlm::hung`]) and never answer.
    Hang,
}

/// Applies `injection` to the next `times` requests whose prompt contains `contains`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub contains: String,
    pub injection: Injection,
    pub times: usize,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: String,
    pub body: Value,
    pub prompt: String,
    pub at: Instant,
    /// The injection applied, if any.
    pub injection: Option<Injection>,
    /// A 200 with the API's JSON was sent.
    pub answered: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

type Answer = dyn Fn(&str) -> String + Send + Sync;

pub struct FakeLlm {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub rules: Arc<Mutex<VecDeque<Rule>>>,
    pub hung: mpsc::Receiver<usize>,
    /// The request (0-based, in arrival order) that hangs, whatever its prompt.
    pub hang_at: Arc<Mutex<Option<usize>>>,
}

impl FakeLlm {
    pub fn start(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rules: Arc<Mutex<VecDeque<Rule>>> = Arc::new(Mutex::new(VecDeque::new()));
        let (hang_sender, hung) = mpsc::channel();
        let answer: Arc<Answer> = Arc::new(answer);
        let hang_at = Arc::new(Mutex::new(None));
        let (r, ru, h) = (requests.clone(), rules.clone(), hang_at.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Shared {
                    requests: r.clone(),
                    rules: ru.clone(),
                    hang_at: h.clone(),
                    answer: answer.clone(),
                    hang: hang_sender.clone(),
                };
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeLlm {
            url,
            requests,
            rules,
            hung,
            hang_at,
        }
    }

    /// The Anthropic base URL (the client appends `/v1/messages`).
    pub fn anthropic_url(&self) -> String {
        self.url.clone()
    }

    /// The OpenAI-compatible base URL (the client appends `/chat/completions`).
    pub fn openai_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn inject(&self, contains: &str, injection: Injection, times: usize) {
        self.rules.lock().unwrap().push_back(Rule {
            contains: contains.to_string(),
            injection,
            times,
        });
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

struct Shared {
    requests: Arc<Mutex<Vec<Request>>>,
    rules: Arc<Mutex<VecDeque<Rule>>>,
    hang_at: Arc<Mutex<Option<usize>>>,
    answer: Arc<Answer>,
    hang: mpsc::Sender<usize>,
}

fn serve(mut stream: std::net::TcpStream, shared: &Shared) {
    let (requests, rules, answer, hang) = (
        &*shared.requests,
        &*shared.rules,
        &*shared.answer,
        &shared.hang,
    );
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut headers = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        headers.push_str(&line);
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let injection = {
        let mut rules = rules.lock().unwrap();
        let found = rules
            .iter_mut()
            .find(|r| r.times > 0 && prompt.contains(&r.contains))
            .map(|r| {
                r.times -= 1;
                r.injection.clone()
            });
        rules.retain(|r| r.times > 0);
        found
    };
    let index = {
        let mut r = requests.lock().unwrap();
        r.push(Request {
            path: path.clone(),
            headers,
            body: body.clone(),
            prompt: prompt.clone(),
            at: Instant::now(),
            injection: injection.clone(),
            answered: false,
            input_tokens: 0,
            output_tokens: 0,
        });
        r.len() - 1
    };
    let injection = if *shared.hang_at.lock().unwrap() == Some(index) {
        Some(Injection::Hang)
    } else {
        injection
    };
    let (status, extra, reply) = match &injection {
        Some(Injection::Status(code, retry_after)) => (
            *code,
            retry_after
                .as_ref()
                .map_or(String::new(), |s| format!("retry-after: {s}\r\n")),
            json!({"error": {"type": "injected", "message": format!("injected {code}")}})
                .to_string(),
        ),
        Some(Injection::Body(text)) => (200, String::new(), text.clone()),
        Some(Injection::Hang) => {
            let _ = hang.send(index);
            std::thread::sleep(Duration::from_secs(3600));
            return;
        }
        Some(Injection::Sleep(d)) => {
            std::thread::sleep(*d);
            normal(&path, &body, &prompt, answer, requests, index)
        }
        None => normal(&path, &body, &prompt, answer, requests, index),
    };
    let reason = if status == 200 { "OK" } else { "Injected" };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.flush();
}

fn normal(
    path: &str,
    body: &Value,
    prompt: &str,
    answer: &Answer,
    requests: &Mutex<Vec<Request>>,
    index: usize,
) -> (u16, String, String) {
    let text = answer(prompt);
    let (input, output) = (prompt.len() as u64 / 4 + 1, text.len() as u64 / 4 + 1);
    {
        let mut r = requests.lock().unwrap();
        r[index].answered = true;
        r[index].input_tokens = input;
        r[index].output_tokens = output;
    }
    let reply = if path.ends_with("/chat/completions") {
        let mut choice = json!({"index": 0, "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"});
        if body["logprobs"] == json!(true) {
            choice["logprobs"] = json!({ "content": logprobs_of(&text) });
        }
        json!({"id": "fake", "object": "chat.completion", "choices": [choice],
            "usage": {"prompt_tokens": input, "completion_tokens": output,
                      "total_tokens": input + output}})
    } else {
        json!({"id": "fake", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": input, "output_tokens": output}})
    };
    (200, String::new(), reply.to_string())
}

/// One token per character; a `1` is given P(1) = 0.8 and a `0` P(1) = 0.3 among its top
/// alternatives (so AUROC of the answers is computable and not trivially 0 or 1 for a liar).
fn logprobs_of(text: &str) -> Vec<Value> {
    text.chars()
        .map(|c| {
            let token = c.to_string();
            let top = match c {
                '1' => json!([{"token": "1", "logprob": 0.8f64.ln()},
                              {"token": "0", "logprob": 0.2f64.ln()}]),
                '0' => json!([{"token": "0", "logprob": 0.7f64.ln()},
                              {"token": "1", "logprob": 0.3f64.ln()}]),
                _ => json!([{"token": token, "logprob": 0.0}]),
            };
            json!({"token": token, "logprob": 0.0, "top_logprobs": top})
        })
        .collect()
}

/// Answers the seed protocol's prompts: a sentence for an explain prompt, `i: value` lines for
/// a predict prompt.
pub fn seed_answer(prompt: &str) -> String {
    match prompt.split("Reply with exactly ").nth(1) {
        Some(rest) => {
            let k: usize = rest.split(' ').next().unwrap().parse().unwrap();
            (1..=k)
                .map(|i| format!("{i}: {}", (i % 3) as f64 / 2.0))
                .collect::<Vec<_>>()
                .join("\n")
        }
        None => "Proteins of the planted family.".to_string(),
    }
}

//! `plmscope describe` and `plmscope score`, the real binary against a real HTTP server on
//! loopback started by the test, which speaks both the Anthropic Messages API and the OpenAI
//! chat-completions API and injects 429 (with retry-after), 500, a malformed body and 401.
//! The atlas comes from a small study on the real data in ../shared/data (120 E. coli
//! proteins, a random-weight ESM2 t6_8M, a 16-latent protein-level TopK dictionary so that
//! features pass the seed protocol's 34-active-protein minimum).

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{data, fails, ok, plmscope, s, BIN};
use rusqlite::Connection;

const STUDY: &str = r#"
name = "describe"
out = "out"

[[proteins]]
fasta = "{ecoli}"
max = 120

[[models]]
name = "t6"
init = { arch = "esm2_t6_8M", seed = 0 }

[embed]
layers = [2]
levels = ["protein"]

[[dictionaries]]
name = "p"
level = "protein"
k = 8
latents = 16
steps = 60
batch = 32
checkpoint_every = 20

[analyze]
go = "{go}"
annotations = ["{go_csv}", "{meta}"]
"#;

fn study_text() -> String {
    STUDY
        .replace(
            "{ecoli}",
            &data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
        )
        .replace("{go}", &data("go-basic.obo"))
        .replace("{go_csv}", &data("ecoli_k12/UP000000625_83333_go.csv"))
        .replace("{meta}", &data("ecoli_k12/Ecoli_metadata.txt"))
}

const ATLAS: &str = "out/t6/atlas/p.layer2.resid_post.protein.sqlite";

/// The study's folder, run once (no `[describe]`).
fn fixture() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("describe_cli");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("study.toml"), study_text()).unwrap();
        ok(&plmscope(&["run", s(&root.join("study.toml"))]));
        root
    })
}

/// A fresh copy of the fixture's atlas for one test.
fn atlas(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("describe_cli_tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("atlas.sqlite");
    std::fs::copy(fixture().join(ATLAS), &path).unwrap();
    path
}

#[derive(Clone, Debug)]
enum Fault {
    TooMany,
    ServerError,
    Malformed,
    Unauthorized,
}

#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: String,
    prompt: String,
    status: u16,
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    always_401: bool,
    delay: Duration,
    requests: Vec<Request>,
}

/// The fake API: `/v1/messages` answers as Anthropic, `/chat/completions` as OpenAI. Explain
/// prompts get one sentence, predict prompts one number per protein; usage is 1000 input and
/// 100 output tokens per call.
struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Fake { url, state }
    }

    fn fault(&self, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .extend(faults.iter().cloned());
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests per prompt text.
    fn per_prompt(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.requests() {
            *counts.entry(r.prompt).or_default() += 1;
        }
        counts
    }
}

fn serve(stream: std::net::TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (fault, delay) = {
        let mut s = state.lock().unwrap();
        let fault = if s.always_401 {
            Some(Fault::Unauthorized)
        } else {
            s.faults.pop_front()
        };
        (fault, s.delay)
    };
    std::thread::sleep(delay);
    let text = match prompt.split("Reply with exactly ").nth(1) {
        Some(rest) => {
            let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
            (1..=n)
                .map(|i| format!("{i}: {}", (i % 3) as f64 / 2.0))
                .collect::<Vec<_>>()
                .join("\n")
        }
        None => "Proteins involved in membrane transport.".to_string(),
    };
    let openai = path.ends_with("/chat/completions");
    let reply = if openai {
        serde_json::json!({"choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100}})
    } else {
        serde_json::json!({"content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 1000, "output_tokens": 100}})
    }
    .to_string();
    let (status, extra, reply) = match fault {
        None => (200, "", reply),
        Some(Fault::TooMany) => (429, "retry-after: 0\r\n", "{\"error\":\"rate\"}".into()),
        Some(Fault::ServerError) => (500, "", "{\"error\":\"overloaded\"}".into()),
        Some(Fault::Malformed) => (200, "", "{\"content\": oops".into()),
        Some(Fault::Unauthorized) => (
            401,
            "",
            "{\"error\":{\"message\":\"invalid x-api-key\"}}".into(),
        ),
    };
    state.lock().unwrap().requests.push(Request {
        path,
        headers: head.to_ascii_lowercase(),
        prompt,
        status,
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

fn describe_cmd(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["--threads", "2", "describe"])
        .args(args)
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("OPENAI_API_KEY", "test-openai-key");
    command
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

fn db(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn log_path(atlas: &Path) -> PathBuf {
    atlas.with_file_name("atlas.descriptions.jsonl")
}

fn log_lines(atlas: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log_path(atlas))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn anthropic_run_retries_records_and_prints_progress_and_summary() {
    let atlas = atlas("anthropic");
    let fake = Fake::start();
    // The first call meets a 429 (retry-after 0), then a 500, then a malformed body.
    fake.fault(&[Fault::TooMany, Fault::ServerError, Fault::Malformed]);
    let out = run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &fake.url,
        "--sample",
        "3",
        "--concurrency",
        "1",
        "--price-table",
        &price_table(&atlas),
    ]));
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let db = db(&atlas);
    let described = count(
        &db,
        "SELECT COUNT(*) FROM descriptions WHERE status = 'ok' AND provider = 'anthropic'",
    );
    let failed = count(
        &db,
        "SELECT COUNT(*) FROM descriptions WHERE status <> 'ok'",
    );
    assert_eq!(failed, 0, "{stderr}");
    assert!(
        described >= 4,
        "features and neurons described: {described}"
    );
    // Every unit: one explain and one predict call, plus the three faults.
    let requests = fake.requests();
    assert_eq!(requests.len() as i64, 2 * described + 3);
    assert_eq!(
        requests.iter().filter(|r| r.status == 429).count()
            + requests.iter().filter(|r| r.status == 500).count(),
        2
    );
    for r in &requests {
        assert_eq!(r.path, "/v1/messages");
        assert!(r.headers.contains("x-api-key: test-key"));
        assert!(r.headers.contains("anthropic-version: 2023-06-01"));
    }
    assert_eq!(fake.per_prompt().len() as i64, 2 * described);
    // The log: every answered call, with tokens and cost ($1 / $10 per million tokens).
    let log = log_lines(&atlas);
    let answered: Vec<_> = log.iter().filter(|l| l["error"].is_null()).collect();
    assert_eq!(answered.len() as i64, 2 * described);
    assert!(answered.iter().all(|l| l["input_tokens"] == 1000
        && l["output_tokens"] == 100
        && (l["cost_usd"].as_f64().unwrap() - 0.002).abs() < 1e-12));
    let spent: f64 = db
        .query_row(
            "SELECT SUM(cost_usd) FROM descriptions WHERE provider = 'anthropic'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((spent - 0.002 * 2.0 * described as f64).abs() < 1e-9);
    assert!(stdout.contains(&format!("spent: ${spent:.4}")), "{stdout}");
    // Progress lines (stderr is not a terminal) and the summary table.
    assert!(
        stderr.contains(&format!("[{described}/{described}]")),
        "{stderr}"
    );
    assert!(stderr.contains("retry 1"), "{stderr}");
    assert!(stdout.contains("descriptions (gujral2025 anthropic claude-test)"));
    let features: i64 = count(
        &db,
        "SELECT COUNT(*) FROM descriptions d JOIN units u USING (unit) WHERE u.kind = 'feature'",
    );
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("units described"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3], features.to_string(), "{row}");
    assert_eq!(cells[5], (described - features).to_string(), "{row}");
    assert!(stdout.contains("share with r > 0.5"));
    // A rerun asks nothing.
    let again = ok(&run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &fake.url,
        "--sample",
        "3",
    ])));
    assert_eq!(fake.requests().len(), requests.len());
    assert!(again.contains("3 done before"), "{again}");
}

fn price_table(atlas: &Path) -> String {
    let path = atlas.with_file_name("prices.toml");
    std::fs::write(
        &path,
        "[models]\n\"claude-test\" = { input = 1.0, output = 10.0 }\n\"gpt-test\" = { input = 2.0, output = 20.0 }\n",
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn openai_compatible_server_and_score_writes_new_rows_keeping_the_originals() {
    let atlas = atlas("openai");
    let fake = Fake::start();
    let base = format!("{}/v1", fake.url);
    let prices = price_table(&atlas);
    let out = run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "openai",
        "--model",
        "gpt-test",
        "--base-url",
        &base,
        "--units",
        "features",
        "--sample",
        "4",
        "--price-table",
        &prices,
    ]));
    let stdout = ok(&out);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.path == "/v1/chat/completions"
        && r.headers.contains("authorization: bearer test-openai-key")));
    let db = db(&atlas);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM descriptions WHERE provider = 'openai' AND status = 'ok'"
        ),
        4
    );
    // $2 / $20 per million: 1000 * 2e-6 + 100 * 2e-5 = 0.004 per call, 8 calls.
    assert!(stdout.contains("spent: $0.0320"), "{stdout}");
    let originals: Vec<(i64, String, f64)> = db
        .prepare("SELECT unit, text, pearson FROM descriptions ORDER BY unit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    // A wrong seed would score on other proteins: refused.
    let score = |extra: &[&str]| {
        let mut command = Command::new(BIN);
        command
            .args(["--threads", "2", "score", "--atlas", s(&atlas)])
            .args(["--provider", "anthropic", "--model", "claude-test"])
            .args(["--base-url", &fake.url, "--units", "features"])
            .args(extra)
            .env("ANTHROPIC_API_KEY", "test-key");
        command.output().unwrap()
    };
    let refused = fails(&score(&["--seed", "7"]));
    assert!(refused.contains("--seed"), "{refused}");
    let before = fake.requests().len();
    let stdout = ok(&score(&["--price-table", &prices]));
    assert_eq!(
        fake.requests().len() - before,
        4,
        "one predict call per description"
    );
    let new_requests = &fake.requests()[before..];
    // The same held-out proteins: each scoring prompt is the prompt the describe run sent.
    let described_prompts: BTreeSet<&str> = requests.iter().map(|r| r.prompt.as_str()).collect();
    assert!(new_requests
        .iter()
        .all(|r| described_prompts.contains(r.prompt.as_str())));
    let scores: Vec<(i64, String, String, String, f64)> = db
        .prepare(
            "SELECT unit, provider, model, scorer_provider || ' ' || scorer_model, pearson \
             FROM description_scores ORDER BY unit",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scores.len(), 4);
    for (score, original) in scores.iter().zip(&originals) {
        assert_eq!(score.0, original.0);
        assert_eq!((score.1.as_str(), score.2.as_str()), ("openai", "gpt-test"));
        assert_eq!(score.3, "anthropic claude-test");
        // The fake predicts alike for any model: the same r.
        assert!((score.4 - original.2).abs() < 1e-12);
    }
    assert!(stdout.contains("scored now 4"), "{stdout}");
    let after: Vec<(i64, String, f64)> = db
        .prepare("SELECT unit, text, pearson FROM descriptions ORDER BY unit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(after, originals, "the original rows stay");
    // Scored before: a rerun asks nothing.
    let n = fake.requests().len();
    let again = ok(&score(&[]));
    assert_eq!(fake.requests().len(), n);
    assert!(again.contains("scored before 4"), "{again}");
}

#[test]
fn dry_run_calls_nothing_and_estimates_tokens_and_cost() {
    let atlas = atlas("dry");
    // The default API root (api.anthropic.com): a dry run must not reach it, or anything.
    let fake = Fake::start();
    let prompts = atlas.with_file_name("prompts");
    let stdout = ok(&run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-haiku-4-5",
        "--sample",
        "2",
        "--dry-run",
        "--prompts-dir",
        s(&prompts),
    ])));
    assert!(fake.requests().is_empty());
    assert!(!log_path(&atlas).exists());
    assert_eq!(count(&db(&atlas), "SELECT COUNT(*) FROM descriptions"), 0);
    assert!(
        stdout.contains("dry run, nothing called: 4 units"),
        "{stdout}"
    );
    assert!(stdout.contains("estimated cost: $"), "{stdout}");
    assert!(stdout.contains("at $1 / $5 per million"), "{stdout}");
    // The prompt files: an explain and a score prompt per unit, protein names from the FASTA.
    let files: Vec<_> = std::fs::read_dir(&prompts).unwrap().collect();
    assert_eq!(files.len(), 8);
    let explain = std::fs::read_dir(&prompts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".explain.txt"))
        .unwrap();
    let text = std::fs::read_to_string(explain).unwrap();
    assert!(text.contains("ACTIVE PROTEINS") && text.contains("organism: Escherichia coli"));
    assert!(text.contains("GO biological process:"));
}

#[test]
fn a_refused_key_stops_at_once_naming_the_variable() {
    let atlas = atlas("unauthorized");
    let fake = Fake::start();
    fake.state.lock().unwrap().always_401 = true;
    let out = run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &fake.url,
        "--sample",
        "3",
        "--concurrency",
        "1",
    ]));
    let stderr = fails(&out);
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert_eq!(fake.requests().len(), 1, "no retry, no further unit");
    // No key at all: refused before any call.
    let mut command = describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "openai",
        "--model",
        "gpt-test",
    ]);
    command.env_remove("OPENAI_API_KEY");
    let stderr = fails(&run(command));
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn killed_mid_run_a_rerun_asks_nothing_already_answered() {
    let atlas = atlas("killed");
    let fake = Fake::start();
    fake.state.lock().unwrap().delay = Duration::from_millis(300);
    let args = [
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &fake.url,
        "--sample",
        "4",
        "--concurrency",
        "1",
    ];
    let mut command = describe_cmd(&args);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while fake.requests().len() < 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let answered: BTreeSet<String> = log_lines(&atlas)
        .iter()
        .filter(|l| l["error"].is_null())
        .map(|l| l["prompt"].as_str().unwrap().to_string())
        .collect();
    assert!(
        answered.len() >= 4,
        "{} answered before the kill",
        answered.len()
    );
    let before = fake.requests().len();
    fake.state.lock().unwrap().delay = Duration::ZERO;
    ok(&run(describe_cmd(&args)));
    let rerun = &fake.requests()[before..];
    for r in rerun {
        assert!(
            !answered.contains(&r.prompt),
            "a prompt answered before the kill was asked again"
        );
    }
    // Every prompt answered exactly once overall (the one in flight at the kill may repeat).
    let counts = fake.per_prompt();
    assert!(
        counts.values().filter(|&&n| n > 1).count() <= 1,
        "{counts:?}"
    );
    let db = db(&atlas);
    let rows = count(&db, "SELECT COUNT(*) FROM descriptions");
    let units = count(&db, "SELECT COUNT(DISTINCT unit) FROM descriptions");
    assert_eq!(rows, units, "one row per unit");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM descriptions WHERE status = 'ok'"),
        rows
    );
    assert_eq!(counts.len() as i64, 2 * rows);
}

#[test]
fn a_study_with_a_replay_describe_section_runs_end_to_end() {
    let atlas = atlas("study_source");
    let fake = Fake::start();
    // The replies to replay: a describe run on the same atlas against the fake server.
    ok(&run(describe_cmd(&[
        "--atlas",
        s(&atlas),
        "--provider",
        "anthropic",
        "--model",
        "claude-test",
        "--base-url",
        &fake.url,
        "--sample",
        "3",
    ])));
    let expected: Vec<(i64, String, f64)> = db(&atlas)
        .prepare("SELECT unit, text, pearson FROM descriptions ORDER BY unit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // The study, copied with its finished stages, gains a [describe] section.
    let dir = atlas.with_file_name("study");
    copy_dir(fixture(), &dir);
    let text = format!(
        "{}\n[describe]\nprovider = \"replay\"\nmodel = \"claude-test\"\nsample = 3\nreplay_log = \"{}\"\n",
        study_text(),
        log_path(&atlas).display()
    );
    std::fs::write(dir.join("study.toml"), text).unwrap();
    let plan = ok(&plmscope(&["run", s(&dir.join("study.toml")), "--plan"]));
    assert!(
        plan.contains("describe/t6/p/layer2.resid_post.protein"),
        "{plan}"
    );
    let stdout = ok(&plmscope(&["run", s(&dir.join("study.toml"))]));
    assert!(
        stdout.contains("== describe/t6/p/layer2.resid_post.protein"),
        "{stdout}"
    );
    assert!(
        stdout.contains("descriptions (gujral2025 replay claude-test)"),
        "{stdout}"
    );
    let study_atlas = dir.join(ATLAS);
    let got: Vec<(i64, String, f64)> = db(&study_atlas)
        .prepare("SELECT unit, text, pearson FROM descriptions ORDER BY unit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, expected);
    assert!(study_atlas.with_extension("describe.json").exists());
    let again = ok(&plmscope(&["run", s(&dir.join("study.toml"))]));
    assert!(again.contains("up to date; nothing to run"), "{again}");
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

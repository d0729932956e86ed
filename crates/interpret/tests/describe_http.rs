//! describe against a real HTTP server on loopback (tests/fake_llm) that speaks both Anthropic's
//! Messages API and OpenAI's chat completions and injects failures: 429 with `retry-after` (the
//! wait is honoured), 500 and timeouts (retried), a malformed body (asked again once, then
//! recorded with its raw text, the run going on; a rerun asks again only with `retry_failed`),
//! 401 (the run stops at once, naming the key variable, with no further request), other 4xx
//! (never retried); token use read from the usage fields into the spend; no prompt asked twice
//! across reruns; and `kill -9` of a describing process: the rerun asks nothing for a unit or a
//! prompt already answered.

mod fake_llm;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_llm::{seed_answer, FakeLlm, Injection};
use plmscope_interpret::activations::Activations;
use plmscope_interpret::atlas::UnitKind;
use plmscope_interpret::describe::*;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};

const PRICE: Price = Price {
    input_per_mtok: 3.0,
    output_per_mtok: 15.0,
};

/// 120 proteins; feature u (0..3) is active on proteins u*10 .. u*10+60 with rising values.
fn small_atlas(dir: &Path) -> PathBuf {
    let n = 120u32;
    let accessions: Vec<String> = (0..n).map(|i| format!("P{i:05}")).collect();
    let mut row_ptr = vec![0u64];
    let (mut feature, mut value) = (Vec::new(), Vec::new());
    for p in 0..n {
        for u in 0..3u32 {
            if p >= u * 10 && p < u * 10 + 60 {
                feature.push(u);
                value.push((p - u * 10 + 1) as f32);
            }
        }
        row_ptr.push(feature.len() as u64);
    }
    let codes = SparseCodes {
        row_ptr: &row_ptr,
        feature: &feature,
        value: &value,
        n_units: 3,
    };
    let path = dir.join("atlas.sqlite");
    let inputs = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: None,
        features: Some(Activations::SparseProteins(codes)),
        neurons: None,
        go: None,
        families: None,
        concepts: None,
    };
    analyze(inputs, AnalysisOptions::default(), &path).unwrap();
    write_protein_activations(
        &path,
        UnitKind::Feature,
        0,
        &Activations::SparseProteins(codes),
        n,
    )
    .unwrap();
    path
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    Anthropic,
    OpenAi,
}

fn options(server: &FakeLlm, api: Api) -> DescribeOptions {
    let (kind, url) = match api {
        Api::Anthropic => (ProviderKind::Anthropic, server.anthropic_url()),
        Api::OpenAi => (ProviderKind::OpenAi, server.openai_url()),
    };
    let mut provider = ProviderOptions::new(kind, "model-under-test");
    provider.base_url = Some(url);
    provider.api_key = Some("test-key".into());
    provider.retry_base = Duration::from_millis(5);
    provider.timeout = Duration::from_secs(5);
    provider.price = Some(PRICE);
    let mut options = DescribeOptions::new(provider);
    options.units = UnitSelection::Features;
    options.concurrency = 1;
    options
}

/// (unit, status, text, raw_reply, error) of every description row.
type Row = (u32, String, String, Option<String>, Option<String>);

fn rows(atlas: &Path) -> Vec<Row> {
    let db = rusqlite::Connection::open(atlas).unwrap();
    let mut statement = db
        .prepare("SELECT unit, status, text, raw_reply, error FROM descriptions ORDER BY unit")
        .unwrap();
    statement
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// What the answered requests cost at `PRICE`, from the server's own token counts.
fn server_cost(requests: &[fake_llm::Request]) -> f64 {
    requests
        .iter()
        .filter(|r| r.answered && r.injection.is_none())
        .map(|r| PRICE.cost(r.input_tokens, r.output_tokens))
        .sum()
}

#[test]
fn retry_after_on_429_is_honoured_on_both_apis() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let dir = tempfile::tempdir().unwrap();
        let atlas = small_atlas(dir.path());
        let server = FakeLlm::start(seed_answer);
        server.inject("", Injection::Status(429, Some("1".into())), 1);
        let mut options = options(&server, api);
        options.sample = 1;
        let mut waits = Vec::new();
        let summary = describe(&atlas, &options, &mut |e| {
            if let DescribeEvent::Retrying { retry, .. } = e {
                waits.push((retry.wait, retry.reason.clone()));
            }
        })
        .unwrap();
        assert_eq!(summary.features.unwrap().described, 1, "{api:?}");
        assert_eq!(waits.len(), 1);
        assert_eq!(
            waits[0].0,
            Duration::from_secs(1),
            "{api:?}: retry-after 1 s"
        );
        assert!(waits[0].1.contains("429"), "{}", waits[0].1);
        let requests = server.requests();
        assert_eq!(
            requests.len(),
            3,
            "{api:?}: the 429, then explain and predict"
        );
        let gap = requests[1].at - requests[0].at;
        assert!(
            gap >= Duration::from_millis(950) && gap < Duration::from_millis(2500),
            "{api:?}: waited {gap:?} for retry-after: 1 (backoff alone would be ~5 ms)"
        );
        assert_eq!(requests[0].prompt, requests[1].prompt);
        let path_ok = match api {
            Api::Anthropic => requests.iter().all(|r| r.path == "/v1/messages"),
            Api::OpenAi => requests.iter().all(|r| r.path == "/v1/chat/completions"),
        };
        assert!(path_ok, "{api:?}: {:?}", requests[0].path);
    }
}

#[test]
fn server_errors_and_timeouts_are_retried_other_4xx_are_not() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let dir = tempfile::tempdir().unwrap();
        let atlas = small_atlas(dir.path());
        let server = FakeLlm::start(seed_answer);
        // Feature 0's explain prompt: two 500s, then a reply slower than the client's timeout,
        // then an answer. Feature 1's explain prompt: a 400, which is not retried.
        server.inject("studying feature 0 ", Injection::Status(500, None), 2);
        server.inject(
            "studying feature 0 ",
            Injection::Sleep(Duration::from_millis(3000)),
            1,
        );
        server.inject("studying feature 1 ", Injection::Status(400, None), 5);
        let mut options = options(&server, api);
        // Short enough to keep the test fast, long enough for a loaded machine's normal replies.
        options.provider.timeout = Duration::from_millis(1000);
        let mut reasons = Vec::new();
        let started = Instant::now();
        let summary = describe(&atlas, &options, &mut |e| {
            if let DescribeEvent::Retrying { retry, unit } = e {
                reasons.push((*unit, retry.reason.clone()));
            }
        })
        .unwrap();
        let counts = summary.features.unwrap();
        assert_eq!((counts.described, counts.failed), (2, 1), "{api:?}");
        assert_eq!(reasons.len(), 3, "{api:?}: {reasons:?}");
        assert!(reasons.iter().all(|r| r.0 == 0));
        assert!(reasons[0].1.contains("HTTP 500") && reasons[1].1.contains("HTTP 500"));
        assert!(
            reasons[2].1.contains("transport") || reasons[2].1.contains("timed out"),
            "{}",
            reasons[2].1
        );
        assert!(
            started.elapsed() < Duration::from_millis(2900),
            "the client gave up on the slow reply at its timeout"
        );
        let requests = server.requests();
        let count = |needle: &str| {
            requests
                .iter()
                .filter(|r| r.prompt.contains(needle))
                .count()
        };
        assert_eq!(
            count("studying feature 0 "),
            4,
            "2 × 500, the timeout, the answer"
        );
        assert_eq!(
            count("studying feature 1 "),
            1,
            "{api:?}: a 400 is never retried"
        );
        let rows = rows(&atlas);
        let failed = rows.iter().find(|r| r.0 == 1).unwrap();
        assert_eq!(failed.1, "failed");
        assert!(
            failed.4.as_deref().unwrap().contains("HTTP 400"),
            "{failed:?}"
        );
    }
}

#[test]
fn malformed_body_is_asked_again_once_then_recorded_and_only_retry_failed_asks_again() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let dir = tempfile::tempdir().unwrap();
        let atlas = small_atlas(dir.path());
        let server = FakeLlm::start(seed_answer);
        let garbage = "<html>upstream proxy error</html>";
        server.inject("studying feature 1 ", Injection::Body(garbage.into()), 2);
        let options = options(&server, api);
        let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
        let counts = summary.features.unwrap();
        assert_eq!(
            (counts.described, counts.failed),
            (2, 1),
            "{api:?}: the run goes on"
        );
        let first = server.requests().len();
        assert_eq!(
            first,
            2 + 2 * 2,
            "feature 1 asked twice, the others explain + predict"
        );
        let recorded = rows(&atlas);
        let failed = recorded.iter().find(|r| r.0 == 1).unwrap();
        assert_eq!(failed.1, "failed");
        assert_eq!(failed.3.as_deref(), Some(garbage), "{api:?}: raw text kept");
        assert!(failed.4.as_deref().unwrap().contains("malformed"));
        // A rerun leaves the failure alone...
        let again = describe(&atlas, &options, &mut |_| {}).unwrap();
        assert_eq!(again.features.unwrap().already_done, 3);
        assert_eq!(
            server.requests().len(),
            first,
            "{api:?}: no request without retry_failed"
        );
        // ...unless asked to retry failures: only feature 1's two prompts are asked.
        let mut retry = options.clone();
        retry.retry_failed = true;
        let retried = describe(&atlas, &retry, &mut |_| {}).unwrap();
        assert_eq!(retried.features.unwrap().described, 1);
        let requests = server.requests();
        assert_eq!(requests.len(), first + 2);
        assert!(requests[first].prompt.contains("studying feature 1 "));
        let after = rows(&atlas);
        assert_eq!(after.len(), 3, "the failed row is replaced");
        assert!(after.iter().all(|r| r.1 == "ok"));
    }
}

#[test]
fn an_unparseable_answer_is_asked_again_once_then_recorded_with_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = small_atlas(dir.path());
    let server = FakeLlm::start(seed_answer);
    // A well-formed API reply whose predictions are too few: the first predict prompt gets it
    // twice.
    let short = serde_json::json!({"choices": [{"message": {"content": "1: 0.5"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2}})
    .to_string();
    server.inject("Reply with exactly", Injection::Body(short), 2);
    let options = options(&server, Api::OpenAi);
    let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
    let counts = summary.features.unwrap();
    assert_eq!((counts.described, counts.failed), (2, 1));
    assert_eq!(server.requests().len(), 3 * 2 + 1);
    let rows = rows(&atlas);
    let failed: Vec<_> = rows.iter().filter(|r| r.1 == "failed").collect();
    assert_eq!(failed[0].3.as_deref(), Some("1: 0.5"));
    assert!(failed[0]
        .4
        .as_deref()
        .unwrap()
        .contains("expected 17 predictions"));
    // The two unparseable replies were paid for: 2 × (10 in, 2 out).
    let expected = server_cost(&server.requests()) + 2.0 * PRICE.cost(10, 2);
    assert!((summary.spent_usd - expected).abs() < 1e-12);
}

#[test]
fn a_401_stops_at_once_naming_the_key_variable() {
    for (api, variable) in [
        (Api::Anthropic, "ANTHROPIC_API_KEY"),
        (Api::OpenAi, "OPENAI_API_KEY"),
    ] {
        for concurrency in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let atlas = small_atlas(dir.path());
            let server = FakeLlm::start(seed_answer);
            server.inject("", Injection::Status(401, None), 100);
            let mut options = options(&server, api);
            options.concurrency = concurrency;
            let error = describe(&atlas, &options, &mut |_| {}).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(variable) && message.contains("401"),
                "{api:?}: {message}"
            );
            let n = server.requests().len();
            // One worker: exactly the refused request. Three: at most the three in flight when
            // the first 401 came back; none is retried and none follows.
            assert!(
                if concurrency == 1 {
                    n == 1
                } else {
                    (1..=3).contains(&n)
                },
                "{api:?} × {concurrency}: {n} requests after a 401"
            );
            assert!(
                rows(&atlas).is_empty(),
                "nothing recorded for a refused key"
            );
        }
    }
}

#[test]
fn usage_is_spent_once_and_no_prompt_is_asked_twice_across_reruns() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let dir = tempfile::tempdir().unwrap();
        let atlas = small_atlas(dir.path());
        let server = FakeLlm::start(seed_answer);
        server.inject("", Injection::Status(503, None), 1);
        let mut options = options(&server, api);
        options.concurrency = 2;
        let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
        assert_eq!(summary.features.unwrap().described, 3);
        let requests = server.requests();
        let expected = server_cost(&requests);
        assert!(expected > 0.0);
        assert!(
            (summary.spent_usd - expected).abs() < 1e-12,
            "{api:?}: spent {} vs usage {expected}",
            summary.spent_usd
        );
        let db = rusqlite::Connection::open(&atlas).unwrap();
        let recorded: f64 = db
            .query_row("SELECT SUM(cost_usd) FROM descriptions", [], |r| r.get(0))
            .unwrap();
        assert!((recorded - expected).abs() < 1e-12);
        let again = describe(&atlas, &options, &mut |_| {}).unwrap();
        assert_eq!(again.spent_usd, 0.0);
        let requests = server.requests();
        let answered: Vec<&str> = requests
            .iter()
            .filter(|r| r.injection.is_none())
            .map(|r| r.prompt.as_str())
            .collect();
        let unique: HashSet<&str> = answered.iter().copied().collect();
        assert_eq!(answered.len(), 6);
        assert_eq!(
            unique.len(),
            answered.len(),
            "{api:?}: a prompt asked twice"
        );
    }
}

const CHILD: &str = "PLMSCOPE_DESCRIBE_HTTP_CHILD";

/// The child of the kill test: describes the atlas named in the environment (a no-op when the
/// variable is not set, i.e. in a normal test run).
#[test]
fn child_describe_for_kill_test() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (atlas, url) = spec.split_once('|').unwrap();
    let mut provider = ProviderOptions::new(ProviderKind::Anthropic, "model-under-test");
    provider.base_url = Some(url.to_string());
    provider.api_key = Some("test-key".into());
    provider.price = Some(PRICE);
    let mut options = DescribeOptions::new(provider);
    options.units = UnitSelection::Features;
    options.concurrency = 1;
    let _ = describe(Path::new(atlas), &options, &mut |_| {});
}

#[test]
fn after_kill_9_mid_run_no_request_is_made_for_a_unit_or_prompt_already_answered() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = small_atlas(dir.path());
    let server = FakeLlm::start(seed_answer);
    // Requests 0-1: the first unit (explain, predict); 2: the second unit's explain; 3: its
    // predict, which hangs until the child is killed.
    *server.hang_at.lock().unwrap() = Some(3);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_describe_for_kill_test", "--exact", "--nocapture"])
        .env(
            CHILD,
            format!("{}|{}", atlas.display(), server.anthropic_url()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let hung = server.hung.recv_timeout(Duration::from_secs(60));
    // Let the parent thread record the finished unit (it does so as soon as the worker hands it
    // over, long before the worker's next two requests).
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert_eq!(hung.unwrap(), 3, "the child reached the hanging request");
    assert!(!status.success());
    let before = server.requests();
    assert_eq!(before.len(), 4);
    let finished_rows = rows(&atlas);
    assert_eq!(
        finished_rows.len(),
        1,
        "one unit was finished before the kill"
    );
    let finished_unit = finished_rows[0].0;
    *server.hang_at.lock().unwrap() = None;

    let mut provider = ProviderOptions::new(ProviderKind::Anthropic, "model-under-test");
    provider.base_url = Some(server.anthropic_url());
    provider.api_key = Some("test-key".into());
    provider.price = Some(PRICE);
    let mut options = DescribeOptions::new(provider);
    options.units = UnitSelection::Features;
    options.concurrency = 1;
    let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
    let counts = summary.features.unwrap();
    assert_eq!((counts.already_done, counts.described), (1, 2));
    let after = &server.requests()[before.len()..];
    let answered: HashSet<&str> = before[..3].iter().map(|r| r.prompt.as_str()).collect();
    for request in after {
        assert!(
            !answered.contains(request.prompt.as_str()),
            "asked again after the kill: {:.80}",
            request.prompt
        );
        assert!(!request
            .prompt
            .contains(&format!("studying feature {finished_unit} ")));
    }
    // Only the interrupted predict call and the third unit's two calls.
    assert_eq!(after.len(), 3);
    assert_eq!(after[0].prompt, before[3].prompt);
    assert_eq!(rows(&atlas).len(), 3);
}

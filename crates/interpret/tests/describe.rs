//! describe: seed sampling on a planted distribution, the correlation's p against closed forms,
//! header and reply parsing, and the full loop against a loopback fake of Anthropic's API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use plmscope_interpret::activations::Activations;
use plmscope_interpret::atlas::UnitKind;
use plmscope_interpret::describe::prompts::parse_predictions;
use plmscope_interpret::describe::sampling::{sample_bins, sample_unit, Sampled, UnitMode};
use plmscope_interpret::describe::stats::pearson;
use plmscope_interpret::describe::*;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn bins_take_the_seed_counts_and_short_bins_borrow_from_neighbours() {
    // 10 proteins in each bin except 0.4-0.6, which has one: two of its three come from the
    // neighbours (0.2-0.4 first, then 0.6-0.8).
    let mut scaled = Vec::new();
    for (bin, count) in [(0, 10), (1, 10), (2, 1), (3, 10), (4, 10)] {
        for i in 0..count {
            scaled.push(0.2 * bin as f64 + 0.01 + 0.001 * i as f64);
        }
    }
    let candidates: Vec<u32> = (0..scaled.len() as u32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let chosen = sample_bins(&scaled, &candidates, [2, 3, 3, 3, 6], &mut rng);
    let per_bin = |b: usize| {
        chosen
            .iter()
            .filter(|&&p| ((scaled[p as usize] / 0.2) as usize).min(4) == b)
            .count()
    };
    assert_eq!(chosen.len(), 17);
    assert_eq!(
        [per_bin(0), per_bin(1), per_bin(2), per_bin(3), per_bin(4)],
        [2, 5, 1, 3, 6]
    );
    let mut unique = chosen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 17, "a protein drawn twice");
}

#[test]
fn sparse_units_need_34_active_and_split_half_without_overlap() {
    let protocol = SeedSampling::default();
    let mut scaled = vec![0.0; 100];
    for (i, v) in scaled.iter_mut().enumerate().take(33) {
        *v = (i + 1) as f64 / 33.0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    assert_eq!(
        sample_unit(&scaled, UnitMode::Sparse, &protocol, &mut rng),
        Sampled::TooFewActive { active: 33 }
    );
    scaled[50] = 0.5;
    let Sampled::Unit(s) = sample_unit(&scaled, UnitMode::Sparse, &protocol, &mut rng) else {
        panic!("34 active proteins must be enough");
    };
    assert_eq!((s.explain_active.len(), s.explain_inactive.len()), (8, 7));
    assert_eq!(s.held_out.len(), 9 + 8);
    let explain: Vec<u32> = s
        .explain_active
        .iter()
        .chain(&s.explain_inactive)
        .map(|x| x.protein)
        .collect();
    assert!(s.held_out.iter().all(|h| !explain.contains(&h.protein)));
    assert_eq!(s.held_out.iter().filter(|h| h.activation == 0.0).count(), 8);
}

#[test]
fn pearson_p_matches_closed_forms_of_the_t_distribution() {
    // df = 3: P(|T| > t) = 1 - (2/pi)(x/(1+x^2) + atan x), x = t/sqrt(3).
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [2.0, 1.0, 4.0, 3.0, 5.0];
    let c = pearson(&x, &y).unwrap();
    assert!((c.r - 0.8).abs() < 1e-12);
    let t = 0.8 * (3.0f64 / (1.0 - 0.64)).sqrt();
    let u = t / 3f64.sqrt();
    let expected = 1.0 - 2.0 / std::f64::consts::PI * (u / (1.0 + u * u) + u.atan());
    assert!((c.p - expected).abs() < 1e-10, "{} vs {expected}", c.p);
    // df = 1: P = 1 - (2/pi) atan |t|.
    let c = pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
    let t = c.r * (1.0 / (1.0 - c.r * c.r)).sqrt();
    let expected = 1.0 - 2.0 / std::f64::consts::PI * t.abs().atan();
    assert!((c.p - expected).abs() < 1e-10);
    assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
}

#[test]
fn uniprot_headers_and_prediction_replies_parse() {
    let h = parse_uniprot_header(
        "sp|D6VPM8|YAJ3_YEAST Putative DUP240 protein DFP1 OS=Saccharomyces cerevisiae (strain ATCC 204508 / S288c) OX=559292 GN=DFP1 PE=5 SV=2",
    )
    .unwrap();
    assert_eq!(h.accession, "D6VPM8");
    assert_eq!(h.name, "Putative DUP240 protein DFP1");
    assert_eq!(h.gene.as_deref(), Some("DFP1"));
    assert_eq!(
        h.organism.as_deref(),
        Some("Saccharomyces cerevisiae (strain ATCC 204508 / S288c)")
    );
    assert_eq!(
        parse_predictions("1: 0.5\n2: 0\n3. 1.0", 3).unwrap(),
        vec![0.5, 0.0, 1.0]
    );
    assert!(parse_predictions("1: 0.5\n2: 0", 3).is_err());
    assert!(parse_predictions("1: 0.5\n2: 1.5", 2).is_err());
}

/// A fake Anthropic Messages API: answers explain prompts with a sentence and predict prompts
/// with one number per protein; the first `fail_first` requests get HTTP 500. Records requests.
struct FakeServer {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

fn fake_anthropic(fail_first: usize) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let n = {
                let mut r = recorded.lock().unwrap();
                r.push((head, body.clone()));
                r.len()
            };
            let (status, reply) = if n <= fail_first {
                (
                    "500 Internal Server Error",
                    "{\"error\":\"overloaded\"}".to_string(),
                )
            } else {
                let prompt = serde_json::from_str::<serde_json::Value>(&body).unwrap()["messages"]
                    [0]["content"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let text = match prompt.split("Reply with exactly ").nth(1) {
                    Some(rest) => {
                        let k: usize = rest.split(' ').next().unwrap().parse().unwrap();
                        (1..=k)
                            .map(|i| format!("{i}: {}", (i % 3) as f64 / 2.0))
                            .collect::<Vec<_>>()
                            .join("\n")
                    }
                    None => "Proteins of the planted family.".to_string(),
                };
                let reply = serde_json::json!({"content": [{"type": "text", "text": text}],
                    "usage": {"input_tokens": 1000, "output_tokens": 100}});
                ("200 OK", reply.to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    FakeServer { url, requests }
}

/// 120 proteins; feature u is active on proteins u*10 .. u*10+60 with rising values.
fn small_atlas(dir: &std::path::Path) -> std::path::PathBuf {
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

#[test]
fn full_loop_against_a_fake_anthropic_retries_records_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = small_atlas(dir.path());
    let server = fake_anthropic(1);
    let mut provider = ProviderOptions::new(ProviderKind::Anthropic, "claude-test");
    provider.base_url = Some(server.url.clone());
    provider.api_key = Some("test-key".into());
    provider.retry_base = std::time::Duration::from_millis(5);
    provider.price = Some(Price {
        input_per_mtok: 1.0,
        output_per_mtok: 10.0,
    });
    let mut options = DescribeOptions::new(provider);
    options.units = UnitSelection::Features;
    options.concurrency = 1;
    let mut retries = 0;
    let summary = describe(&atlas, &options, &mut |e| {
        if matches!(e, DescribeEvent::Retrying { .. }) {
            retries += 1;
        }
    })
    .unwrap();
    let counts = summary.features.unwrap();
    assert_eq!((counts.described, counts.failed), (3, 0));
    assert_eq!(retries, 1, "the 500 is retried once");
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1 + 3 * 2);
    for (head, body) in &requests {
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("x-api-key: test-key") && head.contains("anthropic-version: 2023-06-01")
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (body["model"].as_str(), body["temperature"].as_i64()),
            (Some("claude-test"), Some(0))
        );
    }
    // Cost: 6 successful calls of 1000 input and 100 output tokens at $1 / $10 per million.
    assert!((summary.spent_usd - 6.0 * 0.002).abs() < 1e-12);
    let db = rusqlite::Connection::open(&atlas).unwrap();
    let rows: Vec<(String, f64, f64, i64)> = db
        .prepare("SELECT text, pearson, pearson_p, n_held_out FROM descriptions ORDER BY unit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r.0 == "Proteins of the planted family." && r.3 == 17));
    assert!(rows
        .iter()
        .all(|r| (-1.0..=1.0).contains(&r.1) && (0.0..=1.0).contains(&r.2)));
    // Resume: nothing new is asked.
    let again = describe(&atlas, &options, &mut |_| {}).unwrap();
    assert_eq!(again.features.unwrap().already_done, 3);
    assert_eq!(server.requests.lock().unwrap().len(), requests.len());
}

#[test]
fn max_cost_stops_before_the_budget_is_passed() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = small_atlas(dir.path());
    let server = fake_anthropic(0);
    let mut provider = ProviderOptions::new(ProviderKind::Anthropic, "claude-test");
    provider.base_url = Some(server.url.clone());
    provider.api_key = Some("k".into());
    provider.price = Some(Price {
        input_per_mtok: 1.0,
        output_per_mtok: 10.0,
    });
    let mut options = DescribeOptions::new(provider);
    options.units = UnitSelection::Features;
    options.concurrency = 1;
    // A unit costs $0.004 (two calls), but a predict call reserves its whole reply budget
    // (1000 tokens, $0.01) plus ~1500 prompt tokens: after two units ($0.008) and the third
    // unit's explain call ($0.010), its predict call could pass $0.02 and is not made.
    options.max_cost = Some(0.02);
    let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
    assert!(summary.stopped_by_budget);
    assert!((summary.spent_usd - 0.010).abs() < 1e-12);
    let counts = summary.features.unwrap();
    assert_eq!((counts.described, counts.not_finished), (2, 1));
    assert_eq!(
        server.requests.lock().unwrap().len(),
        5,
        "no call past the budget"
    );
}

#[test]
fn no_key_is_a_clear_error() {
    let options = ProviderOptions::new(ProviderKind::Anthropic, "claude-test");
    let error = provider::Client::with_env(options, |_| None).err().unwrap();
    assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");
}

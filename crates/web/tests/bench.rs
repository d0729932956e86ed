//! Page latency on a synthetic 10,000-feature atlas with the real schema (plus 320 neurons,
//! 2,000 proteins, 60 stored examples and 8 enrichment rows per unit), measured over loopback
//! by a load generator: for each page type, requests from `C` concurrent clients (one
//! connection per request), p50/p95/p99. Ignored in normal runs; run it with
//!
//! ```sh
//! cargo test -p plmscope-web --test bench -- --ignored --nocapture
//! ```
//!
//! and see BENCHMARKS.md for the numbers. Every page type must answer in under 50 ms at p95,
//! from 1 and from 16 clients (the issue's target). The synthetic atlas has no code set beside
//! it, so feature pages are measured without residue tracks (tracks add one CSR scan per
//! protein shown).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plmscope_web::synthetic::{write_synthetic_atlas, SyntheticSize};
use plmscope_web::{spawn_on_loopback, AppState, ServeOptions};

async fn one(addr: SocketAddr, target: &str) -> (u16, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    stream.read_to_end(&mut buffer).await.unwrap();
    let status = String::from_utf8_lossy(&buffer[..buffer.len().min(20)])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, start.elapsed())
}

/// The request target of the i-th request of one page type.
type Target = Box<dyn Fn(usize) -> String>;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

#[test]
#[ignore = "benchmark: cargo test -p plmscope-web --test bench -- --ignored --nocapture"]
fn page_latency_on_a_10000_feature_atlas() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = dir.path().join("synthetic-10k.sqlite");
    let t = Instant::now();
    write_synthetic_atlas(&atlas, SyntheticSize::default()).unwrap();
    let written = t.elapsed();
    let t = Instant::now();
    let state = AppState::load(&ServeOptions {
        atlases: vec![atlas],
        ..Default::default()
    })
    .unwrap();
    let loaded = t.elapsed();
    let addr = spawn_on_loopback(state).unwrap();
    println!(
        "atlas written in {:.1} s, server ready (index built) in {:.2} s",
        written.as_secs_f64(),
        loaded.as_secs_f64()
    );

    let pages: Vec<(&str, Target)> = vec![
        (
            "features list (best GO q)",
            Box::new(|_| "/a/0".to_string()),
        ),
        (
            "features list (filtered, sorted)",
            Box::new(|i| {
                format!(
                    "/a/0?kind=feature&sort=concept_f1&min_density=0.01&max_q=0.5&alive=1&page={}",
                    i % 5
                )
            }),
        ),
        (
            "feature page",
            Box::new(|i| format!("/a/0/unit/{}", (i * 7919) % 10_000)),
        ),
        (
            "protein page",
            Box::new(|i| format!("/a/0/protein/P{:05}", (i * 31) % 2000)),
        ),
        (
            "search (GO id)",
            Box::new(|i| format!("/search?q=GO%3A{:07}", (i * 13) % 3000)),
        ),
        (
            "search (words)",
            Box::new(|i| format!("/search?q=binds+motif+{}", i % 97)),
        ),
        ("compare", Box::new(|_| "/compare".to_string())),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| page | clients | requests | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|");
    for clients in [1usize, 16] {
        for (name, target) in &pages {
            let requests = 400;
            let targets: Vec<String> = (0..requests).map(target).collect();
            // Warm-up.
            runtime.block_on(async {
                for t in targets.iter().take(10) {
                    one(addr, t).await;
                }
            });
            let mut latencies: Vec<Duration> = runtime.block_on(async {
                let chunks: Vec<Vec<String>> = (0..clients)
                    .map(|c| targets.iter().skip(c).step_by(clients).cloned().collect())
                    .collect();
                let tasks: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        tokio::spawn(async move {
                            let mut out = Vec::new();
                            for t in chunk {
                                let (status, d) = one(addr, &t).await;
                                assert_eq!(status, 200, "{t}");
                                out.push(d);
                            }
                            out
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap());
                }
                all
            });
            latencies.sort();
            println!(
                "| {name} | {clients} | {} | {:.2} | {:.2} | {:.2} |",
                latencies.len(),
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.95),
                percentile(&latencies, 0.99)
            );
            // The issue's target, for 1 and 16 clients. 16 clients held it in every run on the
            // 2-core machine, also at load average 9 from other builds (worst p95 45 ms,
            // 2026-12-01); a failure on a busier machine may be the machine.
            assert!(
                percentile(&latencies, 0.95) < 50.0,
                "{name}, {clients} clients: p95 over 50 ms"
            );
        }
    }
}

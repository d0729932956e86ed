//! Training throughput of a TopK SAE, set beside `scripts/sae_torch_trainer.py` by
//! `scripts/bench_sae_train.py`: same shapes, same math (FVU loss, unit-norm decoder with
//! gradient projection, Adam at 2e-4/√(d_sae/2¹⁴), b_dec = first-batch mean), AuxK off.
//!
//!     cargo build --release -p plmscope-sae --examples
//!     target/release/examples/bench_train [--d-in 320] [--expansion 32] [--k 32] \
//!         [--batch 4096] [--steps 20] [--warmup 2] [--threads 2] \
//!         [--activations DIR [--buffer-rows 262144]]
//!
//! Prints one JSON line: rows_per_s, ms_per_step, peak_rss_mb (VmHWM of this process) and the
//! configuration, with the last step's phase timings. Without `--activations` the batches come
//! from 4 batches' worth of synthetic rows in memory (sparse mixtures of random directions, as
//! the PyTorch script makes them). With `--activations DIR` they stream from an activation set
//! through `StoreBatches` (the store's `ShuffledRows`, one window of `--buffer-rows` rows in
//! RAM), d_in is the set's, and `--steps 0` means one full epoch; the JSON then also carries
//! the set's size and the RSS split into anonymous memory and mapped file pages.
//!
//! At d_in 320, 32× the encoder matmul is 2·4096·320·10240 ≈ 26.8 GFLOP per step; with the
//! sparse backward it should dominate (ARCHITECTURE.md "Compute").

use std::path::PathBuf;
use std::time::Instant;

use plmscope_sae::store_source::StoreBatches;
use plmscope_sae::trainer::{BatchSource, InMemoryBatches, StepStats, TrainConfig, Trainer};
use plmscope_store::{ActivationSet, ShuffleConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;

const USAGE: &str = "usage: bench_train [--d-in N] [--expansion N] [--k N] [--batch N] \
                     [--steps N] [--warmup N] [--threads N] [--activations DIR] [--buffer-rows N]";

/// Directions the synthetic rows are mixed from, and how many each row sums.
const ATOMS: usize = 2048;
const ATOMS_PER_ROW: usize = 16;
/// Synthetic rows held in memory, in batches.
const BATCHES_IN_MEMORY: usize = 4;

struct Options {
    d_in: usize,
    expansion: usize,
    k: usize,
    batch: usize,
    steps: u64,
    warmup: u64,
    threads: usize,
    activations: Option<PathBuf>,
    buffer_rows: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        d_in: 320,
        expansion: 32,
        k: 32,
        batch: 4096,
        steps: 20,
        warmup: 2,
        threads: 2,
        activations: None,
        buffer_rows: 262_144,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))
        };
        match flag.as_str() {
            "--d-in" => o.d_in = number()?,
            "--expansion" => o.expansion = number()?,
            "--k" => o.k = number()?,
            "--batch" => o.batch = number()?,
            "--steps" => o.steps = number()? as u64,
            "--warmup" => o.warmup = number()? as u64,
            "--threads" => o.threads = number()?,
            "--buffer-rows" => o.buffer_rows = number()?,
            "--activations" => o.activations = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Sparse mixtures of random directions: TopK codes have structure, as on real activations.
fn synthetic_rows(rows: usize, d_in: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let atoms: Vec<f32> = (0..ATOMS * d_in)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mut x = vec![0.0f32; rows * d_in];
    for row in x.chunks_mut(d_in) {
        for _ in 0..ATOMS_PER_ROW {
            let a = rng.random_range(0..ATOMS);
            let c: f32 = rng.random();
            row.iter_mut()
                .zip(&atoms[a * d_in..(a + 1) * d_in])
                .for_each(|(r, v)| *r += c * v);
        }
    }
    x
}

/// Memory figures from /proc/self/status, in MiB (None off Linux).
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Runs `warmup` untimed and then `steps` timed steps; returns (seconds, steps run, last stats).
fn timed_training(
    trainer: &mut Trainer,
    source: &mut dyn BatchSource,
    warmup: u64,
    steps: u64,
) -> Result<(f64, u64, Option<StepStats>), Box<dyn std::error::Error>> {
    // Warm-up: first-touch page faults, b_dec initialisation, first window of a set.
    trainer.train(source, warmup, |_, _| {})?;
    let start = Instant::now();
    let mut last = None;
    let done = trainer.train(source, steps, |_, s| last = Some(s.clone()))?;
    Ok((start.elapsed().as_secs_f64(), done, last))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = match parse_options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads)
        .build_global()?;

    let set = o
        .activations
        .as_deref()
        .map(ActivationSet::open)
        .transpose()?;
    let d_in = set.as_ref().map_or(o.d_in, ActivationSet::d_model);
    let d_sae = o.expansion * d_in;
    let mut cfg = TrainConfig::topk(d_in, d_sae, o.k);
    cfg.auxk_coefficient = 0.0;
    let mut trainer = Trainer::new(cfg)?;

    let mut report = json!({
        "impl": "plmscope",
        "variant": "sparse",
        "d_in": d_in,
        "expansion": o.expansion,
        "d_sae": d_sae,
        "k": o.k,
        "batch": o.batch,
        "warmup_steps": o.warmup,
        "threads": rayon::current_num_threads(),
        "auxk": false,
    });
    let (secs, steps, last) = match &set {
        None => {
            let x = synthetic_rows(BATCHES_IN_MEMORY * o.batch, d_in, 1);
            let mut source = InMemoryBatches::new(x, d_in, None, o.batch, 2)?;
            timed_training(&mut trainer, &mut source, o.warmup, o.steps)?
        }
        Some(set) => {
            let proteins: Vec<usize> = (0..set.proteins().len()).collect();
            let config = ShuffleConfig {
                batch_size: o.batch,
                buffer_rows: o.buffer_rows,
                seed: 7,
            };
            let mut source = StoreBatches::new(set, None, proteins, config)?;
            let steps = if o.steps == 0 {
                source.steps_per_epoch().saturating_sub(o.warmup)
            } else {
                o.steps
            };
            report["source"] = json!(set.dir().display().to_string());
            report["set_rows"] = json!(set.rows());
            report["set_gb"] = json!((set.rows() * d_in * 4) as f64 / 1e9);
            report["buffer_rows"] = json!(o.buffer_rows);
            report["steps_per_epoch"] = json!(source.steps_per_epoch());
            timed_training(&mut trainer, &mut source, o.warmup, steps)?
        }
    };
    if steps == 0 {
        return Err("no timed step ran (the source ran out during warm-up)".into());
    }
    report["steps"] = json!(steps);
    report["rows_per_s"] = json!((steps as usize * o.batch) as f64 / secs);
    report["ms_per_step"] = json!(1e3 * secs / steps as f64);
    report["peak_rss_mb"] = json!(proc_status_mib("VmHWM:"));
    report["rss_end_anon_mb"] = json!(proc_status_mib("RssAnon:"));
    report["rss_end_file_mb"] = json!(proc_status_mib("RssFile:"));
    // The encoder matmul alone over the whole step time: a floor on the rate the matmul ran at.
    report["encoder_equiv_gflop_per_s"] =
        json!(2.0 * (o.batch * d_in * d_sae) as f64 * steps as f64 / secs / 1e9);
    if let Some(s) = last {
        report["fvu_last"] = json!(s.fvu);
        report["l0_last"] = json!(s.l0);
        let t = &s.timings;
        report["phases_ms_last"] = json!({
            "encoder": t.encoder_ms,
            "select_decode": t.select_decode_ms,
            "sparse_backward": t.backward_ms,
            "adam_norm": t.update_ms,
        });
    }
    println!("{report}");
    Ok(())
}

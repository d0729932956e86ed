//! Training throughput of a TopK SAE at the seed-paper scale of ESM2-8M: d_in 320, 32× expansion
//! (d_sae 10240), k 32, batches of 4096 rows of synthetic data; prints rows/s so it can be set
//! beside a PyTorch step of the same shapes.
//!
//!     cargo run --release -p plmscope-sae --example bench_train -- [steps] [threads]
//!
//! The encoder matmul is 2·4096·320·10240 ≈ 26.8 GFLOP per step; with the sparse backward it
//! should dominate (ARCHITECTURE.md "Compute": gemm x86-v4 at 236–306 GFLOP/s on 2 cores).

use std::time::Instant;

use plmscope_sae::trainer::{InMemoryBatches, TrainConfig, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const D_IN: usize = 320;
const D_SAE: usize = 32 * D_IN;
const K: usize = 32;
const BATCH: usize = 4096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    if let Some(threads) = args.next() {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.parse()?)
            .build_global()?;
    }
    // Sparse mixtures of random directions: TopK codes have structure, as on real activations.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let atoms: Vec<f32> = (0..2048 * D_IN)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let rows = 4 * BATCH;
    let mut x = vec![0.0f32; rows * D_IN];
    for row in x.chunks_mut(D_IN) {
        for _ in 0..16 {
            let a = (rand::Rng::random::<u32>(&mut rng) % 2048) as usize;
            let c: f32 = rand::Rng::random::<f32>(&mut rng);
            row.iter_mut()
                .zip(&atoms[a * D_IN..(a + 1) * D_IN])
                .for_each(|(r, v)| *r += c * v);
        }
    }
    let mut source = InMemoryBatches::new(x, D_IN, None, BATCH, 2)?;
    let mut trainer = Trainer::new(TrainConfig::topk(D_IN, D_SAE, K))?;
    // One warm-up step (first-touch page faults, b_dec initialisation).
    trainer.train(&mut source, 1, |_, _| {})?;
    let start = Instant::now();
    let mut last = None;
    trainer.train(&mut source, steps, |_, s| last = Some(s.clone()))?;
    let secs = start.elapsed().as_secs_f64();
    let rows_per_s = (steps as usize * BATCH) as f64 / secs;
    let encoder_gflop = 2.0 * (BATCH * D_IN * D_SAE) as f64 / 1e9;
    println!(
        "topk d_in={D_IN} d_sae={D_SAE} k={K} batch={BATCH} threads={} steps={steps}: {:.1} ms/step, {rows_per_s:.0} rows/s, \
         encoder alone would be {:.0} GFLOP/s at this step time",
        rayon::current_num_threads(),
        1e3 * secs / steps as f64,
        encoder_gflop * steps as f64 / secs,
    );
    if let Some(s) = last {
        println!(
            "last step: fvu {:.4}, l0 {:.1}, dead {:.3}",
            s.fvu, s.l0, s.dead_fraction
        );
        let t = &s.timings;
        println!(
            "last step phases (ms): encoder {:.1}, select+decode {:.1}, sparse backward {:.1}, adam+norm {:.1}",
            t.encoder_ms, t.select_decode_ms, t.backward_ms, t.update_ms
        );
    }
    Ok(())
}

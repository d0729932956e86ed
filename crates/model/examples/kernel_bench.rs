//! Times the forward pass's kernels on ESM2 shapes, so a slow embed can be traced to a kernel.
//!
//!     cargo run --release -p plmscope-model --example kernel_bench -- [threads]

use plmscope_model::kernels::{self, AttentionShape, Linear};
use std::time::Instant;

fn time<F: FnMut()>(label: &str, flops: f64, reps: usize, mut f: F) {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    if flops > 0.0 {
        println!(
            "{label:<40} {:>9.3} ms {:>7.1} GFLOP/s",
            secs * 1e3,
            flops / secs / 1e9
        );
    } else {
        println!("{label:<40} {:>9.3} ms", secs * 1e3);
    }
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let tokens = 4096;
    for (din, dout) in [
        (320, 1280),
        (1280, 320),
        (320, 960),
        (480, 1920),
        (1920, 480),
    ] {
        let x: Vec<f32> = (0..tokens * din).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..din * dout).map(|i| (i % 5) as f32 * 0.01).collect();
        let layer = Linear::from_torch(&w, vec![0.0; dout], dout, din);
        let mut out = Vec::new();
        time(
            &format!("linear {tokens}x{din} -> {dout}"),
            2.0 * (tokens * din * dout) as f64,
            10,
            || kernels::linear(&x, &layer, &mut out),
        );
    }
    // 14 sequences of ~300 tokens, hidden 320, 20 heads.
    let d = 320;
    let offsets: Vec<usize> = (0..=14).map(|i| i * 300).collect();
    let n = *offsets.last().unwrap();
    let qkv: Vec<f32> = (0..n * 3 * d)
        .map(|i| ((i * 31) % 17) as f32 * 0.05 - 0.4)
        .collect();
    let mut ctx = vec![0f32; n * d];
    let flops = 14.0 * 4.0 * 300.0 * 300.0 * d as f64;
    time(
        "attention 14 x 300 tokens, d 320, 20 heads",
        flops,
        10,
        || {
            kernels::attend(
                &qkv,
                &offsets,
                AttentionShape {
                    hidden: d,
                    heads: 20,
                },
                &mut ctx,
            )
        },
    );
    let x: Vec<f32> = (0..n * d).map(|i| (i % 13) as f32).collect();
    let mut out = vec![0f32; n * d];
    let w = vec![1f32; d];
    let b = vec![0f32; d];
    time("layer_norm 4200 x 320", 0.0, 20, || {
        kernels::layer_norm(&x, &mut out, &w, &b, 1e-5)
    });
    let mut g: Vec<f32> = (0..n * 4 * d)
        .map(|i| (i % 11) as f32 * 0.3 - 1.5)
        .collect();
    time("gelu 4200 x 1280", 0.0, 20, || {
        kernels::gelu_inplace(&mut g)
    });
}

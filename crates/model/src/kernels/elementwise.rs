//! Row-wise and element-wise passes: LayerNorm, exact GELU, softmax, residual add.

use super::{erf_f32, exp_f32, multiversion};

#[inline(always)]
fn layer_norm_imp(x: &[f32], out: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let d = weight.len();
    for (row, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        // Two passes (mean, then centred variance) as PyTorch does: no cancellation.
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for i in 0..d {
            dst[i] = (row[i] - mean) * inv * weight[i] + bias[i];
        }
    }
}
multiversion!(pub fn layer_norm_rows(x: &[f32], out: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) => layer_norm_imp);

/// LayerNorm of each `weight.len()`-wide row of `x` into `out`, parallel over row blocks.
pub fn layer_norm(x: &[f32], out: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    use rayon::prelude::*;
    let d = weight.len();
    let block = 64 * d;
    x.par_chunks(block)
        .zip(out.par_chunks_mut(block))
        .for_each(|(xs, os)| layer_norm_rows(xs, os, weight, bias, eps));
}

#[inline(always)]
fn gelu_imp(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf_f32(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}
multiversion!(pub fn gelu_serial(x: &mut [f32]) => gelu_imp);

/// Exact (erf) GELU in place, as ESM2 uses.
pub fn gelu_inplace(x: &mut [f32]) {
    use rayon::prelude::*;
    x.par_chunks_mut(1 << 14).for_each(gelu_serial);
}

/// Softmax of one row in place; inlined into callers compiled for wide vectors. The max and
/// the sum run over 16 independent lanes: a single accumulator is a serial dependency that
/// the compiler may not reorder, which left this loop scalar.
#[inline(always)]
pub(crate) fn softmax_inline(row: &mut [f32]) {
    const L: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; L];
    let mut chunks = row.chunks_exact(L);
    for c in &mut chunks {
        for l in 0..L {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    let mut max = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for l in lanes {
        max = max.max(l);
    }
    let mut sums = [0f32; L];
    let mut chunks = row.chunks_exact_mut(L);
    for c in &mut chunks {
        for l in 0..L {
            c[l] = exp_f32(c[l] - max);
            sums[l] += c[l];
        }
    }
    let mut sum = 0.0;
    for v in chunks.into_remainder() {
        *v = exp_f32(*v - max);
        sum += *v;
    }
    sum += sums.iter().sum::<f32>();
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[inline(always)]
fn softmax_imp(scores: &mut [f32], width: usize) {
    for row in scores.chunks_exact_mut(width) {
        softmax_inline(row);
    }
}
multiversion!(pub fn softmax_rows(scores: &mut [f32], width: usize) => softmax_imp);

#[inline(always)]
fn add_imp(acc: &mut [f32], x: &[f32]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += *b;
    }
}
multiversion!(pub fn add_serial(acc: &mut [f32], x: &[f32]) => add_imp);

/// `acc += x`, parallel.
pub fn add_inplace(acc: &mut [f32], x: &[f32]) {
    use rayon::prelude::*;
    acc.par_chunks_mut(1 << 14)
        .zip(x.par_chunks(1 << 14))
        .for_each(|(a, b)| add_serial(a, b));
}

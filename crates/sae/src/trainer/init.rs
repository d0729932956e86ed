//! Initial weights and the data-driven `b_dec` start.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::architecture::{Architecture, Kind};
use crate::trainer::config::{EncoderInit, TrainConfig, WeightInit};
use crate::trainer::Params;

/// Decoder: random unit rows (sparsify) or U(±1/√d_sae) entries (Rep), per `weight_init`.
/// Encoder: the decoder's transpose (tied start: OpenAI, sparsify, Rep) or drawn independently,
/// per `encoder_init` (default: tied for SAEs, independent for transcoders). Biases zero.
pub(crate) fn initial_params(cfg: &TrainConfig, rng: &mut ChaCha8Rng) -> Params {
    let uniform_bound = 1.0 / (cfg.d_sae as f32).sqrt();
    let mut draw = |rows: usize, cols: usize| match cfg.weight_init {
        WeightInit::LinearUniform => (0..rows * cols)
            .map(|_| rng.random_range(-uniform_bound..uniform_bound))
            .collect(),
        WeightInit::UnitRows => {
            let mut w: Vec<f32> = (0..rows * cols)
                .map(|_| StandardNormal.sample(rng))
                .collect();
            for row in w.chunks_mut(cols) {
                let norm = row
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
                    .max(f32::MIN_POSITIVE);
                row.iter_mut().for_each(|v| *v /= norm);
            }
            w
        }
    };
    let w_dec: Vec<f32> = draw(cfg.d_sae, cfg.d_out);
    let tied = match cfg.encoder_init {
        Some(EncoderInit::DecoderTranspose) => true,
        Some(EncoderInit::Independent) => false,
        None => cfg.kind == Kind::Sae,
    };
    // enc_t is [d_sae, d_in]: the transpose of W_enc, so tying copies W_dec (d_in == d_out).
    let enc_t = if tied && cfg.d_in == cfg.d_out {
        w_dec.clone()
    } else {
        draw(cfg.d_sae, cfg.d_in)
    };
    Params {
        enc_t,
        b_enc: vec![0.0; cfg.d_sae],
        w_dec,
        b_dec: vec![0.0; cfg.d_out],
        log_threshold: (cfg.architecture == Architecture::JumpRelu)
            .then(|| vec![cfg.jumprelu_init_threshold.ln(); cfg.d_sae]),
        w_skip: (cfg.kind == Kind::SkipTranscoder).then(|| vec![0.0; cfg.d_out * cfg.d_in]),
    }
}

/// Column means of `rows` ([n, d]).
pub(crate) fn mean_rows(rows: &[f32], d: usize) -> Vec<f32> {
    let n = rows.len() / d;
    let mut acc = vec![0.0f64; d];
    for r in rows.chunks(d) {
        acc.iter_mut().zip(r).for_each(|(a, &v)| *a += v as f64);
    }
    acc.iter().map(|a| (a / n.max(1) as f64) as f32).collect()
}

/// Geometric median of `rows` by Weiszfeld's iterations, started at the mean.
pub(crate) fn geometric_median(rows: &[f32], d: usize, iterations: usize) -> Vec<f32> {
    let mut median: Vec<f64> = mean_rows(rows, d).iter().map(|&v| v as f64).collect();
    for _ in 0..iterations {
        let mut num = vec![0.0f64; d];
        let mut den = 0.0f64;
        for r in rows.chunks(d) {
            let dist = r
                .iter()
                .zip(&median)
                .map(|(&v, m)| (v as f64 - m).powi(2))
                .sum::<f64>()
                .sqrt();
            // A point on the current estimate would get infinite weight: a small floor keeps it finite.
            let w = 1.0 / dist.max(1e-8);
            num.iter_mut().zip(r).for_each(|(n, &v)| *n += w * v as f64);
            den += w;
        }
        let next: Vec<f64> = num.iter().map(|n| n / den).collect();
        let shift = next
            .iter()
            .zip(&median)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        median = next;
        if shift < 1e-7 {
            break;
        }
    }
    median.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_median_resists_an_outlier_that_moves_the_mean() {
        // Five points near the origin and one far away.
        let rows = [
            0.0, 0.0, 0.1, 0.0, 0.0, 0.1, -0.1, 0.0, 0.0, -0.1, 100.0, 100.0,
        ];
        let mean = mean_rows(&rows, 2);
        let median = geometric_median(&rows, 2, 200);
        assert!(mean[0] > 16.0);
        assert!(median[0].abs() < 0.1 && median[1].abs() < 0.1, "{median:?}");
    }
}

//! Evaluation: MSE, fraction of variance explained, L0, dead/dense fractions, feature density
//! histogram, and the load-time FVU check against the value recorded at training.

use plmscope_store::{Level, Site};
use serde::{Deserialize, Serialize};

use crate::dictionary::{Dictionary, SparseCodes};
use crate::error::{check_rows, Result, SaeError};

/// Reconstruction quality and sparsity on a sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    /// Mean over elements of (x̂ − y)².
    pub mse: f64,
    /// Σ‖x̂ − y‖² / Σ‖y − ȳ‖².
    pub fvu: f64,
    /// 1 − FVU.
    pub fve: f64,
    /// Mean active latents per row.
    pub l0: f64,
    pub density: FeatureDensity,
}

/// How often each latent fires on a sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureDensity {
    /// Fraction of rows on which each latent is active.
    pub density: Vec<f64>,
    /// Latents that never fired on the sample, over d_sae.
    pub dead_fraction: f64,
    /// Latents active on more than `dense_threshold` of rows, over d_sae.
    pub dense_fraction: f64,
    pub dense_threshold: f64,
    /// log10(density) histogram: `(lower edge, count)` for bins of width 0.5 from −8 to 0;
    /// dead latents are not in it.
    pub log10_histogram: Vec<(f64, usize)>,
}

/// Squared error statistics of `recon` against `target` ([rows, d]): (MSE, FVU).
pub fn mse_and_fvu(recon: &[f32], target: &[f32], d: usize) -> (f64, f64) {
    let rows = target.len() / d.max(1);
    let mut mean = vec![0.0f64; d];
    for r in target.chunks(d) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, &v)| *m += v as f64 / rows as f64);
    }
    let sq_err: f64 = recon
        .iter()
        .zip(target)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum();
    let total: f64 = target
        .chunks(d)
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&v, m)| (v as f64 - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    (
        sq_err / target.len().max(1) as f64,
        if total > 0.0 {
            sq_err / total
        } else {
            f64::INFINITY
        },
    )
}

/// Firing frequencies from codes; latents above `dense_threshold` (e.g. 0.1) count as dense.
pub fn feature_density(codes: &SparseCodes, dense_threshold: f64) -> FeatureDensity {
    let mut counts = vec![0u64; codes.d_sae];
    count_firing(codes, &mut counts);
    density_from_counts(&counts, codes.rows(), dense_threshold)
}

/// Adds, per latent, the rows of `codes` on which it is non-zero.
fn count_firing(codes: &SparseCodes, counts: &mut [u64]) {
    for (&j, &v) in codes.csr.feature.iter().zip(&codes.csr.value) {
        if v != 0.0 {
            counts[j as usize] += 1;
        }
    }
}

fn density_from_counts(counts: &[u64], rows: usize, dense_threshold: f64) -> FeatureDensity {
    let rows = rows.max(1) as f64;
    let density: Vec<f64> = counts.iter().map(|&c| c as f64 / rows).collect();
    let n = counts.len().max(1) as f64;
    let mut log10_histogram: Vec<(f64, usize)> =
        (0..16).map(|b| (-8.0 + 0.5 * b as f64, 0)).collect();
    for &d in density.iter().filter(|&&d| d > 0.0) {
        let bin = (((d.log10() + 8.0) / 0.5).floor().max(0.0) as usize).min(15);
        log10_histogram[bin].1 += 1;
    }
    FeatureDensity {
        dead_fraction: density.iter().filter(|&&d| d == 0.0).count() as f64 / n,
        dense_fraction: density.iter().filter(|&&d| d > dense_threshold).count() as f64 / n,
        dense_threshold,
        log10_histogram,
        density,
    }
}

/// [`evaluate`] over more rows than fit in one call: feed blocks with
/// [`EvaluationAccumulator::add`], then [`EvaluationAccumulator::finish`]. The target
/// variance comes from per-column sums in f64, so the result does not depend on the blocking.
#[derive(Clone, Debug)]
pub struct EvaluationAccumulator {
    d_out: usize,
    rows: usize,
    nnz: u64,
    sq_err: f64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    counts: Vec<u64>,
}

impl EvaluationAccumulator {
    /// An empty accumulator for `dict`'s dimensions.
    pub fn new(dict: &Dictionary) -> Self {
        EvaluationAccumulator {
            d_out: dict.d_out,
            rows: 0,
            nnz: 0,
            sq_err: 0.0,
            sum: vec![0.0; dict.d_out],
            sum_sq: vec![0.0; dict.d_out],
            counts: vec![0; dict.d_sae],
        }
    }

    /// Encodes and reconstructs a block of rows `x` against targets `y` (`None`: y = x).
    pub fn add(&mut self, dict: &Dictionary, x: &[f32], y: Option<&[f32]>) -> Result<()> {
        let rows = check_rows("evaluation input", x, dict.d_in)?;
        let target = y.unwrap_or(x);
        let t_rows = check_rows("evaluation target", target, dict.d_out)?;
        if t_rows != rows || dict.d_out != self.d_out || dict.d_sae != self.counts.len() {
            return Err(SaeError::Config(format!(
                "evaluation block: input has {rows} rows, target {t_rows}; dictionary \
                 d_out {} d_sae {}, accumulator {} {}",
                dict.d_out,
                dict.d_sae,
                self.d_out,
                self.counts.len()
            )));
        }
        let (codes, recon) = dict.forward(x)?;
        self.sq_err += recon
            .iter()
            .zip(target)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum::<f64>();
        for row in target.chunks(self.d_out) {
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(row) {
                *s += v as f64;
                *q += (v as f64) * (v as f64);
            }
        }
        count_firing(&codes, &mut self.counts);
        self.nnz += codes.nnz() as u64;
        self.rows += rows;
        Ok(())
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The evaluation of every row added.
    pub fn finish(&self) -> Evaluation {
        let n = self.rows.max(1) as f64;
        let total: f64 = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(s, q)| (q - s * s / n).max(0.0))
            .sum();
        let fvu = if total > 0.0 {
            self.sq_err / total
        } else {
            f64::INFINITY
        };
        Evaluation {
            rows: self.rows,
            mse: self.sq_err / (self.rows * self.d_out).max(1) as f64,
            fvu,
            fve: 1.0 - fvu,
            l0: self.nnz as f64 / n,
            density: density_from_counts(&self.counts, self.rows, 0.1),
        }
    }
}

/// Evaluates `dict` on inputs `x` against targets `y` (`None`: y = x, an SAE).
pub fn evaluate(dict: &Dictionary, x: &[f32], y: Option<&[f32]>) -> Result<Evaluation> {
    let rows = check_rows("evaluation input", x, dict.d_in)?;
    let target = y.unwrap_or(x);
    let t_rows = check_rows("evaluation target", target, dict.d_out)?;
    if t_rows != rows {
        return Err(SaeError::Config(format!(
            "evaluation input has {rows} rows, target {t_rows}"
        )));
    }
    let (codes, recon) = dict.forward(x)?;
    let (mse, fvu) = mse_and_fvu(&recon, target, dict.d_out);
    Ok(Evaluation {
        rows,
        mse,
        fvu,
        fve: 1.0 - fvu,
        l0: codes.nnz() as f64 / rows.max(1) as f64,
        density: feature_density(&codes, 0.1),
    })
}

/// Refuses a dictionary whose FVU on `sample` is far worse than the FVU recorded at training
/// (more than twice it plus 0.1), or worse than predicting the mean when none is recorded: the
/// usual cause is activations from another layer (an off-by-one in layer numbering) or site.
/// Returns the measured FVU.
pub fn check_fvu(dict: &Dictionary, sample_x: &[f32], sample_y: Option<&[f32]>) -> Result<f64> {
    let eval = evaluate(dict, sample_x, sample_y)?;
    let recorded = dict.meta.metrics.fvu;
    let limit = recorded.map(|r| 2.0 * r + 0.1).unwrap_or(1.0);
    if eval.fvu > limit || eval.fvu.is_nan() {
        let s = &dict.meta.source;
        return Err(SaeError::FvuMismatch {
            measured: eval.fvu,
            recorded: recorded.unwrap_or(f64::NAN),
            expected_source: format!(
                "model {:?}, layer {:?}, site {:?}, level {:?}",
                s.model,
                s.layer,
                s.site.map(Site::name),
                s.level.map(Level::name)
            ),
        });
    }
    Ok(eval.fvu)
}

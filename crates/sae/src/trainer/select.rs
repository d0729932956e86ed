//! Training-time code selection that differs from inference: BatchTopK over the whole batch,
//! and JumpReLU's straight-through threshold gradient.

use plmscope_store::CsrRows;
use rayon::prelude::*;

use crate::csr::build_rows;
use crate::kernels::{dot, top_k_positive};

/// BatchTopK selection: the `budget` largest positive pre-activations of the whole batch.
/// Returns the codes and the smallest kept value (the inference threshold estimate).
pub(crate) fn batch_top_k(
    pre: &[f32],
    rows: usize,
    d_sae: usize,
    budget: usize,
) -> (CsrRows, Option<f32>) {
    // Each row's top 4·(budget/rows) are candidates; if a row fills its quota at or above the
    // global cut, the cut may be wrong for it, so fall back to every positive value.
    let per_row = budget.div_ceil(rows);
    for quota in [(4 * per_row).min(d_sae), d_sae] {
        let cand = build_rows(rows, |r, s, i, v| {
            top_k_positive(&pre[r * d_sae..(r + 1) * d_sae], None, quota, s, i, v)
        });
        if cand.nnz() <= budget {
            let min = cand.value.iter().copied().reduce(f32::min);
            return (cand, min);
        }
        let mut vals = cand.value.clone();
        let (_, cut, _) = vals.select_nth_unstable_by(budget - 1, |a, b| b.total_cmp(a));
        let cut = *cut;
        let row_full_above_cut = (0..rows).any(|r| {
            let (_, values) = cand.row(r);
            values.len() == quota && values.iter().all(|&v| v >= cut)
        });
        if row_full_above_cut && quota < d_sae {
            continue;
        }
        let mut ties_left = budget - cand.value.iter().filter(|&&v| v > cut).count();
        let mut out = CsrRows::new();
        let (mut kept_features, mut kept_values) = (Vec::new(), Vec::new());
        for r in 0..rows {
            let (features, values) = cand.row(r);
            kept_features.clear();
            kept_values.clear();
            for (&j, &v) in features.iter().zip(values) {
                if v > cut || (v == cut && ties_left > 0) {
                    if v == cut {
                        ties_left -= 1;
                    }
                    kept_features.push(j);
                    kept_values.push(v);
                }
            }
            out.push_row(&kept_features, &kept_values);
        }
        return (out, Some(cut));
    }
    unreachable!("the last quota is d_sae, which always returns")
}

/// JumpReLU threshold gradient (straight-through, rectangle kernel of width ε): for entries with
/// |pre − θ| < ε/2, dθ += −(θ/ε)·dL/dcode − λ₀/(rows·ε); then d log θ = θ·dθ.
#[allow(clippy::too_many_arguments)]
pub(crate) fn jumprelu_threshold_grad(
    grad_log_theta: &mut [f32],
    theta: &[f32],
    pre: &[f32],
    de: &[f32],
    w_dec: &[f32],
    rows: usize,
    d_sae: usize,
    d_out: usize,
    cfg: &crate::trainer::TrainConfig,
) {
    let eps = cfg.jumprelu_bandwidth;
    let l0_term = cfg.l0_coefficient / (rows as f32 * eps);
    let per_row: Vec<Vec<(u32, f32)>> = (0..rows)
        .into_par_iter()
        .map(|r| {
            let mut out = Vec::new();
            for (j, (&a, &t)) in pre[r * d_sae..(r + 1) * d_sae]
                .iter()
                .zip(theta)
                .enumerate()
            {
                if (a - t).abs() < eps / 2.0 {
                    let dcode = dot(
                        &de[r * d_out..(r + 1) * d_out],
                        &w_dec[j * d_out..(j + 1) * d_out],
                    );
                    out.push((j as u32, -(t / eps) * dcode - l0_term));
                }
            }
            out
        })
        .collect();
    grad_log_theta.fill(0.0);
    for (j, g) in per_row.into_iter().flatten() {
        grad_log_theta[j as usize] += g;
    }
    grad_log_theta
        .iter_mut()
        .zip(theta)
        .for_each(|(g, t)| *g *= t);
}

//! Multiple-testing corrections on `ln p`, so that p-values far below `f64`'s range (1e-308)
//! keep their order and their adjusted values.
//!
//! Both functions take `total_tests >= ln_p.len()`: tests that were made but not materialised
//! (in enrichment, terms a unit never touches, whose p is exactly 1) are counted in `m` without
//! being passed. This is exact, not an approximation: p = 1 tests rank last, and every adjusted
//! value they could contribute to the running minimum is `>= 1`, which the final clip to 1 removes.

use rayon::slice::ParallelSliceMut;

use crate::stats_error::{StatsError, StatsResult};

/// Benjamini–Hochberg adjusted p-values (q-values) as `ln q`, in the input order.
///
/// Same definition as `statsmodels.stats.multitest.multipletests(method="fdr_bh")`:
/// sort ascending, `q(i) = min over j >= i of p(j)·m/j`, clipped to 1 — so q is monotone in p and
/// tied p get the same q. Computed as `ln p(j) + ln(m/j)`, so it never underflows.
pub fn benjamini_hochberg_ln_q(ln_p: &[f64], total_tests: usize) -> StatsResult<Vec<f64>> {
    check_inputs(ln_p, total_tests)?;
    // Values sorted next to their positions (not indices into ln_p): the sort then reads
    // contiguous memory, which matters with millions of tests.
    let mut order: Vec<(f64, usize)> = ln_p.iter().copied().zip(0..).collect();
    order.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let m = total_tests as f64;
    let mut ln_q = vec![0.0; ln_p.len()];
    let mut running_min = 0.0f64; // ln 1: the clip
    for (rank0, &(value, index)) in order.iter().enumerate().rev() {
        let rank = (rank0 + 1) as f64;
        let adjusted = value + (m / rank).ln();
        running_min = running_min.min(adjusted);
        ln_q[index] = running_min;
    }
    Ok(ln_q)
}

/// Bonferroni adjusted p-values as `ln q = min(0, ln p + ln m)`, in the input order (the seed
/// paper's correction).
pub fn bonferroni_ln_q(ln_p: &[f64], total_tests: usize) -> StatsResult<Vec<f64>> {
    check_inputs(ln_p, total_tests)?;
    let ln_m = (total_tests as f64).ln();
    Ok(ln_p.iter().map(|&lp| (lp + ln_m).min(0.0)).collect())
}

fn check_inputs(ln_p: &[f64], total_tests: usize) -> StatsResult<()> {
    if total_tests < ln_p.len() {
        return Err(StatsError::TooFewTests {
            given: ln_p.len(),
            total_tests,
        });
    }
    if let Some((position, &bad)) = ln_p
        .iter()
        .enumerate()
        .find(|(_, lp)| lp.is_nan() || **lp > 0.0)
    {
        return Err(StatsError::InvalidLnP {
            position,
            ln_p: bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_bh() {
        // p = 0.01, 0.04, 0.03, 0.2 with m = 4: raw 0.04, 0.053, 0.06, 0.2 -> monotone.
        let p = [0.01f64, 0.04, 0.03, 0.2];
        let ln_p: Vec<f64> = p.iter().map(|x| x.ln()).collect();
        let q: Vec<f64> = benjamini_hochberg_ln_q(&ln_p, 4)
            .unwrap()
            .iter()
            .map(|x| x.exp())
            .collect();
        let want = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.2];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{q:?}");
        }
    }

    #[test]
    fn unmaterialised_unit_p_values_only_change_m() {
        let ln_p = [-50.0, -3.0, -0.5];
        let short = benjamini_hochberg_ln_q(&ln_p, 10).unwrap();
        let mut padded = ln_p.to_vec();
        padded.resize(10, 0.0);
        let full = benjamini_hochberg_ln_q(&padded, 10).unwrap();
        assert_eq!(&full[..3], &short[..]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(benjamini_hochberg_ln_q(&[-1.0, f64::NAN], 2).is_err());
        assert!(benjamini_hochberg_ln_q(&[-1.0, 0.5], 2).is_err());
        assert!(bonferroni_ln_q(&[-1.0, -2.0], 1).is_err());
        assert_eq!(bonferroni_ln_q(&[-1000.0, -0.1], 10).unwrap()[1], 0.0);
    }
}

//! One-sided hypergeometric upper tail `P(X >= k)`, exact, in log space.
//!
//! `X` counts successes among `n_study` proteins drawn without replacement from a population of
//! `n_pop` proteins of which `k_pop` carry the term. [`ln_sf`] returns `ln P(X >= k)` and never
//! underflows: a p-value of 1e-5000 is returned as about -11513. This is the quantity of
//! `scipy.stats.hypergeom.sf(k - 1, M = n_pop, n = k_pop, N = n_study)`.
//!
//! # Fisher's exact test is the same test
//! goatools (the seed paper's tool) runs Fisher's exact test on the 2×2 table
//! `[[a, b], [c, d]]` = `[[study hits, study non-hits], [population hits outside the study,
//! the rest]]`. Conditioned on the margins, `a` is hypergeometric with population
//! `a + b + c + d`, successes `a + c` and draws `a + b`, so the one-sided ("greater") Fisher
//! p-value is exactly `P(X >= a)` of that hypergeometric: [`fisher_greater_ln_p`]. goatools
//! (`pvalcalc.py`) reports the two-sided p (the `fisher` package's `two_tail`, or scipy's
//! `fisher_exact` with its default alternative); for an over-represented term the two-sided p is
//! at least the one-sided one, so the one-sided test here is the enrichment question asked
//! directly (depletion is not tested) and is never less powerful.
//!
//! # Method and error bound
//! 1. The first tail term is the pmf, evaluated with Loader's saddle-point form (C. Loader,
//!    "Fast and accurate computation of binomial probabilities", 2000; the method behind R's
//!    `dhyper`): the hypergeometric pmf is a ratio of three binomial pmfs at `p = n_study/n_pop`,
//!    each written as `stirlerr` corrections plus the deviance `bd0(x, np) = x ln(x/np) + np - x`
//!    computed by a series near `x = np`. No ln-factorial table is used because its entries grow
//!    like `N ln N` and the pmf is a difference of such entries: at N = 570,000 (Swiss-Prot) one
//!    ulp of ln N! is 1e-9, which would already use up the whole tolerance. The saddle-point form
//!    only adds quantities of the size of `ln p` itself, so the absolute error of `ln pmf` is a
//!    few ulps of `|ln pmf|` for any population size, i.e. a relative error of `p` of about
//!    `1e-15 × max(1, |ln p|)`.
//! 2. The remaining terms follow by the exact ratio
//!    `t(i+1)/t(i) = (K-i)(n-i) / ((i+1)(N-K-n+i+1))`, each costing 5 roundings, so after `m`
//!    terms the relative error of a term is at most `5 m ε`; all terms are positive, so the sum has
//!    the same relative bound (`m` <= 2,000 in GO-sized problems: below 3e-12).
//! 3. When `k` is above the mean, terms decrease from `k` on; when `k` is at or below the mean,
//!    `P(X >= k) >= 1/2` (the median of a hypergeometric is within 1 of its mean) and the
//!    complement `1 - P(X <= k-1)` is summed downward from `k-1` instead, losing at most a factor 2
//!    of relative accuracy. Either way the summed terms shrink geometrically because the pmf is
//!    log-concave (ratios are monotone), so the sum stops once the bound `t·r/(1-r)` on everything
//!    left is below `1e-17` of the sum: truncation error below `1e-17`, relative.

use crate::stats_error::{StatsError, StatsResult};

/// `ln P(X >= k)` for `X ~ Hypergeometric(population n_pop, successes k_pop, draws n_study)`.
///
/// Returns `0.0` (p = 1) for `k` at or below the lowest possible count and `-inf` (p = 0) for
/// `k` above the highest possible count. Errors if `n_study > n_pop` or `k_pop > n_pop`.
pub fn ln_sf(k: u32, n_study: u32, k_pop: u32, n_pop: u32) -> StatsResult<f64> {
    check_counts(n_study, k_pop, n_pop)?;
    Ok(ln_sf_unchecked(k, n_study, k_pop, n_pop))
}

/// `P(X >= k)` as an `f64`; underflows to 0 below about 1e-308. Store [`ln_sf`] instead.
pub fn sf(k: u32, n_study: u32, k_pop: u32, n_pop: u32) -> StatsResult<f64> {
    ln_sf(k, n_study, k_pop, n_pop).map(f64::exp)
}

/// `ln P(X = k)` for the same distribution (`-inf` outside the support).
pub fn ln_pmf(k: u32, n_study: u32, k_pop: u32, n_pop: u32) -> StatsResult<f64> {
    check_counts(n_study, k_pop, n_pop)?;
    let support = Support::new(n_study, k_pop, n_pop);
    if k < support.lo || k > support.hi {
        return Ok(f64::NEG_INFINITY);
    }
    Ok(ln_pmf_in_support(k, n_study, k_pop, n_pop))
}

/// One-sided ("greater") Fisher's exact test on `[[a, b], [c, d]]`, as `ln p`.
///
/// `a` = study proteins with the term, `b` = study proteins without it, `c` = population
/// proteins outside the study with the term, `d` = the rest. Equals
/// `scipy.stats.fisher_exact([[a, b], [c, d]], alternative="greater")`.
pub fn fisher_greater_ln_p(a: u32, b: u32, c: u32, d: u32) -> StatsResult<f64> {
    let total = u64::from(a) + u64::from(b) + u64::from(c) + u64::from(d);
    let n_pop = u32::try_from(total).map_err(|_| StatsError::InvalidParameter {
        name: "a + b + c + d".into(),
        value: total.to_string(),
        requirement: "the table total must fit in u32".into(),
    })?;
    ln_sf(a, a + b, a + c, n_pop)
}

fn check_counts(n_study: u32, k_pop: u32, n_pop: u32) -> StatsResult<()> {
    if n_study > n_pop || k_pop > n_pop {
        return Err(StatsError::InconsistentCounts {
            n_study,
            k_pop,
            n_pop,
        });
    }
    Ok(())
}

/// Range of counts with nonzero probability.
struct Support {
    lo: u32,
    hi: u32,
}

impl Support {
    fn new(n_study: u32, k_pop: u32, n_pop: u32) -> Self {
        let lo = (u64::from(n_study) + u64::from(k_pop)).saturating_sub(u64::from(n_pop)) as u32;
        Support {
            lo,
            hi: n_study.min(k_pop),
        }
    }
}

/// Relative size below which the rest of a geometric-bounded tail is ignored.
const TAIL_STOP: f64 = 1e-17;

/// [`ln_sf`] for counts already known to be consistent (the enrichment engine's hot path).
pub(crate) fn ln_sf_unchecked(k: u32, n_study: u32, k_pop: u32, n_pop: u32) -> f64 {
    let support = Support::new(n_study, k_pop, n_pop);
    if k <= support.lo {
        return 0.0;
    }
    if k > support.hi {
        return f64::NEG_INFINITY;
    }
    let (n, kp, np) = (f64::from(n_study), f64::from(k_pop), f64::from(n_pop));
    // ratio(i) = t(i+1) / t(i), exact in real arithmetic.
    let ratio = |i: f64| ((kp - i) * (n - i)) / ((i + 1.0) * (np - kp - n + i + 1.0));
    let mean = n * kp / np;
    if f64::from(k) > mean {
        let mut sum = 1.0;
        let mut term = 1.0;
        for i in k..support.hi {
            let r = ratio(f64::from(i));
            term *= r;
            sum += term;
            // Ratios only decrease from here (log-concavity), so what is left is at most
            // term·r/(1-r).
            if r < 1.0 && term * r <= TAIL_STOP * sum * (1.0 - r) {
                break;
            }
        }
        (ln_pmf_in_support(k, n_study, k_pop, n_pop) + sum.ln()).min(0.0)
    } else {
        // P(X >= k) >= 1/2 here, so 1 - P(X <= k-1) keeps its relative accuracy.
        let mut sum = 1.0;
        let mut term = 1.0;
        let mut i = k - 1;
        while i > support.lo {
            // t(i-1) / t(i) = 1 / ratio(i-1)
            let r = 1.0 / ratio(f64::from(i - 1));
            term *= r;
            sum += term;
            i -= 1;
            if r < 1.0 && term * r <= TAIL_STOP * sum * (1.0 - r) {
                break;
            }
        }
        let ln_lower = ln_pmf_in_support(k - 1, n_study, k_pop, n_pop) + sum.ln();
        (-ln_lower.exp()).ln_1p().min(0.0)
    }
}

/// `ln P(X = k)` for `k` in the support, by Loader's saddle-point decomposition.
fn ln_pmf_in_support(k: u32, n_study: u32, k_pop: u32, n_pop: u32) -> f64 {
    if n_study == 0 || n_study == n_pop || k_pop == 0 || k_pop == n_pop {
        return 0.0; // degenerate: a single possible count
    }
    let p = f64::from(n_study) / f64::from(n_pop);
    let q = f64::from(n_pop - n_study) / f64::from(n_pop);
    ln_binom_pmf(k, k_pop, p, q) + ln_binom_pmf(n_study - k, n_pop - k_pop, p, q)
        - ln_binom_pmf(n_study, n_pop, p, q)
}

/// `ln` of the binomial pmf `C(n, x) p^x q^(n-x)`, with `q = 1 - p` passed separately so that
/// neither loses digits, for `0 < p < 1`.
fn ln_binom_pmf(x: u32, n: u32, p: f64, q: f64) -> f64 {
    let (xf, nf) = (f64::from(x), f64::from(n));
    if x == 0 {
        if n == 0 {
            return 0.0;
        }
        return if p < 0.1 {
            -bd0(nf, nf * q) - nf * p
        } else {
            nf * q.ln()
        };
    }
    if x == n {
        return if q < 0.1 {
            -bd0(nf, nf * p) - nf * q
        } else {
            nf * p.ln()
        };
    }
    let corrections = stirlerr(n) - stirlerr(x) - stirlerr(n - x);
    let deviance = bd0(xf, nf * p) + bd0(nf - xf, nf * q);
    let ln_scale = std::f64::consts::TAU.ln() + xf.ln() + (-xf / nf).ln_1p();
    corrections - deviance - 0.5 * ln_scale
}

/// `ln n! - [(n + 1/2) ln n - n + ln √(2π)]`, the error of Stirling's formula.
fn stirlerr(n: u32) -> f64 {
    if (n as usize) < SMALL_STIRLERR.len() {
        return SMALL_STIRLERR[n as usize];
    }
    // Asymptotic series; the first omitted term, 691/(360360 n^11), is 1.1e-16 at n = 16 (an
    // absolute error of ln p) and falls fast after.
    let nf = f64::from(n);
    let inv2 = 1.0 / (nf * nf);
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    (S0 - (S1 - (S2 - (S3 - S4 * inv2) * inv2) * inv2) * inv2) / nf
}

/// `stirlerr(n)` for n = 0..=15, from `ln n!` of the exactly representable `n!`.
/// Index 0 is never used (x = 0 and x = n are handled before `stirlerr` is called).
static SMALL_STIRLERR: std::sync::LazyLock<[f64; 16]> = std::sync::LazyLock::new(|| {
    let mut table = [0.0; 16];
    let mut factorial = 1.0f64;
    for (n, slot) in table.iter_mut().enumerate().skip(1) {
        let nf = n as f64;
        factorial *= nf; // exact: 15! < 2^53
        let ln_sqrt_tau = 0.5 * std::f64::consts::TAU.ln();
        *slot = factorial.ln() - ((nf + 0.5) * nf.ln() - nf + ln_sqrt_tau);
    }
    table
});

/// Deviance term `x ln(x / m) + m - x`, accurate also when `x ≈ m` (where the direct formula
/// cancels) through the series in `v = (x - m)/(x + m)`.
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let v2 = v * v;
        let mut sum = (x - m) * v;
        let mut power = 2.0 * x * v;
        let mut j = 1.0;
        loop {
            power *= v2;
            j += 2.0;
            let next = sum + power / j;
            if next == sum {
                return sum;
            }
            sum = next;
        }
    }
    x * (x / m).ln() + m - x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct sum of exact binomial coefficients for tiny populations (independent of Loader).
    fn brute_sf(k: u32, n: u32, kp: u32, np: u32) -> f64 {
        fn choose(a: u32, b: u32) -> f64 {
            if b > a {
                return 0.0;
            }
            (0..b).fold(1.0, |acc, i| acc * f64::from(a - i) / f64::from(i + 1))
        }
        let total = choose(np, n);
        (k..=n.min(kp))
            .map(|i| choose(kp, i) * choose(np - kp, n - i))
            .sum::<f64>()
            / total
    }

    #[test]
    fn matches_direct_enumeration_on_small_populations() {
        for np in [1u32, 2, 7, 20, 40] {
            for kp in 0..=np {
                for n in 0..=np {
                    for k in 0..=n + 1 {
                        let want = brute_sf(k, n, kp, np);
                        let got = sf(k, n, kp, np).unwrap();
                        let tol = 1e-12 * want.max(1e-300);
                        assert!(
                            (got - want).abs() <= tol,
                            "k={k} n={n} K={kp} N={np}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn edges_of_the_support() {
        assert_eq!(ln_sf(0, 5, 3, 10).unwrap(), 0.0);
        assert_eq!(ln_sf(4, 5, 3, 10).unwrap(), f64::NEG_INFINITY);
        // n + K - N = 3 successes are guaranteed.
        assert_eq!(ln_sf(3, 8, 5, 10).unwrap(), 0.0);
        assert!(ln_sf(1, 11, 3, 10).is_err());
        assert!(ln_sf(1, 3, 11, 10).is_err());
    }

    #[test]
    fn fisher_greater_is_the_hypergeometric_tail() {
        let (a, b, c, d) = (12, 30, 40, 900);
        let fisher = fisher_greater_ln_p(a, b, c, d).unwrap();
        let direct = ln_sf(a, a + b, a + c, a + b + c + d).unwrap();
        assert_eq!(fisher, direct);
    }
}

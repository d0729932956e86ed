//! L1-penalised logistic regression by proximal Newton steps with coordinate descent (the
//! glmnet scheme: Friedman, Hastie & Tibshirani, J. Stat. Softw. 2010): each outer step
//! approximates the log-loss by a weighted least-squares problem at the current fit, solves it
//! with cyclic soft-thresholded coordinate descent over the active set, checks the optimality
//! conditions of every zero coefficient in parallel, and backtracks if the objective rose.
//!
//! Objective (scikit-learn's, divided by `C·n`): `(1/n) Σ log(1 + e^η) − yη + λ‖β‖₁` with
//! `η = β₀ + xβ`, intercept unpenalised (as `solver='saga'`), `λ = 1 / (C·n)`.

use rayon::prelude::*;

pub use super::columns::Columns;

/// A fitted model on the standardised scale.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticFit {
    pub intercept: f64,
    pub coef: Vec<f64>,
}

impl LogisticFit {
    pub fn zeros(cols: usize) -> Self {
        LogisticFit {
            intercept: 0.0,
            coef: vec![0.0; cols],
        }
    }

    pub fn nonzero(&self) -> usize {
        self.coef.iter().filter(|c| **c != 0.0).count()
    }

    /// Linear predictor `β₀ + xβ` for every row of `x`.
    pub fn linear(&self, x: &Columns) -> Vec<f64> {
        let mut eta = vec![self.intercept; x.rows];
        for (j, &b) in self.coef.iter().enumerate() {
            if b != 0.0 {
                x.axpy(j, b, &mut eta);
            }
        }
        eta
    }
}

/// Stopping rules.
#[derive(Clone, Copy, Debug)]
pub struct SolverOptions {
    /// Stop when no coefficient moved by more than this (standardised scale) in an outer step.
    pub tol: f64,
    pub max_outer: usize,
    pub max_sweeps: usize,
    /// Sparse values are kept sparse while at most this share of them is nonzero.
    pub sparse_below: f64,
}

impl SolverOptions {
    /// The options for points of a path before its last: only their support and held-out
    /// AUROC are reported, so they stop a thousand times sooner.
    pub fn loosened(self) -> Self {
        SolverOptions {
            tol: self.tol * 1e3,
            ..self
        }
    }
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions {
            tol: 1e-7,
            max_outer: 100,
            max_sweeps: 1000,
            sparse_below: 0.25,
        }
    }
}

fn log1pexp(x: f64) -> f64 {
    if x > 35.0 {
        x
    } else if x < -35.0 {
        x.exp()
    } else {
        x.exp().ln_1p()
    }
}

pub(super) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The objective at linear predictor `eta`.
pub fn objective(eta: &[f64], y: &[f64], fit: &LogisticFit, lambda: f64) -> f64 {
    let n = y.len().max(1) as f64;
    let loss: f64 = eta
        .iter()
        .zip(y)
        .map(|(&e, &t)| log1pexp(e) - t * e)
        .sum::<f64>();
    loss / n + lambda * fit.coef.iter().map(|c| c.abs()).sum::<f64>()
}

/// `max_j |(1/n) Σ x_ij (y_i − ȳ)|`: the smallest λ whose solution is all zeros.
pub fn lambda_max(x: &Columns, y: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    (0..x.cols)
        .into_par_iter()
        .map(|j| {
            // Sparse columns are uncentred; Σ x_ij (y_i − ȳ) is the same either way.
            let g: f64 = x.entries(j).map(|(i, v)| v as f64 * (y[i] - mean)).sum();
            (g / n).abs()
        })
        .reduce(|| 0.0, f64::max)
}

fn soft(z: f64, t: f64) -> f64 {
    if z > t {
        z - t
    } else if z < -t {
        z + t
    } else {
        0.0
    }
}

/// Fits at `lambda`, starting from `start` (warm start along a path).
pub fn fit(
    x: &Columns,
    y: &[f64],
    lambda: f64,
    start: LogisticFit,
    options: SolverOptions,
) -> LogisticFit {
    let n = x.rows as f64;
    let mut current = start;
    let mut eta = current.linear(x);
    let mut obj = objective(&eta, y, &current, lambda);
    for _ in 0..options.max_outer {
        let probability: Vec<f64> = eta.iter().map(|&e| sigmoid(e)).collect();
        let w: Vec<f64> = probability
            .iter()
            .map(|p| (p * (1.0 - p)).max(1e-5))
            .collect();
        // Residual of the working response z = η + (y − p)/w against the current fit.
        let r: Vec<f64> = y
            .iter()
            .zip(&probability)
            .zip(&w)
            .map(|((t, p), w)| (t - p) / w)
            .collect();
        let proposal = if x.gram_fits() {
            let every_unit = ((x.cols + 1) as f64).powi(2) * n <= 2e10;
            weighted_lasso_gram(x, &w, r, lambda, &current, options, every_unit)
        } else {
            weighted_lasso(x, &w, r, lambda, &current, options)
        };
        // Backtrack along current → proposal until the objective does not rise.
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            let candidate = blend(&current, &proposal, step);
            let candidate_eta = candidate.linear(x);
            let candidate_obj = objective(&candidate_eta, y, &candidate, lambda);
            if candidate_obj <= obj + 1e-12 * obj.abs().max(1.0) {
                accepted = Some((candidate, candidate_eta, candidate_obj));
                break;
            }
            step *= 0.5;
        }
        let Some((next, next_eta, next_obj)) = accepted else {
            break;
        };
        let moved = next
            .coef
            .iter()
            .zip(&current.coef)
            .map(|(a, b)| (a - b).abs())
            .fold((next.intercept - current.intercept).abs(), f64::max);
        let improvement = obj - next_obj;
        current = next;
        eta = next_eta;
        obj = next_obj;
        if moved < options.tol || improvement.abs() < 1e-14 * obj.abs().max(1.0) / n.max(1.0) {
            break;
        }
    }
    current
}

fn blend(a: &LogisticFit, b: &LogisticFit, t: f64) -> LogisticFit {
    if t == 1.0 {
        return b.clone();
    }
    LogisticFit {
        intercept: a.intercept + t * (b.intercept - a.intercept),
        coef: a
            .coef
            .iter()
            .zip(&b.coef)
            .map(|(x, y)| x + t * (y - x))
            .collect(),
    }
}

/// Minimises `(1/2n) Σ w_i (z_i − β₀ − x_iβ)² + λ‖β‖₁` by coordinate descent from `start`,
/// where `r = z − β₀ − Xβ` at `start`.
fn weighted_lasso(
    x: &Columns,
    w: &[f64],
    mut r: Vec<f64>,
    lambda: f64,
    start: &LogisticFit,
    options: SolverOptions,
) -> LogisticFit {
    let n = x.rows as f64;
    let w_sum: f64 = w.iter().sum();
    let mut fit = start.clone();
    let curvature: Vec<f64> = (0..x.cols)
        .into_par_iter()
        .map(|j| x.weighted_square(j, w) / n)
        .collect();
    let mut active: Vec<usize> = (0..x.cols).filter(|&j| fit.coef[j] != 0.0).collect();
    for _ in 0..options.max_sweeps {
        // Sweep the active set to convergence, then admit every violator of the KKT condition.
        for _ in 0..options.max_sweeps {
            let mut max_change = update_intercept(&mut fit, &mut r, w, w_sum);
            for &j in &active {
                max_change = max_change.max(update_coordinate(
                    x,
                    w,
                    &mut r,
                    &mut fit,
                    j,
                    curvature[j],
                    lambda,
                ));
            }
            if max_change < options.tol * 0.1 {
                break;
            }
        }
        let violators = kkt_violators(x, w, &r, lambda, &fit);
        if violators.is_empty() {
            break;
        }
        for j in violators {
            update_coordinate(x, w, &mut r, &mut fit, j, curvature[j], lambda);
            if fit.coef[j] != 0.0 {
                active.push(j);
            }
        }
        active.sort_unstable();
        active.dedup();
    }
    fit
}

/// The zero coordinates whose gradient on the residual `r` breaks the lasso's optimality
/// condition `|(1/n) Σ w_i x_ij r_i| ≤ λ` (an all-zero column never does).
fn kkt_violators(x: &Columns, w: &[f64], r: &[f64], lambda: f64, fit: &LogisticFit) -> Vec<usize> {
    let n = x.rows as f64;
    (0..x.cols)
        .into_par_iter()
        .filter(|&j| fit.coef[j] == 0.0)
        .filter(|&j| (x.dot2(j, w, r) / n).abs() > lambda * (1.0 + 1e-9))
        .collect()
}

/// [`weighted_lasso`] by covariance updates (glmnet's "covariance" mode): the weighted Gram
/// matrix `G = (1/n) [1 X]ᵀ W [1 X]` and the gradient `c` at `start` are formed by one gemm,
/// and coordinate descent on the step `Δ` then needs only `G` (the gradient at `Δ` is
/// `c − GΔ`), so a sweep costs O(|working set| · units) instead of O(rows · |working set|), and
/// the KKT check of the zero coordinates costs nothing extra. When the Gram matrix of every unit
/// would cost more than ~20 GFLOP per Newton step, it is formed over the active set only,
/// round by round, and the zero coordinates are checked on the exact residual.
fn weighted_lasso_gram(
    x: &Columns,
    w: &[f64],
    mut r: Vec<f64>,
    lambda: f64,
    start: &LogisticFit,
    options: SolverOptions,
    every_unit: bool,
) -> LogisticFit {
    let root_w: Vec<f64> = w.iter().map(|w| w.sqrt()).collect();
    let mut fit = start.clone();
    if every_unit {
        let units: Vec<usize> = (0..x.cols).collect();
        let mut problem = GramProblem::new(x, &root_w, &r, &units, &fit);
        let mut working: Vec<usize> = (0..problem.size)
            .filter(|&p| p == 0 || fit.coef[p - 1] != 0.0)
            .collect();
        for _ in 0..options.max_sweeps {
            problem.sweep(&working, lambda, options);
            let admitted: Vec<usize> = (1..problem.size)
                .filter(|&p| problem.value(p) == 0.0 && !working.contains(&p))
                .filter(|&p| problem.gradient(p).abs() > lambda * (1.0 + 1e-9))
                .collect();
            if admitted.is_empty() {
                break;
            }
            working.extend(admitted);
        }
        fit.intercept += problem.step[0];
        for (j, c) in fit.coef.iter_mut().enumerate() {
            *c = problem.value(j + 1);
        }
        return fit;
    }
    let mut active: Vec<usize> = (0..x.cols).filter(|&j| fit.coef[j] != 0.0).collect();
    for _ in 0..options.max_sweeps {
        let mut problem = GramProblem::new(x, &root_w, &r, &active, &fit);
        let working: Vec<usize> = (0..problem.size).collect();
        problem.sweep(&working, lambda, options);
        fit.intercept += problem.step[0];
        r.iter_mut().for_each(|r| *r -= problem.step[0]);
        for (p, &j) in active.iter().enumerate() {
            let delta = problem.step[p + 1];
            if delta != 0.0 {
                fit.coef[j] += delta;
                x.axpy(j, -delta, &mut r);
            }
        }
        // Soft-thresholding sets coefficients exactly to zero: drop them from the active set.
        active.retain(|&j| fit.coef[j] != 0.0);
        let violators = kkt_violators(x, w, &r, lambda, &fit);
        if violators.is_empty() {
            break;
        }
        active.extend(violators);
        active.sort_unstable();
    }
    fit
}

/// The weighted least-squares step of [`weighted_lasso_gram`] over some units: position 0 is
/// the intercept, position `p > 0` the unit `units[p − 1]`.
struct GramProblem {
    size: usize,
    gram: Vec<f64>,
    /// `(1/n) [1 X]ᵀ W r` at the start.
    c: Vec<f64>,
    /// Each position's coefficient at the start (0 for the intercept, which is unpenalised).
    start: Vec<f64>,
    step: Vec<f64>,
    /// `G · step`.
    g_step: Vec<f64>,
}

impl GramProblem {
    fn new(x: &Columns, root_w: &[f64], r: &[f64], units: &[usize], fit: &LogisticFit) -> Self {
        let n = x.rows;
        let size = units.len() + 1;
        let mut scaled = vec![0f64; n * size];
        scaled[..n].copy_from_slice(root_w);
        scaled[n..]
            .par_chunks_mut(n)
            .zip(units)
            .for_each(|(column, &j)| {
                x.axpy(j, 1.0, column);
                column.iter_mut().zip(root_w).for_each(|(c, s)| *c *= s);
            });
        let gram = gram_of(&scaled, n, size);
        let root_w_r: Vec<f64> = root_w.iter().zip(r).map(|(s, r)| s * r).collect();
        let c = scaled
            .par_chunks(n)
            .map(|column| {
                column
                    .iter()
                    .zip(&root_w_r)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    / n as f64
            })
            .collect();
        let start = std::iter::once(0.0)
            .chain(units.iter().map(|&j| fit.coef[j]))
            .collect();
        GramProblem {
            size,
            gram,
            c,
            start,
            step: vec![0.0; size],
            g_step: vec![0.0; size],
        }
    }

    fn value(&self, p: usize) -> f64 {
        self.start[p] + self.step[p]
    }

    /// `−∂/∂Δ_p` of the weighted least-squares loss at the current step.
    fn gradient(&self, p: usize) -> f64 {
        self.c[p] - self.g_step[p]
    }

    /// Cyclic coordinate descent over `working` until no coordinate moves by `tol / 10`.
    fn sweep(&mut self, working: &[usize], lambda: f64, options: SolverOptions) {
        let size = self.size;
        for _ in 0..options.max_sweeps {
            let mut max_change = 0f64;
            for &p in working {
                let diagonal = self.gram[p * size + p];
                if diagonal <= 0.0 {
                    continue;
                }
                let delta = if p == 0 {
                    self.gradient(0) / diagonal
                } else {
                    let old = self.value(p);
                    soft(self.gradient(p) + diagonal * old, lambda) / diagonal - old
                };
                if delta != 0.0 {
                    self.step[p] += delta;
                    let row = &self.gram[p * size..(p + 1) * size];
                    self.g_step
                        .iter_mut()
                        .zip(row)
                        .for_each(|(g, v)| *g += delta * v);
                    max_change = max_change.max(delta.abs());
                }
            }
            if max_change < options.tol * 0.1 {
                break;
            }
        }
    }
}

/// `(1/n) AᵀA` of the column-major `n × a` matrix `a_cols`, row-major `a × a`.
fn gram_of(a_cols: &[f64], n: usize, a: usize) -> Vec<f64> {
    let mut gram = vec![0f64; a * a];
    // SAFETY: lhs = Aᵀ (a × n: element (p, i) at p·n + i), rhs = A (n × a: element (i, q) at
    // q·n + i), dst a × a row-major; every index is inside its buffer.
    unsafe {
        gemm::gemm(
            a,
            a,
            n,
            gram.as_mut_ptr(),
            1,
            a as isize,
            false,
            a_cols.as_ptr(),
            1,
            n as isize,
            a_cols.as_ptr(),
            n as isize,
            1,
            0.0,
            1.0 / n as f64,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
    gram
}

fn update_intercept(fit: &mut LogisticFit, r: &mut [f64], w: &[f64], w_sum: f64) -> f64 {
    let delta = r.iter().zip(w).map(|(r, w)| r * w).sum::<f64>() / w_sum;
    fit.intercept += delta;
    r.iter_mut().for_each(|r| *r -= delta);
    delta.abs()
}

fn update_coordinate(
    x: &Columns,
    w: &[f64],
    r: &mut [f64],
    fit: &mut LogisticFit,
    j: usize,
    curvature: f64,
    lambda: f64,
) -> f64 {
    if curvature <= 0.0 {
        return 0.0;
    }
    let n = x.rows as f64;
    let old = fit.coef[j];
    let g = x.dot2(j, w, r) / n + curvature * old;
    let new = soft(g, lambda) / curvature;
    let delta = new - old;
    if delta != 0.0 {
        x.axpy(j, -delta, r);
        fit.coef[j] = new;
    }
    delta.abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The three inner solvers reach the same weighted-lasso minimiser: on the residual, on
    /// the Gram matrix of every unit, and on the Gram matrix of the active set.
    #[test]
    fn inner_solvers_agree() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (rows, cols) = (300, 12);
        let mut data = vec![0f32; rows * cols];
        for i in 0..rows {
            let shared: f32 = rng.random_range(-1.0..1.0);
            for j in 0..cols {
                // Correlated columns: a shared part plus noise.
                data[j * rows + i] = shared * (j % 3) as f32 + rng.random_range(-1.0..1.0);
            }
        }
        let x = Columns::dense(rows, cols, data);
        let w: Vec<f64> = (0..rows).map(|_| rng.random_range(0.05..0.25)).collect();
        // The residual at the start: two units carry signal, the rest noise.
        let mut r: Vec<f64> = (0..rows).map(|_| rng.random_range(-0.5..0.5)).collect();
        x.axpy(1, 0.8, &mut r);
        x.axpy(7, -0.6, &mut r);
        let mut start = LogisticFit::zeros(cols);
        start.coef[4] = 0.3;
        let options = SolverOptions {
            tol: 1e-10,
            ..SolverOptions::default()
        };
        let lambda = 0.004;
        let on_residual = weighted_lasso(&x, &w, r.clone(), lambda, &start, options);
        let every = weighted_lasso_gram(&x, &w, r.clone(), lambda, &start, options, true);
        let active = weighted_lasso_gram(&x, &w, r, lambda, &start, options, false);
        assert!(
            on_residual.nonzero() > 2 && on_residual.nonzero() < cols,
            "{:?}",
            on_residual.coef
        );
        for other in [&every, &active] {
            assert!((other.intercept - on_residual.intercept).abs() < 1e-8);
            for (a, b) in other.coef.iter().zip(&on_residual.coef) {
                assert!(
                    (a - b).abs() < 1e-8,
                    "{:?} vs {:?}",
                    other.coef,
                    on_residual.coef
                );
                assert_eq!(*a == 0.0, *b == 0.0);
            }
        }
    }
}

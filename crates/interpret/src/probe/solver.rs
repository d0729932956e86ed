//! L1-penalised logistic regression by proximal Newton steps with coordinate descent (the
//! glmnet scheme: Friedman, Hastie & Tibshirani, J. Stat. Softw. 2010): each outer step
//! approximates the log-loss by a weighted least-squares problem at the current fit, solves it
//! with cyclic soft-thresholded coordinate descent over the active set, checks the optimality
//! conditions of every zero coefficient in parallel, and backtracks if the objective rose.
//!
//! Objective (scikit-learn's, divided by `C·n`): `(1/n) Σ log(1 + e^η) − yη + λ‖β‖₁` with
//! `η = β₀ + xβ`, intercept unpenalised (as `solver='saga'`), `λ = 1 / (C·n)`.

use rayon::prelude::*;

/// A column-major matrix of standardised values: column `j` is `data[j*rows .. (j+1)*rows]`.
#[derive(Clone, Debug)]
pub struct Columns {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Columns {
    pub fn col(&self, j: usize) -> &[f32] {
        &self.data[j * self.rows..(j + 1) * self.rows]
    }
}

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
                for (e, &v) in eta.iter_mut().zip(x.col(j)) {
                    *e += b * v as f64;
                }
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
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions {
            tol: 1e-7,
            max_outer: 100,
            max_sweeps: 1000,
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

fn sigmoid(x: f64) -> f64 {
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
            let g: f64 = x
                .col(j)
                .iter()
                .zip(y)
                .map(|(&v, &t)| v as f64 * (t - mean))
                .sum();
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
        let proposal = weighted_lasso(x, &w, r, lambda, &current, options);
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
        .map(|j| {
            x.col(j)
                .iter()
                .zip(w)
                .map(|(&v, &w)| w * (v as f64) * (v as f64))
                .sum::<f64>()
                / n
        })
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
        let violators: Vec<usize> = (0..x.cols)
            .into_par_iter()
            .filter(|&j| fit.coef[j] == 0.0 && curvature[j] > 0.0)
            .filter(|&j| {
                let g: f64 = x
                    .col(j)
                    .iter()
                    .zip(w)
                    .zip(&r)
                    .map(|((&v, &w), &r)| w * v as f64 * r)
                    .sum::<f64>()
                    / n;
                g.abs() > lambda * (1.0 + 1e-9)
            })
            .collect();
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
    let column = x.col(j);
    let n = x.rows as f64;
    let old = fit.coef[j];
    let g = column
        .iter()
        .zip(w)
        .zip(r.iter())
        .map(|((&v, &w), &r)| w * v as f64 * r)
        .sum::<f64>()
        / n
        + curvature * old;
    let new = soft(g, lambda) / curvature;
    let delta = new - old;
    if delta != 0.0 {
        for (r, &v) in r.iter_mut().zip(column) {
            *r -= delta * v as f64;
        }
        fit.coef[j] = new;
    }
    delta.abs()
}

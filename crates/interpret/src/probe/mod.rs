//! Sparse linear probes: which units (SAE features or model neurons) predict a label, on
//! proteins held out from the fit.
//!
//! For one set of units ([`ProbeData`]) [`run_probe`]
//! - splits the rows by protein (a seeded shuffle of the distinct protein ids; every row of a
//!   protein lands on the same side, so residues of one protein never leak across the split),
//! - standardises each unit on the training rows (mean 0, variance 1, as scikit-learn's
//!   `StandardScaler`; a unit constant on the training rows is left out),
//! - walks an L1 path of L1-penalised logistic regressions ([`solver`]; the objective of
//!   scikit-learn's `LogisticRegression(penalty='l1', C=C, solver='saga')`), warm-started from
//!   the empty model down to the `C` asked for, and reports how few units reach 95% of the best
//!   held-out AUROC on it (so among models no denser than the fit at `C`),
//! - scores the fit at `C` (the path's last point) on the held-out rows (AUROC; F1 of
//!   probability > 0.5),
//! - and ranks single units (InterProt-style one-unit probes): each unit's direction is chosen
//!   by its training AUROC, units are ranked by training AUROC, and the held-out AUROC of the
//!   top ones is reported.
//!
//! ```
//! use plmscope_interpret::probe::{run_probe, ProbeData, ProbeOptions, UnitKind, UnitValues};
//! // 200 proteins, 10 units, unit 7 carries the label.
//! let (rows, units) = (200, 10);
//! let mut values = vec![0f32; rows * units]; // unit-major: unit j's column is values[j*rows..]
//! let labels: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
//! for i in 0..rows {
//!     for j in 0..units {
//!         values[j * rows + i] = ((i * 31 + j * 17) % 13) as f32 / 13.0;
//!     }
//!     values[7 * rows + i] += if labels[i] { 2.0 } else { 0.0 };
//! }
//! let data = ProbeData {
//!     name: "toy".into(), kind: UnitKind::Feature, units, values: UnitValues::Dense(values), labels,
//!     groups: (0..rows as u32).collect(),
//! };
//! let report = run_probe(&data, &ProbeOptions::default()).unwrap();
//! assert_eq!(report.single_units[0].unit, 7);
//! assert!(report.auroc > 0.99);
//! ```

pub mod atlas;
pub mod columns;
pub mod metrics;
pub mod solver;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{AnalysisError, AnalysisResult};
use solver::{sigmoid, Columns, LogisticFit, SolverOptions};

/// What the units of a set are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Dictionary latents (a code set).
    Feature,
    /// Model dimensions (an activation set).
    Neuron,
}

impl UnitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Feature => "feature",
            UnitKind::Neuron => "neuron",
        }
    }
}

/// One set of units with a binary label per row.
#[derive(Clone, Debug)]
pub struct ProbeData {
    /// Shown in reports and stored in the atlas (e.g. the set's directory).
    pub name: String,
    pub kind: UnitKind,
    pub units: usize,
    pub values: UnitValues,
    pub labels: Vec<bool>,
    /// The protein of each row (the split unit).
    pub groups: Vec<u32>,
}

/// The units' values on the rows of a [`ProbeData`].
#[derive(Clone, Debug)]
pub enum UnitValues {
    /// Unit-major: unit `j`'s value on row `i` is `values[j * rows + i]` (activation sets).
    Dense(Vec<f32>),
    /// Row-major sparse (a code set's CSR layout): row `i` holds the units
    /// `unit[row_ptr[i]..row_ptr[i + 1]]` with `value`s; every other unit is zero.
    Sparse {
        row_ptr: Vec<u64>,
        unit: Vec<u32>,
        value: Vec<f32>,
    },
}

impl ProbeData {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Whether the values are `rows × units`, with units in range.
    fn shape_error(&self) -> Option<String> {
        let rows = self.rows();
        match &self.values {
            UnitValues::Dense(v) if v.len() != rows * self.units => Some(format!(
                "{} values for {rows} rows x {} units",
                v.len(),
                self.units
            )),
            UnitValues::Sparse {
                row_ptr,
                unit,
                value,
            } => {
                let bounded = row_ptr.len() == rows + 1
                    && row_ptr.first() == Some(&0)
                    && row_ptr.windows(2).all(|w| w[0] <= w[1])
                    && row_ptr.last() == Some(&(unit.len() as u64))
                    && unit.len() == value.len();
                if !bounded {
                    Some(format!(
                        "sparse rows: {} row pointers, {} units, {} values for {rows} rows",
                        row_ptr.len(),
                        unit.len(),
                        value.len()
                    ))
                } else {
                    unit.iter()
                        .find(|&&u| u as usize >= self.units)
                        .map(|u| format!("unit {u} of {}", self.units))
                }
            }
            UnitValues::Dense(_) => None,
        }
    }
}

/// Choices of one probe run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProbeOptions {
    /// Inverse penalty strength, scikit-learn's `C`.
    pub c: f64,
    /// Share of proteins held out.
    pub test_fraction: f64,
    pub seed: u64,
    /// Points on the L1 path, λ log-spaced from λ_max (the empty model) down to the λ of `c`
    /// (the last point is the fit at `c`).
    pub path_points: usize,
    /// Single-unit probes listed.
    pub single_units: usize,
    /// Coefficients listed (largest magnitude first).
    pub top_coefficients: usize,
    #[serde(skip)]
    pub solver: SolverOptions,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            c: 1.0,
            test_fraction: 0.3,
            seed: 0,
            path_points: 16,
            single_units: 10,
            top_coefficients: 20,
            solver: SolverOptions::default(),
        }
    }
}

/// One point of the L1 path.
#[derive(Clone, Debug, Serialize)]
pub struct PathPoint {
    pub lambda: f64,
    /// scikit-learn's `C` for this λ: `1 / (λ · n_train)`.
    pub c: f64,
    pub nonzero: usize,
    pub auroc: f64,
}

/// A unit alone as a classifier.
#[derive(Clone, Debug, Serialize)]
pub struct SingleUnit {
    pub unit: u32,
    /// +1 when higher values mean the positive class (chosen on the training rows).
    pub sign: f64,
    pub train_auroc: f64,
    pub test_auroc: f64,
}

/// Everything one probe found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub name: String,
    pub kind: UnitKind,
    pub units: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub train_proteins: usize,
    pub test_proteins: usize,
    pub test_positives: usize,
    pub c: f64,
    /// Held-out AUROC and F1 (probability > 0.5) of the fit at `c`.
    pub auroc: f64,
    pub f1: f64,
    pub nonzero: usize,
    pub intercept: f64,
    /// Largest-magnitude coefficients on the standardised scale: (unit, coefficient).
    pub coefficients: Vec<(u32, f64)>,
    pub path: Vec<PathPoint>,
    /// Best held-out AUROC over the path and the fit at `c`.
    pub best_auroc: f64,
    /// Fewest nonzero units at which the path reaches 95% of `best_auroc`.
    pub units_for_95: usize,
    pub single_units: Vec<SingleUnit>,
}

/// Which rows are held out: the proteins of `groups` shuffled with `seed`, the first
/// `ceil(test_fraction · proteins)` held out.
pub fn split_by_group(groups: &[u32], test_fraction: f64, seed: u64) -> Vec<bool> {
    let mut distinct: Vec<u32> = groups.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let held = ((test_fraction * distinct.len() as f64).ceil() as usize).min(distinct.len());
    let mut test: Vec<u32> = distinct[..held].to_vec();
    test.sort_unstable();
    groups
        .iter()
        .map(|g| test.binary_search(g).is_ok())
        .collect()
}

/// Standardised training and held-out columns (statistics from the training rows; see
/// [`Columns`] for which are centred). Sparse values stay sparse unless more than
/// `sparse_below` of the training entries are nonzero.
fn standardise(data: &ProbeData, is_test: &[bool], sparse_below: f64) -> (Columns, Columns) {
    let (rows, units) = (data.rows(), data.units);
    let train_rows = is_test.iter().filter(|t| !**t).count();
    let (row_ptr, unit, value) = match &data.values {
        UnitValues::Dense(values) => return standardise_dense(values, rows, units, is_test),
        UnitValues::Sparse {
            row_ptr,
            unit,
            value,
        } => (row_ptr, unit, value),
    };
    let entries = |i: usize| row_ptr[i] as usize..row_ptr[i + 1] as usize;
    let (mut sum, mut sq) = (vec![0f64; units], vec![0f64; units]);
    let (mut on_train, mut on_test) = (vec![0usize; units], vec![0usize; units]);
    for (i, &test) in is_test.iter().enumerate() {
        for k in entries(i) {
            let (u, v) = (unit[k] as usize, value[k] as f64);
            if test {
                on_test[u] += 1;
            } else {
                on_train[u] += 1;
                sum[u] += v;
                sq[u] += v * v;
            }
        }
    }
    let stored: usize = on_train.iter().sum();
    if stored as f64 > sparse_below * (train_rows * units).max(1) as f64 {
        let mut dense = vec![0f32; rows * units];
        for i in 0..rows {
            for k in entries(i) {
                dense[unit[k] as usize * rows + i] = value[k];
            }
        }
        return standardise_dense(&dense, rows, units, is_test);
    }
    let n = train_rows.max(1) as f64;
    let (scale, shift): (Vec<f64>, Vec<f64>) = (0..units)
        .map(|u| {
            let (mean, std) = mean_std(sum[u], sq[u], n);
            let scale = scale_of(mean, std);
            (scale, mean * scale)
        })
        .unzip();
    // CSC of each side; rows are visited in order, so each column's rows come out sorted.
    let build = |side: bool, counts: &[usize]| -> (Vec<usize>, Vec<u32>, Vec<f32>) {
        let mut col_ptr = vec![0usize; units + 1];
        for u in 0..units {
            col_ptr[u + 1] = col_ptr[u] + if scale[u] > 0.0 { counts[u] } else { 0 };
        }
        let mut next = col_ptr.clone();
        let mut row = vec![0u32; col_ptr[units]];
        let mut val = vec![0f32; col_ptr[units]];
        let mut position = 0u32;
        for (i, &test) in is_test.iter().enumerate() {
            if test != side {
                continue;
            }
            for k in entries(i) {
                let u = unit[k] as usize;
                if scale[u] > 0.0 {
                    row[next[u]] = position;
                    val[next[u]] = (value[k] as f64 * scale[u]) as f32;
                    next[u] += 1;
                }
            }
            position += 1;
        }
        (col_ptr, row, val)
    };
    let (p, r, v) = build(false, &on_train);
    let train = Columns::sparse(train_rows, p, r, v, shift.clone());
    let (p, r, v) = build(true, &on_test);
    let test = Columns::sparse(rows - train_rows, p, r, v, shift);
    (train, test)
}

fn mean_std(sum: f64, sq: f64, n: f64) -> (f64, f64) {
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0).sqrt())
}

/// `1/σ`, or 0 for a unit constant on the training rows (left out of the fit).
fn scale_of(mean: f64, std: f64) -> f64 {
    if std > 1e-12 * mean.abs().max(1.0) {
        1.0 / std
    } else {
        0.0
    }
}

fn standardise_dense(
    values: &[f32],
    rows: usize,
    units: usize,
    is_test: &[bool],
) -> (Columns, Columns) {
    let train_rows = is_test.iter().filter(|t| !**t).count();
    let test_rows = rows - train_rows;
    let columns: Vec<(Vec<f32>, Vec<f32>)> = (0..units)
        .into_par_iter()
        .map(|j| {
            let column = &values[j * rows..(j + 1) * rows];
            let (mut sum, mut sq) = (0.0f64, 0.0f64);
            for (v, _) in column.iter().zip(is_test).filter(|(_, t)| !**t) {
                sum += *v as f64;
                sq += (*v as f64) * (*v as f64);
            }
            let (mean, std) = mean_std(sum, sq, train_rows.max(1) as f64);
            let scale = scale_of(mean, std);
            let (mut train, mut test) = (
                Vec::with_capacity(train_rows),
                Vec::with_capacity(test_rows),
            );
            for (&v, &t) in column.iter().zip(is_test) {
                let z = ((v as f64 - mean) * scale) as f32;
                if t {
                    test.push(z);
                } else {
                    train.push(z);
                }
            }
            (train, test)
        })
        .collect();
    let mut train = Vec::with_capacity(train_rows * units);
    let mut test = Vec::with_capacity(test_rows * units);
    for (a, b) in columns {
        train.extend_from_slice(&a);
        test.extend_from_slice(&b);
    }
    (
        Columns::dense(train_rows, units, train),
        Columns::dense(test_rows, units, test),
    )
}

/// Fits and scores one probe (see the module doc).
pub fn run_probe(data: &ProbeData, options: &ProbeOptions) -> AnalysisResult<ProbeReport> {
    if options.c.is_nan() || options.c <= 0.0 || !(0.0..1.0).contains(&options.test_fraction) {
        return Err(AnalysisError::input(
            format!(
                "C = {}, test fraction = {}",
                options.c, options.test_fraction
            ),
            "C must be positive and the test fraction in (0, 1)",
        ));
    }
    let is_test = split_by_group(&data.groups, options.test_fraction, options.seed);
    run_probe_split(data, &is_test, options)
}

/// [`run_probe`] on a given split (`is_test[i]`: row `i` is held out), e.g. one shared with
/// another tool.
pub fn run_probe_split(
    data: &ProbeData,
    is_test: &[bool],
    options: &ProbeOptions,
) -> AnalysisResult<ProbeReport> {
    let rows = data.rows();
    let shape = data.shape_error().or_else(|| {
        (data.groups.len() != rows)
            .then(|| format!("{} groups for {rows} labelled rows", data.groups.len()))
    });
    if let Some(problem) = shape {
        return Err(AnalysisError::input(
            format!("probe {}: {problem}", data.name),
            "give rows x units values (dense unit-major, or sparse rows) with one label and \
             group per row",
        ));
    }
    if is_test.len() != data.rows() {
        return Err(AnalysisError::input(
            format!(
                "probe {}: split of {} rows for {}",
                data.name,
                is_test.len(),
                data.rows()
            ),
            "give one held-out flag per row",
        ));
    }
    let side = |test: bool| -> Vec<bool> {
        data.labels
            .iter()
            .zip(is_test)
            .filter(|(_, t)| **t == test)
            .map(|(l, _)| *l)
            .collect()
    };
    let (train_labels, test_labels) = (side(false), side(true));
    for (labels, which) in [(&train_labels, "training"), (&test_labels, "held-out")] {
        let positives = labels.iter().filter(|l| **l).count();
        if positives == 0 || positives == labels.len() {
            return Err(AnalysisError::input(
                format!(
                    "probe {}: the {which} rows hold {positives} positives of {}",
                    data.name,
                    labels.len()
                ),
                "both classes must occur on both sides of the split; label more proteins or \
                 change --test-fraction / --seed",
            ));
        }
    }
    let (train, test) = standardise(data, is_test, options.solver.sparse_below);
    let y: Vec<f64> = train_labels
        .iter()
        .map(|&l| f64::from(u8::from(l)))
        .collect();

    let (path, main) = l1_path(&train, &y, &test, &test_labels, options);
    // The fit at C is the path's last point, already scored there.
    let auroc = path.last().map_or(0.5, |p| p.auroc);
    let probability: Vec<f64> = main.linear(&test).iter().map(|&e| sigmoid(e)).collect();
    let f1 = metrics::f1(&probability, &test_labels, 0.5);
    let best_auroc = path.iter().map(|p| p.auroc).fold(auroc, f64::max);
    let units_for_95 = path
        .iter()
        .map(|p| (p.nonzero, p.auroc))
        .filter(|(_, a)| *a >= 0.95 * best_auroc)
        .map(|(k, _)| k)
        .min()
        .unwrap_or(main.nonzero());

    let mut coefficients: Vec<(u32, f64)> = (0u32..)
        .zip(&main.coef)
        .filter(|(_, c)| **c != 0.0)
        .map(|(j, c)| (j, *c))
        .collect();
    coefficients.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    coefficients.truncate(options.top_coefficients);

    Ok(ProbeReport {
        name: data.name.clone(),
        kind: data.kind,
        units: data.units,
        train_rows: train.rows,
        test_rows: test.rows,
        train_proteins: count_groups(&data.groups, is_test, false),
        test_proteins: count_groups(&data.groups, is_test, true),
        test_positives: test_labels.iter().filter(|l| **l).count(),
        c: options.c,
        auroc,
        f1,
        nonzero: main.nonzero(),
        intercept: train.centred_intercept(&main),
        coefficients,
        path,
        best_auroc,
        units_for_95,
        single_units: single_units(&train, &train_labels, &test, &test_labels, options),
    })
}

fn count_groups(groups: &[u32], is_test: &[bool], test: bool) -> usize {
    let mut g: Vec<u32> = groups
        .iter()
        .zip(is_test)
        .filter(|(_, t)| **t == test)
        .map(|(g, _)| *g)
        .collect();
    g.sort_unstable();
    g.dedup();
    g.len()
}

/// The L1 path from λ_max (the empty model) down to the λ of `options.c`, warm-started; the
/// points before the last are solved to a looser tolerance (only their support and AUROC are
/// reported). Returns the path and the fit at `c` (its last point).
fn l1_path(
    train: &Columns,
    y: &[f64],
    test: &Columns,
    test_labels: &[bool],
    options: &ProbeOptions,
) -> (Vec<PathPoint>, LogisticFit) {
    let n = train.rows as f64;
    let target = 1.0 / (options.c * n);
    let top = solver::lambda_max(train, y);
    let lambdas: Vec<f64> = if target >= top {
        vec![target]
    } else {
        let points = options.path_points.max(2);
        (0..points)
            .map(|k| {
                if k + 1 == points {
                    target
                } else {
                    top * (target / top).powf(k as f64 / (points - 1) as f64)
                }
            })
            .collect()
    };
    let mut fit = LogisticFit::zeros(train.cols);
    let mut path = Vec::with_capacity(lambdas.len());
    for (k, &lambda) in lambdas.iter().enumerate() {
        let solver_options = if k + 1 == lambdas.len() {
            options.solver
        } else {
            options.solver.loosened()
        };
        fit = solver::fit(train, y, lambda, fit, solver_options);
        let auroc = metrics::auroc(&fit.linear(test), test_labels).unwrap_or(0.5);
        path.push(PathPoint {
            lambda,
            c: 1.0 / (lambda * n),
            nonzero: fit.nonzero(),
            auroc,
        });
    }
    (path, fit)
}

fn single_units(
    train: &Columns,
    train_labels: &[bool],
    test: &Columns,
    test_labels: &[bool],
    options: &ProbeOptions,
) -> Vec<SingleUnit> {
    let mut all: Vec<SingleUnit> = (0..train.cols)
        .into_par_iter()
        .filter_map(|j| {
            let a = metrics::auroc_of_column(train, j, train_labels)?;
            let sign = if a >= 0.5 { 1.0 } else { -1.0 };
            let held = metrics::auroc_of_column(test, j, test_labels)?;
            Some(SingleUnit {
                unit: j as u32,
                sign,
                train_auroc: if sign > 0.0 { a } else { 1.0 - a },
                test_auroc: if sign > 0.0 { held } else { 1.0 - held },
            })
        })
        .collect();
    all.sort_by(|a, b| {
        b.train_auroc
            .total_cmp(&a.train_auroc)
            .then(a.unit.cmp(&b.unit))
    });
    all.truncate(options.single_units);
    all
}

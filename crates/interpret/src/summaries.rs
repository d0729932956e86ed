//! Per-unit activation summaries: density, max, mean, the top proteins, proteins sampled across
//! the activation range (quantile bins) and random proteins on which the unit is silent.
//!
//! Definitions (the atlas stores them as computed here):
//! - **density**: fraction of rows (proteins at protein level, residues at residue level) on
//!   which the unit is active: a nonzero code for SAE features, a positive value for neurons;
//! - **max**: largest value over all rows; **mean**: mean over all rows, zeros included;
//! - **top**: the `top_n` proteins with the largest protein-level value (at residue level the
//!   maximum over the protein's residues, with the residue position of that maximum), ties broken
//!   by protein index; rank 0 is the highest;
//! - **quantile**: `(0, max]` cut into `quantile_bins` equal bins, `per_quantile_bin` active
//!   proteins drawn at random from each (rank = bin, 0 the lowest), so descriptions see weak as well
//!   as strong activations;
//! - **random**: `random_inactive` distinct proteins on which the unit is not active, drawn
//!   uniformly (rank = draw order).
//!
//! Sampling is seeded per unit from `seed`, so results do not depend on thread scheduling.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::activations::{dense_block, Activations, Column, ProteinColumns, RowTotals};
use crate::error::AnalysisResult;

/// How many examples of each kind to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SummaryOptions {
    pub top_n: usize,
    pub quantile_bins: usize,
    pub per_quantile_bin: usize,
    pub random_inactive: usize,
    pub seed: u64,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            top_n: 20,
            quantile_bins: 10,
            per_quantile_bin: 3,
            random_inactive: 10,
            seed: 0,
        }
    }
}

/// Which list an example belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExampleKind {
    Top,
    Quantile,
    Random,
}

impl ExampleKind {
    /// The atlas spelling: `top`, `quantile`, `random`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExampleKind::Top => "top",
            ExampleKind::Quantile => "quantile",
            ExampleKind::Random => "random",
        }
    }
}

/// One example protein of a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Example {
    pub protein: u32,
    /// Protein-level value (0 for a random example of a sparse unit).
    pub activation: f32,
    /// Residue position of the protein-level maximum, at residue level.
    pub position: Option<u32>,
    pub rank: u32,
    pub kind: ExampleKind,
}

/// Summary of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary {
    pub unit: u32,
    pub density: f64,
    pub max: f32,
    pub mean: f64,
    /// Proteins with an active row.
    pub active_proteins: u32,
    pub examples: Vec<Example>,
}

impl UnitSummary {
    /// Never active on any row.
    pub fn is_dead(&self) -> bool {
        self.active_proteins == 0
    }
}

/// Summaries of every unit, in unit order, parallel over units.
pub fn summarize(
    activations: &Activations,
    n_proteins: u32,
    options: &SummaryOptions,
) -> AnalysisResult<Vec<UnitSummary>> {
    activations.validate(n_proteins as usize, "activations")?;
    match *activations {
        Activations::SparseProteins(codes) => {
            let columns = ProteinColumns::from_sparse(&codes, None, n_proteins)?;
            Ok(summarize_columns(&columns, options))
        }
        Activations::SparseResidues { codes, rows } => {
            let columns = ProteinColumns::from_sparse(&codes, Some(rows), n_proteins)?;
            Ok(summarize_columns(&columns, options))
        }
        Activations::DenseProteins { values, n_units } => {
            Ok(summarize_dense(values, n_units, None, n_proteins, options))
        }
        Activations::DenseResidues {
            values,
            n_units,
            rows,
        } => Ok(summarize_dense(
            values,
            n_units,
            Some(rows),
            n_proteins,
            options,
        )),
    }
}

/// Summaries from already transposed sparse codes.
pub fn summarize_columns(columns: &ProteinColumns, options: &SummaryOptions) -> Vec<UnitSummary> {
    (0..columns.n_units())
        .into_par_iter()
        .map(|unit| {
            summarize_column(
                unit,
                &columns.column(unit),
                &columns.totals[unit as usize],
                columns.n_rows,
                columns.n_proteins,
                None,
                options,
            )
        })
        .collect()
}

/// Units per dense block: one 64-byte cache line of a row serves 16 units.
pub(crate) const DENSE_BLOCK: u32 = 16;

fn summarize_dense(
    values: &[f32],
    n_units: u32,
    rows: Option<crate::activations::ResidueRows>,
    n_proteins: u32,
    options: &SummaryOptions,
) -> Vec<UnitSummary> {
    let n_rows = (values.len() / n_units as usize) as u64;
    let blocks: Vec<u32> = (0..n_units).step_by(DENSE_BLOCK as usize).collect();
    blocks
        .into_par_iter()
        .flat_map_iter(|start| {
            let units = start..(start + DENSE_BLOCK).min(n_units);
            let block = dense_block(values, n_units, rows, n_proteins, units.clone());
            units
                .enumerate()
                .map(|(j, unit)| {
                    let column = &block.values[j];
                    let positions = block.positions.as_ref().map(|p| &p[j]);
                    let sparse = SparseFromDense::new(column, positions.map(|p| p.as_slice()));
                    summarize_column(
                        unit,
                        &sparse.view(),
                        &block.totals[j],
                        n_rows,
                        n_proteins,
                        Some(column),
                        options,
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The active (positive) proteins of a dense protein-level column.
pub(crate) struct SparseFromDense {
    proteins: Vec<u32>,
    values: Vec<f32>,
    positions: Option<Vec<u32>>,
}

impl SparseFromDense {
    pub(crate) fn new(column: &[f32], positions: Option<&[u32]>) -> Self {
        let proteins: Vec<u32> = (0..column.len() as u32)
            .filter(|&p| column[p as usize] > 0.0)
            .collect();
        SparseFromDense {
            values: proteins.iter().map(|&p| column[p as usize]).collect(),
            positions: positions.map(|pos| proteins.iter().map(|&p| pos[p as usize]).collect()),
            proteins,
        }
    }

    pub(crate) fn view(&self) -> Column<'_> {
        Column {
            proteins: &self.proteins,
            values: &self.values,
            positions: self.positions.as_deref(),
        }
    }
}

/// A per-unit seed: splitmix-style mixing so neighbouring units get unrelated streams.
fn unit_seed(seed: u64, unit: u32) -> u64 {
    let mut z = seed ^ (u64::from(unit).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The summary of one unit from its active proteins (ascending) and row totals. `dense` gives the
/// value of inactive proteins for random examples (0 when absent, as for sparse codes).
pub(crate) fn summarize_column(
    unit: u32,
    column: &Column,
    totals: &RowTotals,
    n_rows: u64,
    n_proteins: u32,
    dense: Option<&[f32]>,
    options: &SummaryOptions,
) -> UnitSummary {
    let mut rng = ChaCha8Rng::seed_from_u64(unit_seed(options.seed, unit));
    let n_active = column.proteins.len();
    let example = |i: usize, rank: usize, kind: ExampleKind| Example {
        protein: column.proteins[i],
        activation: column.values[i],
        position: column.positions.map(|p| p[i]),
        rank: rank as u32,
        kind,
    };
    let mut examples = Vec::new();
    // Top: partial selection, then sort of the selected few.
    let mut order: Vec<usize> = (0..n_active).collect();
    let by_value_desc = |&a: &usize, &b: &usize| {
        column.values[b]
            .total_cmp(&column.values[a])
            .then(column.proteins[a].cmp(&column.proteins[b]))
    };
    let top = options.top_n.min(n_active);
    if top > 0 && top < n_active {
        order.select_nth_unstable_by(top - 1, by_value_desc);
    }
    order.truncate(top);
    order.sort_unstable_by(by_value_desc);
    examples.extend(
        order
            .iter()
            .enumerate()
            .map(|(rank, &i)| example(i, rank, ExampleKind::Top)),
    );
    // Quantile bins over (0, max]; reservoir sampling keeps one pass.
    let max_active = column.values.iter().copied().fold(0.0f32, f32::max);
    if options.quantile_bins > 0 && options.per_quantile_bin > 0 && max_active > 0.0 {
        let bins = options.quantile_bins;
        let mut reservoirs: Vec<Vec<usize>> = vec![Vec::new(); bins];
        let mut seen = vec![0usize; bins];
        for (i, &v) in column.values.iter().enumerate() {
            if v <= 0.0 {
                continue;
            }
            let bin = ((f64::from(v) / f64::from(max_active) * bins as f64).ceil() as usize)
                .clamp(1, bins)
                - 1;
            seen[bin] += 1;
            if reservoirs[bin].len() < options.per_quantile_bin {
                reservoirs[bin].push(i);
            } else {
                let slot = rng.random_range(0..seen[bin]);
                if slot < options.per_quantile_bin {
                    reservoirs[bin][slot] = i;
                }
            }
        }
        for (bin, mut chosen) in reservoirs.into_iter().enumerate() {
            chosen.sort_unstable();
            examples.extend(
                chosen
                    .iter()
                    .map(|&i| example(i, bin, ExampleKind::Quantile)),
            );
        }
    }
    // Random inactive proteins: rejection sampling when most proteins are inactive (the usual
    // case), enumeration otherwise.
    let n_inactive = n_proteins as usize - n_active;
    let wanted = options.random_inactive.min(n_inactive);
    let is_active = |p: u32| column.proteins.binary_search(&p).is_ok();
    let mut random = Vec::with_capacity(wanted);
    if wanted > 0 {
        if n_inactive >= 2 * n_active {
            let mut chosen = std::collections::HashSet::new();
            while random.len() < wanted {
                let p = rng.random_range(0..n_proteins);
                if !is_active(p) && chosen.insert(p) {
                    random.push(p);
                }
            }
        } else {
            let inactive: Vec<u32> = (0..n_proteins).filter(|&p| !is_active(p)).collect();
            random.extend(
                sample(&mut rng, inactive.len(), wanted)
                    .iter()
                    .map(|i| inactive[i]),
            );
        }
    }
    examples.extend(random.iter().enumerate().map(|(rank, &p)| Example {
        protein: p,
        // A protein without residue rows has no value: report 0 as for sparse codes.
        activation: dense.map_or(0.0, |d| {
            Some(d[p as usize]).filter(|v| v.is_finite()).unwrap_or(0.0)
        }),
        position: None,
        rank: rank as u32,
        kind: ExampleKind::Random,
    }));
    let n_rows_f = n_rows.max(1) as f64;
    UnitSummary {
        unit,
        density: totals.active_rows as f64 / n_rows_f,
        max: if n_rows == 0 { 0.0 } else { totals.max },
        mean: totals.sum / n_rows_f,
        active_proteins: n_active as u32,
        examples,
    }
}

//! Unit activations as the analysis takes them, in memory and borrowed (no storage crate needed):
//! sparse codes of SAE features (CSR, see [`SparseCodes`]) or dense row-major matrices of model
//! neurons, each at protein level (row `r` = protein `r`) or residue level (each row names its
//! protein and residue position).
//!
//! [`ProteinColumns`] turns sparse codes into what every per-unit computation needs: for each unit,
//! the proteins on which it is active, with the protein-level value (at residue level the maximum
//! over the protein's residues, with the position of that maximum), plus row-level totals for
//! density and mean. Building it reads every stored value once; the per-unit work afterwards is
//! parallel over units and touches only that unit's proteins.

use rayon::prelude::*;

use crate::error::{AnalysisError, AnalysisResult};
use crate::foreground::SparseCodes;

/// Residue rows: row `r` is residue `position[r]` (0-based) of protein `protein[r]`.
#[derive(Debug, Clone, Copy)]
pub struct ResidueRows<'a> {
    pub protein: &'a [u32],
    pub position: &'a [u32],
}

/// Activations of one kind of unit.
#[derive(Debug, Clone, Copy)]
pub enum Activations<'a> {
    /// Protein-level sparse codes; row `r` is protein `r`.
    SparseProteins(SparseCodes<'a>),
    /// Residue-level sparse codes.
    SparseResidues {
        codes: SparseCodes<'a>,
        rows: ResidueRows<'a>,
    },
    /// Protein-level dense `[proteins, n_units]`, row-major.
    DenseProteins { values: &'a [f32], n_units: u32 },
    /// Residue-level dense `[rows, n_units]`, row-major.
    DenseResidues {
        values: &'a [f32],
        n_units: u32,
        rows: ResidueRows<'a>,
    },
}

impl Activations<'_> {
    /// Number of units (features or neurons).
    pub fn n_units(&self) -> u32 {
        match self {
            Activations::SparseProteins(codes) | Activations::SparseResidues { codes, .. } => {
                codes.n_units
            }
            Activations::DenseProteins { n_units, .. }
            | Activations::DenseResidues { n_units, .. } => *n_units,
        }
    }

    /// Number of rows (proteins at protein level, residues at residue level).
    pub fn n_rows(&self) -> usize {
        match self {
            Activations::SparseProteins(codes) | Activations::SparseResidues { codes, .. } => {
                codes.n_rows()
            }
            Activations::DenseProteins { values, n_units }
            | Activations::DenseResidues {
                values, n_units, ..
            } => values.len() / (*n_units).max(1) as usize,
        }
    }

    /// Residue rows, at residue level.
    pub fn residue_rows(&self) -> Option<ResidueRows<'_>> {
        match self {
            Activations::SparseResidues { rows, .. } | Activations::DenseResidues { rows, .. } => {
                Some(*rows)
            }
            _ => None,
        }
    }

    /// `"protein"` or `"residue"`.
    pub fn level(&self) -> &'static str {
        if self.residue_rows().is_some() {
            "residue"
        } else {
            "protein"
        }
    }

    /// Checks shapes against the number of proteins; `what` names the input in errors.
    pub fn validate(&self, n_proteins: usize, what: &str) -> AnalysisResult<()> {
        if self.n_units() == 0 {
            return Err(AnalysisError::input(
                format!("{what}: zero units"),
                "give at least one unit",
            ));
        }
        if let Activations::DenseProteins { values, n_units }
        | Activations::DenseResidues {
            values, n_units, ..
        } = self
        {
            if values.len() % *n_units as usize != 0 {
                return Err(AnalysisError::input(
                    format!(
                        "{what}: {} values is not a multiple of {n_units} units",
                        values.len()
                    ),
                    "pass a row-major [rows, units] matrix",
                ));
            }
        }
        match self.residue_rows() {
            None if self.n_rows() != n_proteins => Err(AnalysisError::input(
                format!(
                    "{what}: {} protein rows but {n_proteins} protein accessions",
                    self.n_rows()
                ),
                "give one accession per activation row, in row order",
            )),
            None => Ok(()),
            Some(rows) => {
                let n_rows = self.n_rows();
                if rows.protein.len() != n_rows || rows.position.len() != n_rows {
                    return Err(AnalysisError::input(
                        format!(
                            "{what}: {n_rows} residue rows but {} protein and {} position entries",
                            rows.protein.len(),
                            rows.position.len()
                        ),
                        "give the protein and position of every residue row",
                    ));
                }
                if let Some(r) = rows.protein.iter().position(|&p| p as usize >= n_proteins) {
                    return Err(AnalysisError::input(
                        format!(
                            "{what}: residue row {r} names protein {} but there are {n_proteins} accessions",
                            rows.protein[r]
                        ),
                        "protein indices must index the accession list",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Row-level totals of one unit: what density and mean are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowTotals {
    /// Rows where the unit is active (nonzero code; positive neuron).
    pub active_rows: u64,
    pub sum: f64,
    pub max: f32,
}

/// Per-unit protein-level active entries (unit-major, proteins ascending) plus row totals.
#[derive(Debug, Clone)]
pub struct ProteinColumns {
    pub n_proteins: u32,
    pub n_rows: u64,
    offsets: Vec<usize>,
    proteins: Vec<u32>,
    values: Vec<f32>,
    /// Residue position of each protein-level maximum, at residue level.
    positions: Option<Vec<u32>>,
    pub totals: Vec<RowTotals>,
}

/// One unit's view of [`ProteinColumns`] (or of a dense column turned sparse).
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub proteins: &'a [u32],
    pub values: &'a [f32],
    pub positions: Option<&'a [u32]>,
}

impl ProteinColumns {
    /// Transposes sparse codes (protein or residue level; rows in any order) into unit columns.
    pub fn from_sparse(
        codes: &SparseCodes,
        rows: Option<ResidueRows>,
        n_proteins: u32,
    ) -> AnalysisResult<Self> {
        check_csr(codes)?;
        let n_units = codes.n_units as usize;
        let row_range = |r: usize| codes.row_ptr[r] as usize..codes.row_ptr[r + 1] as usize;
        // Protein-level entries (unit, value, position), grouped by protein.
        let per_protein: Vec<Vec<(u32, f32, u32)>> = match rows {
            None => (0..codes.n_rows())
                .into_par_iter()
                .map(|r| {
                    let range = row_range(r);
                    codes.feature[range.clone()]
                        .iter()
                        .zip(&codes.value[range])
                        .filter(|(_, &v)| v != 0.0)
                        .map(|(&u, &v)| (u, v, 0))
                        .collect()
                })
                .collect(),
            Some(rows) => {
                let rows_of = rows_by_protein(rows.protein, n_proteins);
                rows_of
                    .par_iter()
                    .map_init(
                        || (vec![(f32::NEG_INFINITY, 0u32); n_units], Vec::new()),
                        |(best, touched), protein_rows| {
                            for &r in protein_rows {
                                let range = row_range(r as usize);
                                for (&u, &v) in
                                    codes.feature[range.clone()].iter().zip(&codes.value[range])
                                {
                                    if v == 0.0 {
                                        continue;
                                    }
                                    let slot = &mut best[u as usize];
                                    if slot.0 == f32::NEG_INFINITY {
                                        touched.push(u);
                                    }
                                    if v > slot.0 {
                                        *slot = (v, rows.position[r as usize]);
                                    }
                                }
                            }
                            touched.sort_unstable();
                            let out = touched
                                .iter()
                                .map(|&u| {
                                    let (v, p) = std::mem::replace(
                                        &mut best[u as usize],
                                        (f32::NEG_INFINITY, 0),
                                    );
                                    (u, v, p)
                                })
                                .collect();
                            touched.clear();
                            out
                        },
                    )
                    .collect()
            }
        };
        let totals = (0..codes.n_rows())
            .into_par_iter()
            .fold(
                || vec![RowTotals::default(); n_units],
                |mut acc, r| {
                    let range = row_range(r);
                    for (&u, &v) in codes.feature[range.clone()].iter().zip(&codes.value[range]) {
                        if v != 0.0 {
                            let t = &mut acc[u as usize];
                            t.active_rows += 1;
                            t.sum += f64::from(v);
                            t.max = t.max.max(v);
                        }
                    }
                    acc
                },
            )
            .reduce(
                || vec![RowTotals::default(); n_units],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.active_rows += y.active_rows;
                        x.sum += y.sum;
                        x.max = x.max.max(y.max);
                    }
                    a
                },
            );
        // Counting-sort transpose: proteins come out ascending within each unit.
        let mut offsets = vec![0usize; n_units + 1];
        for entries in &per_protein {
            for &(u, _, _) in entries {
                offsets[u as usize + 1] += 1;
            }
        }
        for u in 0..n_units {
            offsets[u + 1] += offsets[u];
        }
        let nnz = offsets[n_units];
        let mut next = offsets[..n_units].to_vec();
        let mut proteins = vec![0u32; nnz];
        let mut values = vec![0f32; nnz];
        let mut positions = rows.map(|_| vec![0u32; nnz]);
        for (protein, entries) in per_protein.iter().enumerate() {
            for &(u, v, p) in entries {
                let at = next[u as usize];
                next[u as usize] += 1;
                proteins[at] = protein as u32;
                values[at] = v;
                if let Some(positions) = positions.as_mut() {
                    positions[at] = p;
                }
            }
        }
        Ok(ProteinColumns {
            n_proteins,
            n_rows: codes.n_rows() as u64,
            offsets,
            proteins,
            values,
            positions,
            totals,
        })
    }

    /// Number of units.
    pub fn n_units(&self) -> u32 {
        (self.offsets.len() - 1) as u32
    }

    /// The active proteins of `unit`, ascending.
    pub fn column(&self, unit: u32) -> Column<'_> {
        let range = self.offsets[unit as usize]..self.offsets[unit as usize + 1];
        Column {
            proteins: &self.proteins[range.clone()],
            values: &self.values[range.clone()],
            positions: self.positions.as_ref().map(|p| &p[range]),
        }
    }
}

/// Checks the CSR arrays (the rules of the foreground module, as analysis errors).
fn check_csr(codes: &SparseCodes) -> AnalysisResult<()> {
    let bad = |what: String| Err(AnalysisError::input(what, "pass a valid CSR code set"));
    if codes.row_ptr.is_empty() {
        return bad("row_ptr is empty (it needs rows + 1 entries)".into());
    }
    if codes.feature.len() != codes.value.len() {
        return bad(format!(
            "{} feature ids but {} values",
            codes.feature.len(),
            codes.value.len()
        ));
    }
    if codes.row_ptr[0] != 0 || codes.row_ptr[codes.row_ptr.len() - 1] != codes.feature.len() as u64
    {
        return bad(format!(
            "row_ptr must run from 0 to the number of stored values ({})",
            codes.feature.len()
        ));
    }
    if let Some(r) = codes.row_ptr.windows(2).position(|w| w[1] < w[0]) {
        return bad(format!("row_ptr decreases at row {r}"));
    }
    if let Some(i) = codes.feature.iter().position(|&f| f >= codes.n_units) {
        return bad(format!(
            "stored value {i} has feature {} but there are {} features",
            codes.feature[i], codes.n_units
        ));
    }
    Ok(())
}

/// Row indices of each protein, rows in their original order.
pub(crate) fn rows_by_protein(protein_of_row: &[u32], n_proteins: u32) -> Vec<Vec<u32>> {
    let mut rows_of = vec![Vec::new(); n_proteins as usize];
    for (r, &p) in protein_of_row.iter().enumerate() {
        rows_of[p as usize].push(r as u32);
    }
    rows_of
}

/// Protein-level values of a block of dense units: for each unit of `units`, one value per
/// protein (the row at protein level, the maximum over the protein's rows at residue level, with
/// its position; `NEG_INFINITY` for a protein without rows) and the unit's row totals.
pub(crate) struct DenseBlock {
    pub values: Vec<Vec<f32>>,
    pub positions: Option<Vec<Vec<u32>>>,
    pub totals: Vec<RowTotals>,
}

pub(crate) fn dense_block(
    values: &[f32],
    n_units: u32,
    rows: Option<ResidueRows>,
    n_proteins: u32,
    units: std::ops::Range<u32>,
) -> DenseBlock {
    let width = (units.end - units.start) as usize;
    let stride = n_units as usize;
    let mut out = vec![vec![f32::NEG_INFINITY; n_proteins as usize]; width];
    let mut positions = rows.map(|_| vec![vec![0u32; n_proteins as usize]; width]);
    let mut totals = vec![
        RowTotals {
            max: f32::NEG_INFINITY,
            ..RowTotals::default()
        };
        width
    ];
    // Rows are read in order and only the block's contiguous slice of each: one cache line per
    // row serves several units.
    for (r, row) in values.chunks_exact(stride).enumerate() {
        let slice = &row[units.start as usize..units.end as usize];
        let protein = rows.map_or(r, |rows| rows.protein[r] as usize);
        for (j, &v) in slice.iter().enumerate() {
            let t = &mut totals[j];
            t.sum += f64::from(v);
            t.max = t.max.max(v);
            if v > 0.0 {
                t.active_rows += 1;
            }
            let slot = &mut out[j][protein];
            if v > *slot {
                *slot = v;
                if let (Some(positions), Some(rows)) = (positions.as_mut(), rows) {
                    positions[j][protein] = rows.position[r];
                }
            }
        }
    }
    DenseBlock {
        values: out,
        positions,
        totals,
    }
}

//! Per-protein activations of every unit, stored in the atlas for `describe`: the seed protocol
//! scales and samples each unit over all proteins, which the atlas's `examples` (top, quantile
//! and random proteins only) cannot give. Residue-level units are pooled by the mean over the
//! protein's residues, as the seed does (`FINAL_AA_Results_Storing_Scripts/numpy_store_results.py`
//! pools residue codes per protein before its autointerp). Only nonzero values are stored, one
//! row of two blobs per unit, so a sparse dictionary costs what its active proteins cost.

use std::path::Path;

use crate::activations::Activations;
use crate::atlas::UnitKind;

use super::error::{DescribeError, DescribeResult};
use super::store::{insert_unit_activations, open_atlas};

/// Pooled `(protein, value)` lists per unit, proteins ascending, zeros left out.
pub fn pool_per_protein(activations: &Activations, n_proteins: u32) -> Vec<Vec<(u32, f32)>> {
    let n_units = activations.n_units() as usize;
    let n = n_proteins as usize;
    let mut columns: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_units];
    match activations {
        Activations::SparseProteins(codes) => {
            for r in 0..codes.n_rows().min(n) {
                let range = codes.row_ptr[r] as usize..codes.row_ptr[r + 1] as usize;
                for (&u, &v) in codes.feature[range.clone()].iter().zip(&codes.value[range]) {
                    if v != 0.0 && (u as usize) < n_units {
                        columns[u as usize].push((r as u32, v));
                    }
                }
            }
        }
        Activations::DenseProteins { values, .. } => {
            for (r, row) in values.chunks_exact(n_units).enumerate().take(n) {
                for (u, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        columns[u].push((r as u32, v));
                    }
                }
            }
        }
        Activations::SparseResidues { codes, rows } => {
            let residues = residue_counts(rows.protein, n);
            // Sums per (unit, protein) through one protein's rows at a time would need sorted
            // rows; a per-unit list of (protein, value) sorted afterwards needs no such order.
            for r in 0..codes.n_rows() {
                let protein = rows.protein[r];
                let range = codes.row_ptr[r] as usize..codes.row_ptr[r + 1] as usize;
                for (&u, &v) in codes.feature[range.clone()].iter().zip(&codes.value[range]) {
                    if v != 0.0 && (u as usize) < n_units {
                        columns[u as usize].push((protein, v));
                    }
                }
            }
            for column in &mut columns {
                *column = mean_by_protein(std::mem::take(column), &residues);
            }
        }
        Activations::DenseResidues { values, rows, .. } => {
            let residues = residue_counts(rows.protein, n);
            let mut sums = vec![0.0f64; n * n_units];
            for (row, &protein) in values.chunks_exact(n_units).zip(rows.protein) {
                let base = protein as usize * n_units;
                for (u, &v) in row.iter().enumerate() {
                    sums[base + u] += v as f64;
                }
            }
            for (p, &count) in residues.iter().enumerate() {
                for (u, column) in columns.iter_mut().enumerate() {
                    let mean = sums[p * n_units + u] / count.max(1) as f64;
                    if mean != 0.0 {
                        column.push((p as u32, mean as f32));
                    }
                }
            }
        }
    }
    columns
}

fn residue_counts(protein_of_row: &[u32], n_proteins: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n_proteins];
    for &p in protein_of_row {
        if let Some(c) = counts.get_mut(p as usize) {
            *c += 1;
        }
    }
    counts
}

/// Sums entries per protein and divides by the protein's residue count (inactive residues count
/// as zeros in the mean).
fn mean_by_protein(mut entries: Vec<(u32, f32)>, residues: &[u32]) -> Vec<(u32, f32)> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut pooled: Vec<(u32, f32)> = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let protein = entries[i].0;
        let mut sum = 0.0f64;
        while i < entries.len() && entries[i].0 == protein {
            sum += entries[i].1 as f64;
            i += 1;
        }
        let count = residues.get(protein as usize).copied().unwrap_or(1).max(1);
        pooled.push((protein, (sum / count as f64) as f32));
    }
    pooled
}

/// Writes the pooled per-protein activations of one kind of unit into an existing atlas (units
/// `unit_offset + index`, as `analyze` numbers them), replacing earlier rows for those units, in
/// one transaction. Call it at analyze time with the activations `analyze` read. Returns the
/// number of units written.
pub fn write_protein_activations(
    atlas: &Path,
    kind: UnitKind,
    unit_offset: u32,
    activations: &Activations,
    n_proteins: u32,
) -> DescribeResult<usize> {
    activations
        .validate(n_proteins as usize, kind.as_str())
        .map_err(|e| DescribeError::input(e.to_string(), "pass the activations analyze read"))?;
    let pooling = match activations.level() {
        "residue" => "mean over residues",
        _ => "protein level",
    };
    let columns = pool_per_protein(activations, n_proteins);
    let mut connection = open_atlas(atlas)?;
    let action = "writing protein_activations";
    let transaction = connection
        .transaction()
        .map_err(DescribeError::sqlite(atlas, action))?;
    {
        let mut statement = transaction
            .prepare(
                "INSERT OR REPLACE INTO protein_activations (unit, pooling, proteins, activations) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(DescribeError::sqlite(atlas, action))?;
        for (u, column) in columns.iter().enumerate() {
            insert_unit_activations(&mut statement, unit_offset + u as u32, pooling, column)
                .map_err(DescribeError::sqlite(atlas, action))?;
        }
    }
    transaction
        .commit()
        .map_err(DescribeError::sqlite(atlas, action))?;
    Ok(columns.len())
}

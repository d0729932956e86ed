//! Rules that turn activations into per-unit foreground (study) protein sets for
//! [`crate::enrichment`]. The rule and its threshold belong in the atlas next to the results.
//!
//! Inputs are the code-set layout of ARCHITECTURE.md (CSR: `row_ptr`, `feature`, `value`) or a
//! dense row-major matrix (neurons), borrowed as slices so that no storage crate is needed here.

use crate::enrichment::Foreground;
use crate::stats_error::{StatsError, StatsResult};

/// Sparse codes in CSR form, borrowed: row `r` holds `feature[row_ptr[r]..row_ptr[r+1]]` with
/// `value`s. This is a view of the layout of `plmscope_store::CsrRows`, the one owned CSR type
/// (a code shard's, an encoder's output): pass `&csr.row_ptr`, `&csr.feature`, `&csr.value`.
/// This crate does not depend on the store, so it reads the three slices, not the type.
#[derive(Debug, Clone, Copy)]
pub struct SparseCodes<'a> {
    pub row_ptr: &'a [u64],
    pub feature: &'a [u32],
    pub value: &'a [f32],
    /// Units are `0..n_units` (the dictionary size).
    pub n_units: u32,
}

impl SparseCodes<'_> {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    fn validate(&self) -> StatsResult<()> {
        if self.row_ptr.is_empty() {
            return Err(length_error("row_ptr (rows + 1 entries)", 1, 0));
        }
        if self.feature.len() != self.value.len() {
            return Err(length_error(
                "value (one per stored feature)",
                self.feature.len(),
                self.value.len(),
            ));
        }
        let last = self.row_ptr[self.row_ptr.len() - 1];
        if self.row_ptr[0] != 0 || last != self.feature.len() as u64 {
            return Err(length_error(
                "feature (row_ptr's last entry)",
                last as usize,
                self.feature.len(),
            ));
        }
        for (position, pair) in self.row_ptr.windows(2).enumerate() {
            if pair[1] < pair[0] {
                return Err(StatsError::NotStrictlySorted {
                    what: "row_ptr (must not decrease)".into(),
                    position: position + 1,
                    value: pair[1],
                });
            }
        }
        if let Some(position) = self.feature.iter().position(|&f| f >= self.n_units) {
            return Err(StatsError::IdOutOfRange {
                what: "feature".into(),
                position,
                id: self.feature[position].into(),
                limit: self.n_units.into(),
            });
        }
        Ok(())
    }

    fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (start, end) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
        self.feature[start..end]
            .iter()
            .copied()
            .zip(self.value[start..end].iter().copied())
    }
}

fn length_error(what: &str, expected: usize, actual: usize) -> StatsError {
    StatsError::LengthMismatch {
        what: what.into(),
        expected,
        actual,
    }
}

/// When a protein-level code counts as "active".
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ProteinRule {
    /// The unit is among the row's active (nonzero) latents: for a TopK SAE, among the row's k.
    /// The seed paper's study set.
    TopKMember,
    /// `activation > threshold` (absolute units).
    Above(f32),
}

/// Foregrounds from protein-level codes, where row `r` is protein `r`; one per unit, in unit
/// order, each sorted.
pub fn protein_foregrounds(codes: &SparseCodes, rule: ProteinRule) -> StatsResult<Vec<Foreground>> {
    codes.validate()?;
    let mut sets = empty_sets(codes.n_units);
    for r in 0..codes.n_rows() {
        for (unit, value) in codes.row(r) {
            let active = match rule {
                ProteinRule::TopKMember => value != 0.0,
                ProteinRule::Above(threshold) => value > threshold,
            };
            if active {
                sets[unit as usize].proteins.push(r as u32);
            }
        }
    }
    Ok(sets)
}

/// Foregrounds from residue-level codes: protein `protein_of_row[r]` is in a unit's foreground if
/// the unit's maximum over that protein's residues exceeds `threshold`.
pub fn residue_max_foregrounds(
    codes: &SparseCodes,
    protein_of_row: &[u32],
    threshold: f32,
) -> StatsResult<Vec<Foreground>> {
    codes.validate()?;
    if protein_of_row.len() != codes.n_rows() {
        return Err(length_error(
            "protein_of_row (one per code row)",
            codes.n_rows(),
            protein_of_row.len(),
        ));
    }
    let mut sets = empty_sets(codes.n_units);
    for (r, &protein) in protein_of_row.iter().enumerate() {
        for (unit, value) in codes.row(r) {
            // max over residues > t  ⇔  some residue > t
            if value > threshold {
                let proteins = &mut sets[unit as usize].proteins;
                if proteins.last() != Some(&protein) {
                    proteins.push(protein);
                }
            }
        }
    }
    // Rows are normally grouped by protein in order; sort anyway so other layouts work too.
    for set in &mut sets {
        set.proteins.sort_unstable();
        set.proteins.dedup();
    }
    Ok(sets)
}

/// Foregrounds from a dense row-major `[n_proteins, n_units]` matrix (e.g. model neurons):
/// `activation > threshold`.
pub fn dense_foregrounds(
    values: &[f32],
    n_units: u32,
    threshold: f32,
) -> StatsResult<Vec<Foreground>> {
    if n_units == 0 || !values.len().is_multiple_of(n_units as usize) {
        return Err(StatsError::InvalidParameter {
            name: "n_units".into(),
            value: n_units.to_string(),
            requirement: format!(
                "must be positive and divide the matrix length {}",
                values.len()
            ),
        });
    }
    let mut sets = empty_sets(n_units);
    for (protein, row) in values.chunks_exact(n_units as usize).enumerate() {
        for (unit, &value) in row.iter().enumerate() {
            if value > threshold {
                sets[unit].proteins.push(protein as u32);
            }
        }
    }
    Ok(sets)
}

fn empty_sets(n_units: u32) -> Vec<Foreground> {
    (0..n_units)
        .map(|unit| Foreground {
            unit,
            proteins: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Three proteins, four units. Row 1 stores an explicit zero for unit 2.
    const ROW_PTR: [u64; 4] = [0, 2, 4, 5];
    const FEATURE: [u32; 5] = [0, 3, 0, 2, 3];
    const VALUE: [f32; 5] = [0.5, 2.0, 1.5, 0.0, 0.1];

    fn codes() -> SparseCodes<'static> {
        SparseCodes {
            row_ptr: &ROW_PTR,
            feature: &FEATURE,
            value: &VALUE,
            n_units: 4,
        }
    }

    fn proteins(sets: &[Foreground]) -> Vec<Vec<u32>> {
        sets.iter().map(|s| s.proteins.clone()).collect()
    }

    #[test]
    fn protein_rules() {
        let top_k = protein_foregrounds(&codes(), ProteinRule::TopKMember).unwrap();
        assert_eq!(
            proteins(&top_k),
            vec![vec![0, 1], vec![], vec![], vec![0, 2]]
        );
        let above = protein_foregrounds(&codes(), ProteinRule::Above(1.0)).unwrap();
        assert_eq!(proteins(&above), vec![vec![1], vec![], vec![], vec![0]]);
    }

    #[test]
    fn residue_max_rule_groups_rows_by_protein() {
        // Rows 0 and 2 belong to protein 5, row 1 to protein 1.
        let sets = residue_max_foregrounds(&codes(), &[5, 1, 5], 0.05).unwrap();
        assert_eq!(proteins(&sets), vec![vec![1, 5], vec![], vec![], vec![5]]);
        assert!(residue_max_foregrounds(&codes(), &[5, 1], 0.05).is_err());
    }

    #[test]
    fn dense_rule_and_validation() {
        let sets = dense_foregrounds(&[0.0, 3.0, 2.0, 1.0], 2, 1.5).unwrap();
        assert_eq!(proteins(&sets), vec![vec![1], vec![0]]);
        assert!(dense_foregrounds(&[0.0, 3.0, 2.0], 2, 1.5).is_err());
        let bad = SparseCodes {
            n_units: 3,
            ..codes()
        };
        assert!(protein_foregrounds(&bad, ProteinRule::TopKMember).is_err());
    }
}

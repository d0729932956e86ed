//! The analysed proteins and the units' activations, read from activation and code sets and
//! checked to line up.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use plmscope_bio::uniprot_accession;
use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::foreground::SparseCodes;
use plmscope_store::{ActivationSet, CodeSet, Level, ProteinRecord};

pub(crate) fn open_set(dir: &Path) -> Result<ActivationSet> {
    ActivationSet::open(dir).with_context(|| format!("opening activation set {}", dir.display()))
}

/// The analysed proteins in activation-row order; accessions come from the set's ids
/// (`sp|P12345|NAME` → `P12345`; an id without an accession is used as it is).
pub(crate) struct Proteins {
    pub ids: Vec<String>,
    pub accessions: Vec<String>,
    pub lengths: Vec<u32>,
}

impl Proteins {
    pub fn of(set: &ActivationSet) -> Result<Self> {
        let records = set.proteins();
        let lengths = records
            .iter()
            .map(|p| u32::try_from(p.length))
            .collect::<Result<Vec<u32>, _>>()
            .with_context(|| format!("{}: protein length over 2^32", set.dir().display()))?;
        Ok(Proteins {
            ids: records.iter().map(|p| p.id.clone()).collect(),
            accessions: records
                .iter()
                .map(|p| uniprot_accession(&p.id).unwrap_or(&p.id).to_string())
                .collect(),
            lengths,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Features and neurons must describe the same proteins in the same order.
    pub fn check_same(&self, set: &ActivationSet, reference: &ActivationSet) -> Result<()> {
        let records = set.proteins();
        let differ = |what: String| {
            anyhow!(
                "{} and {} do not hold the same proteins: {what}; analyse sets embedded from \
                 the same FASTA",
                set.dir().display(),
                reference.dir().display()
            )
        };
        if records.len() != self.len() {
            return Err(differ(format!(
                "{} vs {} proteins",
                records.len(),
                self.len()
            )));
        }
        for (i, p) in records.iter().enumerate() {
            if p.id != self.ids[i] || p.length as u64 != u64::from(self.lengths[i]) {
                return Err(differ(format!(
                    "protein {i} is {} ({} residues) vs {} ({} residues)",
                    p.id, p.length, self.ids[i], self.lengths[i]
                )));
            }
        }
        Ok(())
    }
}

/// One kind of unit, held in memory for the analysis.
pub(crate) struct Units {
    /// Where the units come from, for the summary.
    pub source: String,
    data: UnitData,
    /// Residue level: the protein and 0-based position of every row.
    pub residue_rows: Option<(Vec<u32>, Vec<u32>)>,
}

enum UnitData {
    Dense {
        values: Vec<f32>,
        n_units: u32,
    },
    Sparse {
        row_ptr: Vec<u64>,
        feature: Vec<u32>,
        value: Vec<f32>,
        n_units: u32,
    },
}

impl Units {
    pub fn activations(&self) -> Activations<'_> {
        let rows = self
            .residue_rows
            .as_ref()
            .map(|(protein, position)| ResidueRows { protein, position });
        match (&self.data, rows) {
            (UnitData::Dense { values, n_units }, None) => Activations::DenseProteins {
                values,
                n_units: *n_units,
            },
            (UnitData::Dense { values, n_units }, Some(rows)) => Activations::DenseResidues {
                values,
                n_units: *n_units,
                rows,
            },
            (
                UnitData::Sparse {
                    row_ptr,
                    feature,
                    value,
                    n_units,
                },
                rows,
            ) => {
                let codes = SparseCodes {
                    row_ptr,
                    feature,
                    value,
                    n_units: *n_units,
                };
                match rows {
                    None => Activations::SparseProteins(codes),
                    Some(rows) => Activations::SparseResidues { codes, rows },
                }
            }
        }
    }
}

/// Residue rows of proteins stored one after another, `rows[p]` rows each.
fn residue_rows(rows: impl Iterator<Item = usize>) -> (Vec<u32>, Vec<u32>) {
    let (mut protein, mut position) = (Vec::new(), Vec::new());
    for (p, n) in rows.enumerate() {
        protein.resize(protein.len() + n, p as u32);
        position.extend(0..n as u32);
    }
    (protein, position)
}

/// Every dimension of an activation set as a unit; a non-finite value is refused.
pub(crate) fn load_dense(set: &ActivationSet) -> Result<Units> {
    let dir = set.dir().display();
    let mut values = Vec::new();
    set.read_rows(0, set.rows(), &mut values)
        .with_context(|| format!("reading {dir}"))?;
    let d = set.d_model().max(1);
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{dir}: row {} holds a non-finite value ({}); re-embed the proteins",
            i / d,
            values[i]
        );
    }
    let residue_rows = match set.level() {
        Level::Residue => Some(residue_rows(
            set.proteins().iter().map(|p: &ProteinRecord| p.rows),
        )),
        Level::Protein => None,
    };
    let h = set.header();
    Ok(Units {
        source: format!(
            "{} ({} dimensions of {} layer {} {}, {} level)",
            set.dir().display(),
            set.d_model(),
            h.model.id,
            h.layer,
            h.site,
            h.level
        ),
        data: UnitData::Dense {
            values,
            n_units: u32::try_from(set.d_model())?,
        },
        residue_rows,
    })
}

/// Codes in CSR form; their rows are the proteins of `reference` (one row each at protein
/// level, one per residue at residue level).
pub(crate) fn load_codes(
    dir: &Path,
    proteins: &Proteins,
    reference: &ActivationSet,
) -> Result<Units> {
    let codes =
        CodeSet::open(dir).with_context(|| format!("opening code set {}", dir.display()))?;
    let source = &codes.manifest().source;
    let residues: usize = proteins.lengths.iter().map(|&l| l as usize).sum();
    let expected_rows = match source.level {
        Level::Residue => residues,
        Level::Protein => proteins.len(),
    };
    if source.total_proteins != proteins.len() || codes.rows() != expected_rows {
        bail!(
            "{} encodes {} proteins in {} {}-level rows, but {} lists {} proteins ({} rows \
             expected); pass --proteins-from with the activation set the codes came from",
            dir.display(),
            source.total_proteins,
            codes.rows(),
            source.level,
            reference.dir().display(),
            proteins.len(),
            expected_rows
        );
    }
    let mut row_ptr = Vec::with_capacity(codes.rows() + 1);
    let mut feature = Vec::with_capacity(codes.nnz());
    let mut value = Vec::with_capacity(codes.nnz());
    row_ptr.push(0u64);
    for (f, v) in codes.iter_rows() {
        feature.extend_from_slice(f);
        value.extend_from_slice(v);
        row_ptr.push(feature.len() as u64);
    }
    let dictionary = &codes.manifest().dictionary;
    let description = format!(
        "{} ({} latents of {} {}, layer {} {}, {} level, {:.1} codes per row)",
        dir.display(),
        dictionary.d_sae,
        dictionary.architecture,
        dictionary.id,
        source.layer,
        source.site,
        source.level,
        codes.nnz() as f64 / codes.rows().max(1) as f64
    );
    let residue_rows = (source.level == Level::Residue)
        .then(|| residue_rows(proteins.lengths.iter().map(|&l| l as usize)));
    Ok(Units {
        source: description,
        data: UnitData::Sparse {
            row_ptr,
            feature,
            value,
            n_units: u32::try_from(codes.d_sae())?,
        },
        residue_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residue_rows_number_proteins_and_positions_in_order() {
        let (protein, position) = residue_rows([2, 0, 3].into_iter());
        assert_eq!(protein, [0, 0, 2, 2, 2]);
        assert_eq!(position, [0, 1, 0, 1, 2]);
    }
}

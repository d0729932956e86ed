//! Residue concept scores (InterPLM style, [`crate::concepts`]) of residue-level units.

use rayon::prelude::*;

use super::ConceptInput;
use crate::activations::{Activations, ResidueRows};
use crate::concepts::{
    evaluate_concepts, ConceptLabels, ConceptOptions, ConceptScore, UnitActivations,
};
use crate::error::{AnalysisError, AnalysisResult};

/// Units per dense block when building residue activations (bounds the memory of dense units).
const CONCEPT_BLOCK: u32 = 64;

/// Scores of every (unit, concept) pair of the units `range` (indices in the kind); `None` for
/// protein-level activations (no residues).
pub(crate) fn concept_scores(
    activations: &Activations,
    input: &ConceptInput,
    n_proteins: usize,
    options: &ConceptOptions,
    range: std::ops::Range<u32>,
) -> AnalysisResult<Option<Vec<ConceptScore>>> {
    let Some(rows) = activations.residue_rows() else {
        return Ok(None);
    };
    if input.protein_lengths.len() != n_proteins || input.is_training.len() != n_proteins {
        return Err(AnalysisError::input(
            format!(
                "concept input has {} protein lengths and {} split flags for {n_proteins} proteins",
                input.protein_lengths.len(),
                input.is_training.len()
            ),
            "give one length and one training flag per protein accession",
        ));
    }
    let labels = ConceptLabels::new(
        &input.protein_lengths,
        input.names.len() as u32,
        input.segments.clone(),
    )
    .map_err(AnalysisError::stats("concept labels"))?;
    let label_rows = label_rows(rows, &input.protein_lengths)?;
    let evaluate = |units: &[UnitActivations]| {
        evaluate_concepts(&labels, &input.is_training, units, options)
            .map_err(AnalysisError::stats("concept evaluation"))
    };
    let scores = match *activations {
        Activations::SparseResidues { codes, .. } => {
            let wanted = range.start..range.end.min(codes.n_units);
            let mut units: Vec<UnitActivations> = wanted
                .clone()
                .map(|unit| UnitActivations {
                    unit,
                    rows: Vec::new(),
                    values: Vec::new(),
                })
                .collect();
            for (r, &label_row) in label_rows.iter().enumerate() {
                let range = codes.row_ptr[r] as usize..codes.row_ptr[r + 1] as usize;
                for (&f, &v) in codes.feature[range.clone()].iter().zip(&codes.value[range]) {
                    if v > 0.0 && wanted.contains(&f) {
                        let u = (f - wanted.start) as usize;
                        units[u].rows.push(label_row);
                        units[u].values.push(v);
                    }
                }
            }
            evaluate(&units)?
        }
        Activations::DenseResidues {
            values, n_units, ..
        } => {
            let last = range.end.min(n_units);
            let starts: Vec<u32> = (range.start..last)
                .step_by(CONCEPT_BLOCK as usize)
                .collect();
            let blocks = starts
                .into_par_iter()
                .map(|start| {
                    let end = (start + CONCEPT_BLOCK).min(last);
                    let mut units: Vec<UnitActivations> = (start..end)
                        .map(|unit| UnitActivations {
                            unit,
                            rows: Vec::new(),
                            values: Vec::new(),
                        })
                        .collect();
                    for (row, &label_row) in values.chunks_exact(n_units as usize).zip(&label_rows)
                    {
                        for (j, &v) in row[start as usize..end as usize].iter().enumerate() {
                            if v > 0.0 {
                                units[j].rows.push(label_row);
                                units[j].values.push(v);
                            }
                        }
                    }
                    evaluate(&units)
                })
                .collect::<AnalysisResult<Vec<_>>>()?;
            blocks.into_iter().flatten().collect()
        }
        _ => return Ok(None),
    };
    Ok(Some(scores))
}

/// The concept-label row of every activation row: residue `position` of `protein`.
fn label_rows(rows: ResidueRows, lengths: &[u32]) -> AnalysisResult<Vec<u32>> {
    let mut start = Vec::with_capacity(lengths.len());
    let mut total = 0u64;
    for &length in lengths {
        start.push(total);
        total += u64::from(length);
    }
    rows.protein
        .iter()
        .zip(rows.position)
        .enumerate()
        .map(|(r, (&p, &position))| {
            let length = lengths[p as usize];
            if position >= length {
                return Err(AnalysisError::input(
                    format!("residue row {r}: position {position} of protein {p}, which has {length} residues"),
                    "positions are 0-based and must be below the protein length of the concept input",
                ));
            }
            Ok((start[p as usize] + u64::from(position)) as u32)
        })
        .collect()
}

//! InterProt's per-unit measures ([`crate::family_f1`], [`crate::patterns`]) in one parallel
//! pass: each unit's protein-level profile (its value on every protein) is built once and
//! serves both.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::FamilySpecificitySummary;
use crate::activations::{dense_block, rows_by_protein, Activations, ProteinColumns};
use crate::atlas::{AtlasWriter, FamilySpecificityRow, PatternRow};
use crate::error::AnalysisResult;
use crate::family_f1::{unit_family_f1, FamilyF1};
use crate::patterns::{classify, top_examples, PatternOptions, PatternStats};
use crate::summaries::DENSE_BLOCK;

/// What the family part needs: each protein's family indices and its half of the split.
pub(crate) struct FamilyTask<'a> {
    pub families_of: &'a [Vec<u32>],
    pub is_training: &'a [bool],
}

/// Per unit (index within the kind): family scores (empty without a family task) and the
/// pattern class (`None` at protein level or without pattern options).
pub(crate) struct UnitMeasures {
    pub families: Vec<FamilyF1>,
    pub pattern: Option<PatternStats>,
}

/// Residue rows of each protein in position order, and each protein's track length.
struct Tracks {
    rows_of: Vec<Vec<u32>>,
    lengths: Vec<usize>,
}

impl Tracks {
    fn new(activations: &Activations, n_proteins: u32, lengths: Option<&[u32]>) -> Option<Self> {
        let rows = activations.residue_rows()?;
        let mut rows_of = rows_by_protein(rows.protein, n_proteins);
        let lengths = rows_of
            .iter_mut()
            .enumerate()
            .map(|(p, r)| {
                r.sort_by_key(|&row| rows.position[row as usize]);
                let covered = r
                    .last()
                    .map_or(0, |&row| rows.position[row as usize] as usize + 1);
                // A track spans the whole protein when its length is known: residues without a
                // row count as inactive, as they do in InterProt's per-sequence arrays.
                lengths.map_or(covered, |l| covered.max(l[p] as usize))
            })
            .collect();
        Some(Tracks { rows_of, lengths })
    }

    /// Residue activations of `unit` on protein `p`, in position order (0 where no row).
    fn track(&self, activations: &Activations, unit: u32, p: u32) -> Vec<f32> {
        let mut track = vec![0f32; self.lengths[p as usize]];
        let Some(rows) = activations.residue_rows() else {
            return track;
        };
        for &r in &self.rows_of[p as usize] {
            let position = rows.position[r as usize] as usize;
            track[position] = match *activations {
                Activations::SparseResidues { codes, .. } => {
                    let range =
                        codes.row_ptr[r as usize] as usize..codes.row_ptr[r as usize + 1] as usize;
                    codes.feature[range.clone()]
                        .iter()
                        .zip(&codes.value[range])
                        .find(|(&f, _)| f == unit)
                        .map_or(0.0, |(_, &v)| v)
                }
                Activations::DenseResidues {
                    values, n_units, ..
                } => values[r as usize * n_units as usize + unit as usize],
                _ => 0.0,
            };
        }
        track
    }
}

/// Runs the measures asked for on the units `range` (indices in the kind), in order.
pub(crate) fn unit_measures(
    activations: &Activations,
    n_proteins: u32,
    protein_lengths: Option<&[u32]>,
    families: Option<&FamilyTask>,
    patterns: Option<&PatternOptions>,
    range: std::ops::Range<u32>,
) -> AnalysisResult<Vec<UnitMeasures>> {
    let tracks = patterns.and_then(|_| Tracks::new(activations, n_proteins, protein_lengths));
    let measure = |unit: u32, profile: &[f32]| UnitMeasures {
        families: families.map_or_else(Vec::new, |f| {
            unit_family_f1(profile, f.families_of, f.is_training)
        }),
        pattern: patterns.zip(tracks.as_ref()).map(|(options, tracks)| {
            let dead = !profile.iter().any(|&v| v > 0.0);
            let examples = top_examples(profile, options.max_examples);
            let example_tracks: Vec<Vec<f32>> = examples
                .iter()
                .map(|&p| tracks.track(activations, unit, p))
                .collect();
            classify(&example_tracks, dead, options)
        }),
    };
    let n = n_proteins as usize;
    Ok(match *activations {
        Activations::SparseProteins(codes) | Activations::SparseResidues { codes, .. } => {
            let columns =
                ProteinColumns::from_sparse(&codes, activations.residue_rows(), n_proteins)?;
            (range.start..range.end.min(columns.n_units()))
                .into_par_iter()
                .map(|unit| {
                    let column = columns.column(unit);
                    let mut profile = vec![0f32; n];
                    for (&p, &v) in column.proteins.iter().zip(column.values) {
                        profile[p as usize] = v;
                    }
                    measure(unit, &profile)
                })
                .collect()
        }
        Activations::DenseProteins { values, n_units }
        | Activations::DenseResidues {
            values, n_units, ..
        } => {
            let rows = activations.residue_rows();
            let last = range.end.min(n_units);
            let starts: Vec<u32> = (range.start..last).step_by(DENSE_BLOCK as usize).collect();
            starts
                .into_par_iter()
                .flat_map_iter(|start| {
                    let units = start..(start + DENSE_BLOCK).min(last);
                    let block = dense_block(values, n_units, rows, n_proteins, units.clone());
                    units
                        .zip(block.values)
                        .map(|(unit, profile)| measure(unit, &profile))
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    })
}

/// Family summary and pattern class counts of one kind.
pub(crate) type KindMeasures = (
    Option<FamilySpecificitySummary>,
    Option<BTreeMap<String, u32>>,
);

/// Runs [`unit_measures`] for the units `range` of one kind and writes `family_specificity` and
/// `unit_patterns`; returns the summaries of those units (each `None` when its part did not
/// run).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_and_write(
    activations: &Activations,
    n_proteins: u32,
    protein_lengths: Option<&[u32]>,
    family: Option<(&FamilyTask, &[String])>,
    patterns: Option<&PatternOptions>,
    unit_offset: u32,
    min_f1: f64,
    writer: &AtlasWriter,
    range: std::ops::Range<u32>,
) -> AnalysisResult<KindMeasures> {
    let unit_offset = unit_offset + range.start;
    let patterns = patterns.filter(|_| activations.residue_rows().is_some());
    if family.is_none() && patterns.is_none() {
        return Ok((None, None));
    }
    let measures = unit_measures(
        activations,
        n_proteins,
        protein_lengths,
        family.map(|f| f.0),
        patterns,
        range,
    )?;
    let family_summary = match family {
        Some((_, ids)) => {
            writer.insert_family_specificity(measures.iter().enumerate().flat_map(
                |(unit, m)| {
                    m.families.iter().map(move |&score| FamilySpecificityRow {
                        unit: unit_offset + unit as u32,
                        family: &ids[score.family as usize],
                        score,
                    })
                },
            ))?;
            let good: Vec<(usize, u32)> = measures
                .iter()
                .enumerate()
                .flat_map(|(u, m)| {
                    m.families
                        .iter()
                        .filter(|s| s.f1 >= min_f1)
                        .map(move |s| (u, s.family))
                })
                .collect();
            Some(FamilySpecificitySummary {
                pairs: measures.iter().map(|m| m.families.len() as u32).sum(),
                units_with_family: good.iter().map(|g| g.0).collect::<BTreeSet<_>>().len() as u32,
                distinct_families: good.iter().map(|g| g.1).collect::<BTreeSet<_>>().len() as u32,
            })
        }
        None => None,
    };
    let pattern_summary = match patterns {
        Some(_) => {
            writer.insert_patterns(measures.iter().enumerate().filter_map(|(unit, m)| {
                m.pattern.map(|stats| PatternRow {
                    unit: unit_offset + unit as u32,
                    stats,
                })
            }))?;
            let mut counts = BTreeMap::new();
            for stats in measures.iter().filter_map(|m| m.pattern) {
                *counts
                    .entry(stats.class.as_str().to_string())
                    .or_insert(0u32) += 1;
            }
            Some(counts)
        }
        None => None,
    };
    Ok((family_summary, pattern_summary))
}

//! InterPLM-style concept scores: how well "activation > t × unit max" picks out the residues
//! that carry an annotation (a Swiss-Prot feature, a domain, a binding site...).
//!
//! For each unit, threshold `t` (InterPLM's {0, 0.15, 0.5, 0.6, 0.8}) and concept:
//! - precision = predicted residues that carry the concept / predicted residues;
//! - recall = carrying residues that are predicted / carrying residues;
//! - domain recall = annotated segments with at least one predicted residue / segments
//!   (InterPLM's "per domain" recall; for one-residue annotations it equals recall);
//! - F1 and domain F1 = harmonic means of precision with recall and with domain recall.
//!
//! The threshold is chosen per (unit, concept) on the training proteins (by [`SelectBy`]) and
//! the scores are reported at that threshold on the held-out proteins only. "Unit max" is the
//! unit's largest activation over all residues given (labels play no part in it, so it leaks
//! nothing from the held-out split).

use rayon::prelude::*;

use crate::stats_error::{StatsError, StatsResult};

/// InterPLM's thresholds, as fractions of the unit's maximum activation.
pub const INTERPLM_THRESHOLDS: [f32; 5] = [0.0, 0.15, 0.5, 0.6, 0.8];

/// One annotated stretch: residues `start..end` (0-based, end exclusive) of `protein`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConceptSegment {
    pub concept: u32,
    pub protein: u32,
    pub start: u32,
    pub end: u32,
}

/// Residue labels: protein `p` owns rows `row_start[p]..row_start[p+1]` (residue order, as in a
/// residue-level activation set), and each row lists the segments covering it.
#[derive(Debug, Clone)]
pub struct ConceptLabels {
    n_concepts: u32,
    row_start: Vec<u32>,
    segments: Vec<ConceptSegment>,
    /// Row → indices into `segments`, sorted by (concept, segment).
    row_offsets: Vec<usize>,
    row_segments: Vec<u32>,
}

impl ConceptLabels {
    /// Builds the row index. Segments must lie inside their protein and have `start < end`.
    pub fn new(
        protein_lengths: &[u32],
        n_concepts: u32,
        segments: Vec<ConceptSegment>,
    ) -> StatsResult<Self> {
        let mut row_start = vec![0u32];
        for &length in protein_lengths {
            let next = u64::from(*row_start.last().unwrap_or(&0)) + u64::from(length);
            row_start.push(
                u32::try_from(next).map_err(|_| StatsError::InvalidParameter {
                    name: "protein_lengths".into(),
                    value: next.to_string(),
                    requirement: "the total number of residues must fit in u32".into(),
                })?,
            );
        }
        let n_rows = *row_start.last().unwrap_or(&0) as usize;
        let mut per_row: Vec<Vec<u32>> = vec![Vec::new(); n_rows];
        for (index, segment) in segments.iter().enumerate() {
            let bad = |id: u64, limit: u64, what: &str| StatsError::IdOutOfRange {
                what: format!("segment {index}: {what}"),
                position: index,
                id,
                limit,
            };
            if segment.concept >= n_concepts {
                return Err(bad(segment.concept.into(), n_concepts.into(), "concept"));
            }
            let Some(&length) = protein_lengths.get(segment.protein as usize) else {
                return Err(bad(
                    segment.protein.into(),
                    protein_lengths.len() as u64,
                    "protein",
                ));
            };
            if segment.start >= segment.end || segment.end > length {
                return Err(bad(
                    segment.end.into(),
                    length.into(),
                    "residue range end (start must be < end <= length)",
                ));
            }
            let first = row_start[segment.protein as usize];
            for row in first + segment.start..first + segment.end {
                per_row[row as usize].push(index as u32);
            }
        }
        let mut row_offsets = vec![0];
        let mut row_segments = Vec::new();
        for mut list in per_row {
            list.sort_unstable_by_key(|&s| (segments[s as usize].concept, s));
            row_segments.extend(list);
            row_offsets.push(row_segments.len());
        }
        Ok(ConceptLabels {
            n_concepts,
            row_start,
            segments,
            row_offsets,
            row_segments,
        })
    }

    /// Total residues (rows).
    pub fn n_rows(&self) -> u32 {
        *self.row_start.last().unwrap_or(&0)
    }

    fn segments_on(&self, row: u32) -> &[u32] {
        &self.row_segments[self.row_offsets[row as usize]..self.row_offsets[row as usize + 1]]
    }

    fn protein_of_row(&self, row: u32) -> usize {
        self.row_start.partition_point(|&start| start <= row) - 1
    }
}

/// The nonzero residue activations of one unit: each row at most once (rows as in
/// [`ConceptLabels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitActivations {
    pub unit: u32,
    pub rows: Vec<u32>,
    pub values: Vec<f32>,
}

/// Which training score picks the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SelectBy {
    F1,
    /// InterPLM ranks pairs by this one.
    DomainF1,
}

/// Settings of a concept evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptOptions {
    /// Fractions of the unit max; [`INTERPLM_THRESHOLDS`] by default.
    pub thresholds: Vec<f32>,
    pub select_by: SelectBy,
    /// Pairs whose best training score is not above this are not reported.
    pub min_train_score: f64,
}

impl Default for ConceptOptions {
    fn default() -> Self {
        ConceptOptions {
            thresholds: INTERPLM_THRESHOLDS.to_vec(),
            select_by: SelectBy::F1,
            min_train_score: 0.0,
        }
    }
}

/// Held-out scores of one (unit, concept) pair at the threshold chosen on training proteins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConceptScore {
    pub unit: u32,
    pub concept: u32,
    /// Fraction of the unit max.
    pub threshold: f32,
    pub train_score: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub domain_recall: f64,
    pub domain_f1: f64,
}

/// Counts for one split and threshold.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    true_positives: u32,
    domains_hit: u32,
}

/// Concept totals per split: [training, held-out].
struct Totals {
    positives: Vec<[u32; 2]>,
    segments: Vec<[u32; 2]>,
}

/// Scores every unit against every concept it touches. `is_training[p]` puts protein `p` in the
/// training split, otherwise in the held-out split.
pub fn evaluate_concepts(
    labels: &ConceptLabels,
    is_training: &[bool],
    units: &[UnitActivations],
    options: &ConceptOptions,
) -> StatsResult<Vec<ConceptScore>> {
    let n_proteins = labels.row_start.len() - 1;
    if is_training.len() != n_proteins {
        return Err(StatsError::LengthMismatch {
            what: "is_training".into(),
            expected: n_proteins,
            actual: is_training.len(),
        });
    }
    if options.thresholds.is_empty() || options.thresholds.iter().any(|t| !(0.0..1.0).contains(t)) {
        return Err(StatsError::InvalidParameter {
            name: "thresholds".into(),
            value: format!("{:?}", options.thresholds),
            requirement: "at least one, each a fraction of the unit max in [0, 1)".into(),
        });
    }
    let split_of = |row: u32| usize::from(!is_training[labels.protein_of_row(row)]);
    let totals = concept_totals(labels, &split_of);
    let scores = units
        .par_iter()
        .map(|unit| score_unit(labels, &totals, &split_of, unit, options))
        .collect::<StatsResult<Vec<_>>>()?;
    Ok(scores.into_iter().flatten().collect())
}

fn concept_totals(labels: &ConceptLabels, split_of: &dyn Fn(u32) -> usize) -> Totals {
    let n = labels.n_concepts as usize;
    let mut totals = Totals {
        positives: vec![[0; 2]; n],
        segments: vec![[0; 2]; n],
    };
    for row in 0..labels.n_rows() {
        let mut previous = None;
        for &s in labels.segments_on(row) {
            let concept = labels.segments[s as usize].concept;
            if previous != Some(concept) {
                totals.positives[concept as usize][split_of(row)] += 1;
                previous = Some(concept);
            }
        }
    }
    for segment in &labels.segments {
        let row = labels.row_start[segment.protein as usize] + segment.start;
        totals.segments[segment.concept as usize][split_of(row)] += 1;
    }
    totals
}

fn score_unit(
    labels: &ConceptLabels,
    totals: &Totals,
    split_of: &dyn Fn(u32) -> usize,
    unit: &UnitActivations,
    options: &ConceptOptions,
) -> StatsResult<Vec<ConceptScore>> {
    if unit.rows.len() != unit.values.len() {
        return Err(StatsError::LengthMismatch {
            what: format!("values of unit {}", unit.unit),
            expected: unit.rows.len(),
            actual: unit.values.len(),
        });
    }
    if let Some(position) = unit.rows.iter().position(|&r| r >= labels.n_rows()) {
        return Err(StatsError::IdOutOfRange {
            what: format!("rows of unit {}", unit.unit),
            position,
            id: unit.rows[position].into(),
            limit: labels.n_rows().into(),
        });
    }
    let max = unit.values.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return Ok(Vec::new());
    }
    let cuts: Vec<f32> = options.thresholds.iter().map(|t| t * max).collect();
    let n_t = cuts.len();
    let mut predicted = vec![[0u32; 2]; n_t];
    // Sparse accumulation: concept → [split][threshold] counts, segment → max activation.
    let mut by_concept: std::collections::HashMap<u32, Vec<[Counts; 2]>> =
        std::collections::HashMap::new();
    let mut segment_max: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
    for (&row, &value) in unit.rows.iter().zip(&unit.values) {
        let split = split_of(row);
        let passed = cuts.iter().take_while(|&&cut| value > cut).count();
        for counts in &mut predicted[..passed] {
            counts[split] += 1;
        }
        let mut previous = None;
        for &s in labels.segments_on(row) {
            let concept = labels.segments[s as usize].concept;
            let best = segment_max.entry(s).or_insert(f32::NEG_INFINITY);
            *best = best.max(value);
            if previous != Some(concept) && passed > 0 {
                let counts = by_concept
                    .entry(concept)
                    .or_insert_with(|| vec![[Counts::default(); 2]; n_t]);
                for c in &mut counts[..passed] {
                    c[split].true_positives += 1;
                }
            }
            previous = Some(concept);
        }
    }
    for (&s, &best) in &segment_max {
        let segment = labels.segments[s as usize];
        let split = split_of(labels.row_start[segment.protein as usize] + segment.start);
        let passed = cuts.iter().take_while(|&&cut| best > cut).count();
        if let Some(counts) = by_concept.get_mut(&segment.concept) {
            for c in &mut counts[..passed] {
                c[split].domains_hit += 1;
            }
        }
    }
    let mut scores = Vec::new();
    for (&concept, counts) in &by_concept {
        let metrics = |t: usize, split: usize| {
            let c = counts[t][split];
            Metrics::new(
                c.true_positives,
                predicted[t][split],
                totals.positives[concept as usize][split],
                c.domains_hit,
                totals.segments[concept as usize][split],
            )
        };
        let train_score = |t: usize| match options.select_by {
            SelectBy::F1 => metrics(t, 0).f1,
            SelectBy::DomainF1 => metrics(t, 0).domain_f1,
        };
        // First best threshold: ties go to the lower one.
        let best = (0..n_t).fold(0, |best, t| {
            if train_score(t) > train_score(best) {
                t
            } else {
                best
            }
        });
        if train_score(best) <= options.min_train_score {
            continue;
        }
        let held_out = metrics(best, 1);
        scores.push(ConceptScore {
            unit: unit.unit,
            concept,
            threshold: options.thresholds[best],
            train_score: train_score(best),
            precision: held_out.precision,
            recall: held_out.recall,
            f1: held_out.f1,
            domain_recall: held_out.domain_recall,
            domain_f1: held_out.domain_f1,
        });
    }
    scores.sort_unstable_by_key(|s| s.concept);
    Ok(scores)
}

struct Metrics {
    precision: f64,
    recall: f64,
    f1: f64,
    domain_recall: f64,
    domain_f1: f64,
}

impl Metrics {
    fn new(
        true_positives: u32,
        predicted: u32,
        positives: u32,
        domains_hit: u32,
        domains: u32,
    ) -> Self {
        let ratio = |a: u32, b: u32| {
            if b == 0 {
                0.0
            } else {
                f64::from(a) / f64::from(b)
            }
        };
        let harmonic = |a: f64, b: f64| {
            if a + b == 0.0 {
                0.0
            } else {
                2.0 * a * b / (a + b)
            }
        };
        let precision = ratio(true_positives, predicted);
        let recall = ratio(true_positives, positives);
        let domain_recall = ratio(domains_hit, domains);
        Metrics {
            precision,
            recall,
            f1: harmonic(precision, recall),
            domain_recall,
            domain_f1: harmonic(precision, domain_recall),
        }
    }
}

//! Activation-pattern classes of units, as InterProt defines them (Adams et al. 2025;
//! etowahadams/interprot @ 287c373, `interprot/make_viz_files/analyze_viz_files.py`:
//! `calculate_act_stats`, `calulate_dim_metrics`, `classify_into_type`; the examples come from
//! `interprot/make_viz_files/__main__.py`, range "0.75-1", `NUM_SEQS_PER_DIM = 12`).
//!
//! - Examples: the proteins whose protein-level activation (maximum over residues) divided by
//!   the unit's maximum lies in (0.75, 1], the 12 highest (ties: lower protein index first, as
//!   `heapq.nlargest` keeps). Their residue activations are divided by the maximum over them.
//! - Per example: contigs are maximal runs of residues with activation > 0; the distances
//!   between consecutive contig starts; the fraction of residues > 0. A "motif" is a contig
//!   whose maximum exceeds 0.75; the example's top motif is the one with the highest maximum.
//! - Per unit: the share of the two most common start distances among all distances
//!   (`freq_top_two_period`), the median number of contigs per example, the median length of
//!   the examples' top motifs, the median length of all motifs, the mean fraction active.
//! - Class, first rule that holds: dead (never > 0); not enough data (< 5 examples); periodic
//!   (`freq_top_two_period` > 0.5, median contigs > 10, median top-motif length < 10); point
//!   (median motif length == 1); if mean fraction active < 0.8: short motif (top-motif median
//!   < 20), medium (< 50), long (< 300); whole (mean fraction active > 0.8); other.
//!
//! Differences from that code, where it depends on accidents: activations are not rounded to
//! one decimal (InterProt's viz files round for size, which zeroes activations below 0.05 in raw
//! units); a negative activation ends a contig (InterProt's loop leaves it inside without
//! counting it; SAE codes are never negative, neurons are); among motifs tied at the highest
//! maximum the first in the sequence is the top one.

/// A unit's pattern class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternClass {
    Dead,
    NotEnoughData,
    Periodic,
    Point,
    ShortMotif,
    MediumMotif,
    LongMotif,
    Whole,
    Other,
}

impl PatternClass {
    /// The atlas spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternClass::Dead => "dead",
            PatternClass::NotEnoughData => "not_enough_data",
            PatternClass::Periodic => "periodic",
            PatternClass::Point => "point",
            PatternClass::ShortMotif => "short_motif",
            PatternClass::MediumMotif => "medium_motif",
            PatternClass::LongMotif => "long_motif",
            PatternClass::Whole => "whole",
            PatternClass::Other => "other",
        }
    }
}

/// InterProt's constants (`__main__.py`: `NUM_SEQS_PER_DIM`, the "0.75-1" range;
/// `classify_into_type`: `n_seqs < 5`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatternOptions {
    pub max_examples: usize,
    pub min_examples: usize,
}

impl Default for PatternOptions {
    fn default() -> Self {
        PatternOptions {
            max_examples: 12,
            min_examples: 5,
        }
    }
}

/// Normalised activation above which a protein is an example and a contig is a motif.
const HIGH: f64 = 0.75;

/// A unit's class and the statistics that decided it (all 0 for dead units).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PatternStats {
    pub class: PatternClass,
    pub examples: u32,
    pub mean_fraction_active: f64,
    pub median_contigs: f64,
    pub median_top_motif_length: f64,
    pub median_motif_length: f64,
    pub freq_top_two_period: f64,
    /// The most common distance between contig starts (the smallest among ties); `None`
    /// without any.
    pub top_period: Option<u32>,
}

/// The example proteins (see the module documentation): indices into `values`, highest first.
/// Non-finite values (no residues) are never examples.
pub fn top_examples(values: &[f32], max_examples: usize) -> Vec<u32> {
    let max = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    // Only finite values enter the fold, so `max` is never NaN.
    if max <= 0.0 {
        return Vec::new();
    }
    let max = f64::from(max);
    let mut chosen: Vec<u32> = (0..values.len() as u32)
        .filter(|&p| {
            let v = values[p as usize];
            v.is_finite() && f64::from(v) / max > HIGH
        })
        .collect();
    // Stable sort: ties keep the lower index first.
    chosen.sort_by(|&a, &b| values[b as usize].total_cmp(&values[a as usize]));
    chosen.truncate(max_examples);
    chosen
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Classifies a unit from its examples' residue activations (each in position order); `dead`
/// when the unit is never positive on any protein (then `tracks` is ignored).
pub fn classify(tracks: &[Vec<f32>], dead: bool, options: &PatternOptions) -> PatternStats {
    let mut stats = PatternStats {
        class: PatternClass::Dead,
        examples: tracks.len() as u32,
        mean_fraction_active: 0.0,
        median_contigs: 0.0,
        median_top_motif_length: 0.0,
        median_motif_length: 0.0,
        freq_top_two_period: 0.0,
        top_period: None,
    };
    if dead {
        stats.examples = 0;
        return stats;
    }
    let max = tracks
        .iter()
        .flatten()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let max = f64::from(max);
    let mut distances: Vec<u32> = Vec::new();
    let mut contig_counts = Vec::new();
    let mut top_motif_lengths = Vec::new();
    let mut motif_lengths = Vec::new();
    let mut fraction_sum = 0.0;
    for track in tracks {
        let normalised: Vec<f64> = track.iter().map(|&v| f64::from(v) / max).collect();
        // (start, length, maximum) of each run of positive activations.
        let mut contigs: Vec<(usize, usize, f64)> = Vec::new();
        let mut open = false;
        for (i, &a) in normalised.iter().enumerate() {
            if a > 0.0 {
                match (open, contigs.last_mut()) {
                    (true, Some(c)) => {
                        c.1 += 1;
                        c.2 = c.2.max(a);
                    }
                    _ => contigs.push((i, 1, a)),
                }
                open = true;
            } else {
                open = false;
            }
        }
        distances.extend(contigs.windows(2).map(|w| (w[1].0 - w[0].0) as u32));
        contig_counts.push(contigs.len() as f64);
        let active = normalised.iter().filter(|&&a| a > 0.0).count();
        fraction_sum += if normalised.is_empty() {
            0.0
        } else {
            active as f64 / normalised.len() as f64
        };
        let mut top: Option<(usize, f64)> = None;
        for &(_, length, m) in contigs.iter().filter(|c| c.2 > HIGH) {
            motif_lengths.push(length as f64);
            if top.is_none_or(|(_, best)| m > best) {
                top = Some((length, m));
            }
        }
        if let Some((length, _)) = top {
            top_motif_lengths.push(length as f64);
        }
    }
    stats.mean_fraction_active = if tracks.is_empty() {
        0.0
    } else {
        fraction_sum / tracks.len() as f64
    };
    stats.median_contigs = median(&mut contig_counts);
    stats.median_top_motif_length = median(&mut top_motif_lengths);
    stats.median_motif_length = median(&mut motif_lengths);
    if !distances.is_empty() {
        let mut counts = std::collections::BTreeMap::<u32, u32>::new();
        for &d in &distances {
            *counts.entry(d).or_default() += 1;
        }
        let mut by_count: Vec<(u32, u32)> = counts.into_iter().collect();
        // Most common first, smaller distance first among ties.
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_two: u32 = by_count.iter().take(2).map(|c| c.1).sum();
        stats.freq_top_two_period = f64::from(top_two) / distances.len() as f64;
        stats.top_period = Some(by_count[0].0);
    }
    stats.class = class_of(&stats, options);
    stats
}

fn class_of(s: &PatternStats, options: &PatternOptions) -> PatternClass {
    if (s.examples as usize) < options.min_examples {
        return PatternClass::NotEnoughData;
    }
    if s.freq_top_two_period > 0.5 && s.median_contigs > 10.0 && s.median_top_motif_length < 10.0 {
        return PatternClass::Periodic;
    }
    if s.median_motif_length == 1.0 {
        return PatternClass::Point;
    }
    if s.mean_fraction_active < 0.8 {
        if s.median_top_motif_length < 20.0 {
            return PatternClass::ShortMotif;
        }
        if s.median_top_motif_length < 50.0 {
            return PatternClass::MediumMotif;
        }
        if s.median_top_motif_length < 300.0 {
            return PatternClass::LongMotif;
        }
    }
    if s.mean_fraction_active > 0.8 {
        return PatternClass::Whole;
    }
    PatternClass::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_the_top_quarter_capped_with_stable_ties() {
        let values = [1.0, 0.5, 0.8, f32::NAN, 0.8, 0.76, 0.75, 0.0];
        assert_eq!(top_examples(&values, 12), vec![0, 2, 4, 5]);
        assert_eq!(top_examples(&values, 2), vec![0, 2]);
        assert!(top_examples(&[0.0, -1.0], 12).is_empty());
    }

    #[test]
    fn a_single_distance_counts_as_fully_periodic() {
        // InterProt's bincount of one distance d has a zero bin besides d: top two sum to 1.
        let track = vec![1.0, 0.0, 0.0, 1.0];
        let s = classify(&[track], false, &PatternOptions::default());
        assert_eq!(s.freq_top_two_period, 1.0);
        assert_eq!(s.top_period, Some(3));
        assert_eq!(s.class, PatternClass::NotEnoughData);
    }
}

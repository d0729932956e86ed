//! Rows of InterProt's measures: `family_specificity` and `unit_patterns` (see [`super::schema`]).

use rusqlite::params;

use super::AtlasWriter;
use crate::error::AnalysisResult;
use crate::family_f1::FamilyF1;
use crate::patterns::PatternStats;

/// A row of `family_specificity`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilySpecificityRow<'a> {
    pub unit: u32,
    pub family: &'a str,
    pub score: FamilyF1,
}

/// A row of `unit_patterns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternRow {
    pub unit: u32,
    pub stats: PatternStats,
}

impl AtlasWriter {
    pub fn insert_family_specificity<'a>(
        &self,
        rows: impl IntoIterator<Item = FamilySpecificityRow<'a>>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "family_specificity",
            "INSERT INTO family_specificity (unit, family, top_protein, threshold, \
             threshold_activation, train_f1, precision, recall, f1, accuracy, family_size, \
             test_family_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rows,
            |s, r| {
                let f = r.score;
                s.execute(params![
                    r.unit,
                    r.family,
                    f.top_protein,
                    f.threshold,
                    f.threshold * f.unit_max,
                    f.train_f1,
                    f.precision,
                    f.recall,
                    f.f1,
                    f.accuracy,
                    f.family_size,
                    f.test_family_size
                ])
            },
        )
    }

    pub fn insert_patterns(
        &self,
        rows: impl IntoIterator<Item = PatternRow>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "unit_patterns",
            "INSERT INTO unit_patterns (unit, class, examples, mean_fraction_active, \
             median_contigs, median_top_motif_length, median_motif_length, freq_top_two_period, \
             top_period) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rows,
            |s, r| {
                let p = r.stats;
                s.execute(params![
                    r.unit,
                    p.class.as_str(),
                    p.examples,
                    p.mean_fraction_active,
                    p.median_contigs,
                    p.median_top_motif_length,
                    p.median_motif_length,
                    p.freq_top_two_period,
                    p.top_period
                ])
            },
        )
    }
}

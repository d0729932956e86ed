//! What an analysis yields beyond the atlas, and the summary the command line prints: one row
//! per quantity, features and neurons side by side.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use plmscope_bio::PropagationReport;
use plmscope_interpret::describe::{DescriptionStats, KindStats};
use plmscope_interpret::pipeline::{ConceptInput, KindSummary, TermSummary};
use plmscope_interpret::{AnalysisOptions, AnalysisSummary};

/// GO ids of the annotations that the ontology could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoIdsDropped {
    /// Ids the ontology does not know (newer than its release?).
    pub unknown: usize,
    pub obsolete: usize,
}

impl GoIdsDropped {
    pub(crate) fn of(report: &PropagationReport) -> Self {
        GoIdsDropped {
            unknown: report.unknown.len(),
            obsolete: report.obsolete_dropped.len(),
        }
    }
}

/// The residue concepts that were scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConceptCounts {
    pub concepts: usize,
    /// Labelled runs of residues.
    pub segments: usize,
    pub labelled_proteins: usize,
}

impl ConceptCounts {
    pub(crate) fn of(input: &ConceptInput) -> Self {
        let labelled: BTreeSet<u32> = input.segments.iter().map(|s| s.protein).collect();
        ConceptCounts {
            concepts: input.names.len(),
            segments: input.segments.len(),
            labelled_proteins: labelled.len(),
        }
    }
}

/// The atlas tables exported as TSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsvExport {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// What [`super::analyze`] did; `Display` gives the summary the command line prints.
#[derive(Debug, Clone)]
pub struct AnalyzeOutcome {
    /// The statistics' own summary (atlas path, per-kind counts).
    pub summary: AnalysisSummary,
    /// The options as applied (defaults resolved).
    pub options: AnalysisOptions,
    /// Where the features / neurons came from, in words.
    pub feature_source: Option<String>,
    pub neuron_source: Option<String>,
    /// `None` when GO was not tested.
    pub go_ids_dropped: Option<GoIdsDropped>,
    /// `None` when no residue concept was scored.
    pub concepts: Option<ConceptCounts>,
    pub tsv: Option<TsvExport>,
    /// Inputs left out or ignored; the analysis ran without them.
    pub warnings: Vec<String>,
    /// The atlas's LLM descriptions per protocol, provider and model (empty until
    /// `plmscope describe` runs).
    pub descriptions: Vec<DescriptionStats>,
}

impl fmt::Display for AnalyzeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = &self.summary;
        writeln!(f, "atlas: {}", summary.atlas.display())?;
        for (kind, source) in [
            ("features", &self.feature_source),
            ("neurons", &self.neuron_source),
        ] {
            if let Some(source) = source {
                writeln!(f, "{kind}: {source}")?;
            }
        }
        let matched = |unmatched: Option<usize>| {
            unmatched.map_or("-".to_string(), |u| {
                format!("{} matched, {u} unmatched", summary.proteins as usize - u)
            })
        };
        writeln!(f, "proteins analysed: {}", summary.proteins)?;
        writeln!(f, "GO records: {}", matched(summary.go_unmatched_proteins))?;
        writeln!(
            f,
            "Pfam records: {}",
            matched(summary.family_unmatched_proteins)
        )?;
        if let Some(dropped) = self.go_ids_dropped.filter(|d| d.unknown + d.obsolete > 0) {
            writeln!(
                f,
                "GO ids dropped: {} unknown to the ontology, {} obsolete",
                dropped.unknown, dropped.obsolete
            )?;
        }
        if let Some(c) = &self.concepts {
            writeln!(
                f,
                "residue concepts: {} ({} labelled segments on {} proteins)",
                c.concepts, c.segments, c.labelled_proteins
            )?;
        }
        self.write_table(f)?;
        write_description_rows(f, &self.descriptions)?;
        if let Some(tsv) = &self.tsv {
            writeln!(
                f,
                "exported {} tables to {}",
                tsv.files.len(),
                tsv.dir.display()
            )?;
        }
        Ok(())
    }
}

impl AnalyzeOutcome {
    /// The features / neurons table.
    fn write_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = &self.options;
        let alpha = options.alpha;
        let kinds = [
            self.summary.features.as_ref(),
            self.summary.neurons.as_ref(),
        ];
        let row = |f: &mut fmt::Formatter<'_>,
                   label: String,
                   value: &dyn Fn(&KindSummary) -> Option<String>| {
            let cells: Vec<String> = kinds
                .iter()
                .map(|k| k.and_then(value).unwrap_or_else(|| "-".into()))
                .collect();
            writeln!(f, "{label:<48}{:>10}{:>10}", cells[0], cells[1])
        };
        writeln!(f, "{:<48}{:>10}{:>10}", "", "features", "neurons")?;
        row(f, "units analysed".into(), &|k| Some(k.units.to_string()))?;
        row(f, "dead units".into(), &|k| Some(k.dead_units.to_string()))?;
        row(f, "median study-set size".into(), &|k| {
            Some(k.median_study_size.to_string())
        })?;
        let term_rows = |f: &mut fmt::Formatter<'_>,
                         source: &str,
                         get: fn(&KindSummary) -> Option<&TermSummary>| {
            row(
                f,
                format!("{source} units with a term at q < {alpha}"),
                &|k| get(k).map(|t| t.units_with_significant.to_string()),
            )?;
            row(f, format!("{source} distinct significant terms"), &|k| {
                get(k).map(|t| t.distinct_terms.to_string())
            })?;
            row(f, format!("{source} significant tests"), &|k| {
                get(k).map(|t| t.significant_tests.to_string())
            })
        };
        term_rows(f, "GO", |k| k.go.as_ref())?;
        for ns in &options.namespaces {
            row(
                f,
                format!("GO distinct significant terms {}", ns.short()),
                &|k| {
                    k.go.as_ref().map(|t| {
                        t.distinct_terms_by_namespace
                            .get(ns.short())
                            .copied()
                            .unwrap_or(0)
                            .to_string()
                    })
                },
            )?;
        }
        term_rows(f, "Pfam", |k| k.families.as_ref())?;
        row(
            f,
            format!("concept units with F1 >= {}", options.concept_min_f1),
            &|k| {
                k.concepts
                    .as_ref()
                    .map(|c| c.units_with_concept.to_string())
            },
        )?;
        row(f, "concept distinct concepts".into(), &|k| {
            k.concepts.as_ref().map(|c| c.distinct_concepts.to_string())
        })
    }
}

/// Rows of the features / neurons table for LLM descriptions, one block per protocol, provider
/// and model: units described, median Pearson r of the held-out predictions, and the share of
/// described units with r > 0.5 (the seed paper's comparison of features and neurons).
pub fn write_description_rows(
    f: &mut dyn fmt::Write,
    descriptions: &[DescriptionStats],
) -> fmt::Result {
    for d in descriptions {
        let by = format!("{} {} {}", d.protocol, d.provider, d.model);
        let row = |f: &mut dyn fmt::Write,
                   label: &str,
                   value: &dyn Fn(&KindStats) -> String|
         -> fmt::Result {
            let cell = |k: &KindStats| {
                if k.described + k.failed == 0 {
                    "-".to_string()
                } else {
                    value(k)
                }
            };
            writeln!(
                f,
                "{label:<48}{:>10}{:>10}",
                cell(&d.features),
                cell(&d.neurons)
            )
        };
        writeln!(f, "descriptions ({by})")?;
        row(f, "  units described (failed)", &|k| {
            format!("{} ({})", k.described, k.failed)
        })?;
        row(f, "  median score (Pearson r, held out)", &|k| {
            k.median_pearson
                .map_or("-".to_string(), |r| format!("{r:.3}"))
        })?;
        row(f, "  share with r > 0.5", &|k| {
            k.share_above_half
                .map_or("-".to_string(), |s| format!("{:.1}%", 100.0 * s))
        })?;
    }
    Ok(())
}

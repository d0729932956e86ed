//! The compare stage: atlases side by side (features and neurons), written as TSV and a
//! self-contained HTML page with plots across layers. The numbers and both renderings belong to
//! `plmscope_interpret::compare`; this module writes the files asked for and words the short
//! summary the command line prints.
//!
//! ```no_run
//! use plmscope_pipeline::compare::{compare, CompareRequest};
//! # fn main() -> anyhow::Result<()> {
//! let outcome = compare(&CompareRequest {
//!     atlases: vec!["runs/x/layer3.sqlite".into(), "runs/x/layer6.sqlite".into()],
//!     html: Some("compare.html".into()),
//!     tsv: None,
//!     probes_tsv: None,
//!     go: None,
//! })?;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use plmscope_interpret::compare::{
    compare_atlases_with, probes_to_tsv, to_html, to_tsv, AtlasComparison, CompareOptions,
};

/// Which atlases to compare and where the tables go. With the `cli` feature it is also
/// `plmscope compare`'s arguments (the field docs are their help).
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CompareRequest {
    /// Atlases (one per model × layer × dictionary).
    #[cfg_attr(feature = "cli", arg(required = true))]
    pub atlases: Vec<PathBuf>,
    /// Write a self-contained HTML page (table and SVG plots across layers).
    #[cfg_attr(feature = "cli", arg(long))]
    pub html: Option<PathBuf>,
    /// Write the table as TSV (printed to stdout when neither --tsv nor --html is given).
    #[cfg_attr(feature = "cli", arg(long))]
    pub tsv: Option<PathBuf>,
    /// Write the probes the atlases hold (`plmscope probe --atlas`) as TSV, ranked by held-out
    /// AUROC per label set (the HTML page shows them too).
    #[cfg_attr(feature = "cli", arg(long))]
    pub probes_tsv: Option<PathBuf>,
    /// GO OBO for term depths, instead of the one each atlas names in its inputs.
    #[cfg_attr(feature = "cli", arg(long))]
    pub go: Option<PathBuf>,
}

/// A comparison and whether its tables went to files. Displayed, it is the full TSV table when
/// no file was asked for, else a short summary ([`summary_table`]).
#[derive(Clone, Debug)]
pub struct CompareOutcome {
    pub rows: Vec<AtlasComparison>,
    /// The full table as TSV.
    pub tsv: String,
    /// `--tsv` or `--html` was given (and written).
    pub wrote_files: bool,
}

impl fmt::Display for CompareOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wrote_files {
            f.write_str(&summary_table(&self.rows))
        } else {
            f.write_str(&self.tsv)
        }
    }
}

/// Compares the atlases (each read-only, in the order given) and writes the files asked for.
pub fn compare(req: &CompareRequest) -> Result<CompareOutcome> {
    let options = CompareOptions { go: req.go.clone() };
    let rows = compare_atlases_with(&req.atlases, &options)?;
    write_tables(req, rows)
}

/// Writes `rows` as TSV and HTML where `req` asks (each file whole or not at all).
fn write_tables(req: &CompareRequest, rows: Vec<AtlasComparison>) -> Result<CompareOutcome> {
    let tsv = to_tsv(&rows);
    let write = |path: &PathBuf, text: &str| {
        plmscope_fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    };
    if let Some(path) = &req.tsv {
        write(path, &tsv)?;
    }
    if let Some(path) = &req.html {
        write(path, &to_html(&rows))?;
    }
    if let Some(path) = &req.probes_tsv {
        write(path, &probes_to_tsv(&rows))?;
    }
    Ok(CompareOutcome {
        rows,
        tsv,
        wrote_files: req.tsv.is_some() || req.html.is_some() || req.probes_tsv.is_some(),
    })
}

/// One line per atlas and unit kind: layer, level, kind, units, dead fraction, share of units
/// with a significant GO term, distinct terms, mean GO depth, FVE (features only), atlas.
pub fn summary_table(rows: &[AtlasComparison]) -> String {
    let mut s =
        String::from("layer\tlevel\tkind\tunits\tdead\tGO share\tGO terms\tGO depth\tFVE\tatlas\n");
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in rows {
        for (kind, stats) in [("feature", &r.features), ("neuron", &r.neurons)] {
            let Some(u) = stats else { continue };
            let fve = if kind == "feature" {
                r.source.fve
            } else {
                None
            };
            s += &format!(
                "{}\t{}\t{kind}\t{}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{}\n",
                r.source.layer.map_or("-".to_string(), |l| l.to_string()),
                r.source.level.as_deref().unwrap_or("-"),
                u.units,
                u.dead_fraction,
                u.go_share,
                u.go_distinct_terms,
                opt(u.go_mean_depth),
                opt(fve),
                r.atlas.display()
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use plmscope_interpret::compare::{AtlasSource, UnitStats};

    fn row() -> AtlasComparison {
        AtlasComparison {
            atlas: "runs/a.sqlite".into(),
            source: AtlasSource {
                layer: Some(3),
                level: Some("protein".into()),
                fve: Some(0.8),
                ..AtlasSource::default()
            },
            alpha: 0.05,
            features: Some(UnitStats {
                units: 64,
                dead_fraction: 0.25,
                go_share: 0.5,
                go_distinct_terms: 7,
                go_mean_depth: Some(4.5),
                ..UnitStats::default()
            }),
            neurons: Some(UnitStats {
                units: 8,
                ..UnitStats::default()
            }),
            probes: Vec::new(),
        }
    }

    /// Catches a summary that gives neurons the dictionary's FVE, drops a kind, or loses the
    /// `-` for missing values.
    #[test]
    fn summary_has_one_line_per_kind_and_fve_for_features_only() {
        let text = summary_table(&[row()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("layer\tlevel\tkind"));
        assert_eq!(
            lines[1],
            "3\tprotein\tfeature\t64\t0.250\t0.500\t7\t4.500\t0.800\truns/a.sqlite"
        );
        assert_eq!(
            lines[2],
            "3\tprotein\tneuron\t8\t0.000\t0.000\t0\t-\t-\truns/a.sqlite"
        );
    }

    /// Catches files not written, or the outcome printing the summary when the TSV went
    /// nowhere (stdout is then the only copy of the table).
    #[test]
    fn tables_go_to_the_files_asked_for_and_stdout_gets_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let none = write_tables(&CompareRequest::default(), vec![row()]).unwrap();
        assert!(!none.wrote_files);
        assert_eq!(none.to_string(), to_tsv(&[row()]));

        let req = CompareRequest {
            tsv: Some(dir.path().join("t.tsv")),
            html: Some(dir.path().join("c.html")),
            ..CompareRequest::default()
        };
        let files = write_tables(&req, vec![row()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t.tsv")).unwrap(),
            files.tsv
        );
        assert!(std::fs::read_to_string(dir.path().join("c.html"))
            .unwrap()
            .contains("<html"));
        assert_eq!(files.to_string(), summary_table(&[row()]));

        let bad = CompareRequest {
            tsv: Some(dir.path().join("missing/t.tsv")),
            ..CompareRequest::default()
        };
        let err = write_tables(&bad, vec![row()]).unwrap_err();
        assert!(format!("{err:#}").contains("missing/t.tsv"), "{err:#}");
    }
}

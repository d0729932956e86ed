//! Streaming reader for GO Annotation Files (GAF 2.x: `!gaf-version: 2.x`, 17 tab-separated
//! columns; 15 are required, as in GAF 1.0).
//!
//! Annotations with a `NOT` qualifier state that the product does *not* have the function, so
//! they are excluded (and counted). An optional evidence-code filter keeps only chosen codes.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{BioError, Result};
use crate::ids::{GoId, Namespace};
use crate::input::{open_text, Lines};

/// One GAF annotation line (the columns this project uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GafRecord {
    /// Column 1, e.g. `UniProtKB`.
    pub db: String,
    /// Column 2, the object id: a UniProt accession when `db` is `UniProtKB`.
    pub accession: String,
    /// Column 3.
    pub symbol: String,
    /// Column 4 split on `|` (`contributes_to`, `colocalizes_with`...; never `NOT` here).
    pub qualifiers: Vec<String>,
    /// Column 5.
    pub go: GoId,
    /// Column 7, e.g. `IDA`.
    pub evidence: String,
    /// Column 9 (`P`/`F`/`C`).
    pub aspect: Namespace,
    /// Column 13, e.g. `taxon:83333`.
    pub taxon: String,
    /// Column 15.
    pub assigned_by: String,
    /// 1-based line number.
    pub line: usize,
}

/// Counts of what the reader left out, so callers can report them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GafSummary {
    /// `!gaf-version:` value, if the header had one.
    pub version: Option<String>,
    /// Annotation lines read (comments excluded).
    pub annotation_lines: usize,
    /// Lines excluded for a `NOT` qualifier.
    pub not_excluded: usize,
    /// Lines excluded by the evidence filter.
    pub evidence_excluded: usize,
}

/// Streaming GAF reader.
pub struct GafReader<R> {
    lines: Lines<R>,
    evidence_filter: Option<BTreeSet<String>>,
    summary: GafSummary,
}

impl GafReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed GAF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(GafReader::new(open_text(path)?, path))
    }
}

impl<R: BufRead> GafReader<R> {
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        GafReader {
            lines: Lines::new(reader, name.into()),
            evidence_filter: None,
            summary: GafSummary::default(),
        }
    }

    /// Keeps only annotations whose evidence code is one of `codes` (e.g. experimental
    /// `EXP IDA IPI IMP IGI IEP`).
    pub fn with_evidence<I, S>(mut self, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.evidence_filter = Some(codes.into_iter().map(Into::into).collect());
        self
    }

    /// Counts so far; complete once the iterator is exhausted.
    pub fn summary(&self) -> &GafSummary {
        &self.summary
    }

    fn read_record(&mut self) -> Result<Option<GafRecord>> {
        while self.lines.advance()? {
            let text = self.lines.text();
            if let Some(comment) = text.strip_prefix('!') {
                if let Some(version) = comment.trim().strip_prefix("gaf-version:") {
                    self.summary.version = Some(version.trim().to_string());
                }
                continue;
            }
            if text.trim().is_empty() {
                continue;
            }
            let line = self.lines.line_number();
            // GAF has 17 columns; more are ignored, and not collecting them keeps a corrupt
            // line of tabs from costing 16 bytes per byte.
            let columns: Vec<&str> = text.split('\t').take(17).collect();
            if columns.len() < 15 {
                return Err(BioError::ShortGafLine {
                    file: self.lines.file().to_path_buf(),
                    line,
                    found: columns.len(),
                });
            }
            self.summary.annotation_lines += 1;
            let qualifiers: Vec<String> = columns[3]
                .split('|')
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_string)
                .collect();
            if qualifiers.iter().any(|q| q.eq_ignore_ascii_case("NOT")) {
                self.summary.not_excluded += 1;
                continue;
            }
            let evidence = columns[6].trim();
            if let Some(filter) = &self.evidence_filter {
                if !filter.contains(evidence) {
                    self.summary.evidence_excluded += 1;
                    continue;
                }
            }
            let go = GoId::parse(columns[4].trim()).ok_or_else(|| {
                self.lines.malformed(
                    format!("column 5 '{}' is not a GO id", columns[4]),
                    "GAF column 5 must hold GO:nnnnnnn",
                )
            })?;
            let aspect = Namespace::from_aspect(columns[8].trim()).ok_or_else(|| {
                self.lines.malformed(
                    format!("column 9 '{}' is not an aspect", columns[8]),
                    "GAF column 9 must be P, F or C",
                )
            })?;
            return Ok(Some(GafRecord {
                db: columns[0].to_string(),
                accession: columns[1].to_string(),
                symbol: columns[2].to_string(),
                qualifiers,
                go,
                evidence: evidence.to_string(),
                aspect,
                taxon: columns[12].to_string(),
                assigned_by: columns[14].to_string(),
                line,
            }));
        }
        Ok(None)
    }
}

impl<R: BufRead> Iterator for GafReader<R> {
    type Item = Result<GafRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = "!gaf-version: 2.1\n\
        UniProtKB\tP1\tabc\t\tGO:0000001\tPMID:1\tIDA\t\tF\t\t\tprotein\ttaxon:1\t20200101\tX\t\t\n\
        UniProtKB\tP1\tabc\tNOT|contributes_to\tGO:0000002\tPMID:1\tIDA\t\tF\t\t\tprotein\ttaxon:1\t20200101\tX\t\t\n\
        UniProtKB\tP2\tdef\tcontributes_to\tGO:0000003\tPMID:1\tIEA\t\tP\t\t\tprotein\ttaxon:1\t20200101\tX\n";

    #[test]
    fn not_excluded_and_evidence_filtered() {
        let mut reader = GafReader::new(LINES.as_bytes(), "t.gaf");
        let records: Vec<_> = reader.by_ref().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].qualifiers, vec!["contributes_to"]);
        assert_eq!(records[1].aspect, Namespace::BiologicalProcess);
        assert_eq!(reader.summary().not_excluded, 1);
        assert_eq!(reader.summary().version.as_deref(), Some("2.1"));

        let mut reader = GafReader::new(LINES.as_bytes(), "t.gaf").with_evidence(["IDA"]);
        let kept: Vec<_> = reader.by_ref().map(|r| r.unwrap().go).collect();
        assert_eq!(kept, vec![GoId(1)]);
        assert_eq!(reader.summary().evidence_excluded, 1);
    }
}

//! TMbed's 3-line-per-protein label format: `>header`, sequence, and one label per residue.
//!
//! Labels: `H`/`h` transmembrane helix (the two orientations), `B`/`b` transmembrane beta
//! strand, `S` signal peptide, `1` inside, `2` outside, `U` not resolved in the structure
//! (unknown, not "not membrane").

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{BioError, Result};
use crate::fasta::record_id;
use crate::features::{FeatureEnd, FeatureKind, ResidueFeature};
use crate::ids::uniprot_accession;
use crate::input::{open_text, Lines};

/// One residue's TMbed label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TmbedLabel {
    /// `H`: transmembrane helix, one orientation.
    HelixInOut,
    /// `h`: transmembrane helix, the other orientation.
    HelixOutIn,
    /// `B`: transmembrane beta strand, one orientation.
    StrandInOut,
    /// `b`: transmembrane beta strand, the other orientation.
    StrandOutIn,
    /// `S`: signal peptide.
    SignalPeptide,
    /// `1`: inside (non-membrane).
    Inside,
    /// `2`: outside (non-membrane).
    Outside,
    /// `U`: unresolved; unknown.
    Unknown,
}

impl TmbedLabel {
    pub fn from_char(c: char) -> Option<TmbedLabel> {
        Some(match c {
            'H' => TmbedLabel::HelixInOut,
            'h' => TmbedLabel::HelixOutIn,
            'B' => TmbedLabel::StrandInOut,
            'b' => TmbedLabel::StrandOutIn,
            'S' => TmbedLabel::SignalPeptide,
            '1' => TmbedLabel::Inside,
            '2' => TmbedLabel::Outside,
            'U' => TmbedLabel::Unknown,
            _ => return None,
        })
    }

    /// The residue class this label belongs to (orientation dropped).
    pub fn class(self) -> ResidueClass {
        match self {
            TmbedLabel::HelixInOut | TmbedLabel::HelixOutIn => ResidueClass::TmHelix,
            TmbedLabel::StrandInOut | TmbedLabel::StrandOutIn => ResidueClass::TmStrand,
            TmbedLabel::SignalPeptide => ResidueClass::SignalPeptide,
            TmbedLabel::Inside | TmbedLabel::Outside => ResidueClass::NonMembrane,
            TmbedLabel::Unknown => ResidueClass::Unknown,
        }
    }
}

/// Residue-level concept classes derived from TMbed labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResidueClass {
    TmHelix,
    TmStrand,
    SignalPeptide,
    NonMembrane,
    Unknown,
}

/// One protein of a TMbed label file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmbedRecord {
    /// First word of the header (e.g. `1afo_A|P02724|GLPA_HUMAN`).
    pub id: String,
    /// Header without `>`.
    pub header: String,
    pub sequence: String,
    /// One label per residue.
    pub labels: Vec<TmbedLabel>,
    /// 1-based line of the header.
    pub line: usize,
}

impl TmbedRecord {
    /// UniProt accession named in the header.
    pub fn accession(&self) -> Option<&str> {
        uniprot_accession(&self.header)
    }

    /// Sorted 1-based positions whose label falls in `class`.
    pub fn positions(&self, class: ResidueClass) -> Vec<u32> {
        (1u32..)
            .zip(&self.labels)
            .filter(|(_, label)| label.class() == class)
            .map(|(position, _)| position)
            .collect()
    }

    /// Maximal runs of TM helix, TM strand and signal peptide as residue features
    /// (kinds `Transmembrane` with note `helix`/`beta strand`, and `SignalPeptide`).
    pub fn features(&self) -> Vec<ResidueFeature> {
        let mut features = Vec::new();
        let mut start = 0usize;
        while start < self.labels.len() {
            let class = self.labels[start].class();
            let mut end = start;
            while end + 1 < self.labels.len() && self.labels[end + 1].class() == class {
                end += 1;
            }
            let kind_and_note = match class {
                ResidueClass::TmHelix => Some((FeatureKind::Transmembrane, Some("helix"))),
                ResidueClass::TmStrand => Some((FeatureKind::Transmembrane, Some("beta strand"))),
                ResidueClass::SignalPeptide => Some((FeatureKind::SignalPeptide, None)),
                ResidueClass::NonMembrane | ResidueClass::Unknown => None,
            };
            if let Some((kind, note)) = kind_and_note {
                features.push(ResidueFeature {
                    kind,
                    start: FeatureEnd::exact(start as u32 + 1),
                    end: FeatureEnd::exact(end as u32 + 1),
                    qualifiers: note
                        .map(|n| vec![("note".to_string(), n.to_string())])
                        .unwrap_or_default(),
                });
            }
            start = end + 1;
        }
        features
    }
}

/// Iterator over a TMbed label file.
pub struct TmbedReader<R> {
    lines: Lines<R>,
}

impl TmbedReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed TMbed label file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(TmbedReader::new(open_text(path)?, path))
    }
}

impl<R: BufRead> TmbedReader<R> {
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        TmbedReader {
            lines: Lines::new(reader, name.into()),
        }
    }

    fn next_non_blank(&mut self) -> Result<Option<String>> {
        while let Some(text) = self.lines.next_line()? {
            if !text.trim().is_empty() {
                return Ok(Some(text.trim().to_string()));
            }
        }
        Ok(None)
    }

    fn read_record(&mut self) -> Result<Option<TmbedRecord>> {
        let Some(header_line) = self.next_non_blank()? else {
            return Ok(None);
        };
        let line = self.lines.line_number();
        let Some(header) = header_line.strip_prefix('>') else {
            return Err(self.lines.malformed(
                "expected a '>' header line",
                "TMbed files hold exactly 3 lines per protein: header, sequence, labels",
            ));
        };
        let id = record_id(header).to_string();
        let missing = |lines: &Lines<R>, what: &str| {
            lines.malformed(
                format!("record '{id}' has no {what} line"),
                "TMbed files hold exactly 3 lines per protein: header, sequence, labels",
            )
        };
        let sequence = self
            .next_non_blank()?
            .ok_or_else(|| missing(&self.lines, "sequence"))?
            .to_ascii_uppercase();
        let label_text = self
            .next_non_blank()?
            .ok_or_else(|| missing(&self.lines, "label"))?;
        let labels = label_text
            .chars()
            .map(|c| {
                TmbedLabel::from_char(c).ok_or_else(|| {
                    self.lines.malformed(
                        format!("record '{id}': unknown label '{c}'"),
                        "labels must be one of H h B b S 1 2 U",
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if labels.len() != sequence.len() {
            return Err(BioError::LabelLengthMismatch {
                file: self.lines.file().to_path_buf(),
                line,
                id,
                sequence_len: sequence.len(),
                labels_len: labels.len(),
            });
        }
        Ok(Some(TmbedRecord {
            id,
            header: header.to_string(),
            sequence,
            labels,
            line,
        }))
    }
}

impl<R: BufRead> Iterator for TmbedReader<R> {
    type Item = Result<TmbedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_positions_and_features() {
        let text = ">1abc_A|P02724|GLPA_HUMAN\nMKVLAAG\nSS1HHh2\n";
        let record = TmbedReader::new(text.as_bytes(), "t.fasta")
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(record.accession(), Some("P02724"));
        assert_eq!(record.positions(ResidueClass::TmHelix), vec![4, 5, 6]);
        assert_eq!(record.positions(ResidueClass::SignalPeptide), vec![1, 2]);
        let features = record.features();
        assert_eq!(features.len(), 2);
        assert_eq!(features[0].kind, FeatureKind::SignalPeptide);
        assert_eq!(
            (features[1].start.position, features[1].end.position),
            (Some(4), Some(6))
        );
    }

    #[test]
    fn length_mismatch_names_record() {
        let text = "\n>x|P02724|Y\nMKV\nSS\n";
        let error = TmbedReader::new(text.as_bytes(), "t.fasta")
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("t.fasta:2") && error.contains("3 residues"),
            "{error}"
        );
    }
}

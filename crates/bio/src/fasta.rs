//! Streaming FASTA reader.
//!
//! The record id follows UniProt where it can: `>sp|P12345|NAME_HUMAN desc` and `>tr|...` give
//! the accession `P12345`; any other header gives its first whitespace-separated word (so TMbed's
//! `1afo_A|P02724|GLPA_HUMAN` keeps that whole word; [`uniprot_accession`] extracts `P02724`).
//! Sequences are uppercased with whitespace removed; the alphabet is not checked here (the model
//! crate knows which residues it accepts).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{BioError, Result};
use crate::input::{open_text, Lines};

pub use crate::ids::uniprot_accession;

/// One FASTA record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastaRecord {
    /// Accession for `sp|`/`tr|` headers, otherwise the first word of the header.
    pub id: String,
    /// The header line without the leading `>`.
    pub header: String,
    /// Residues, uppercased, whitespace removed.
    pub sequence: String,
    /// 1-based line number of the header.
    pub line: usize,
}

/// The record id for a header (without `>`): see the module documentation.
pub fn record_id(header: &str) -> &str {
    let first_word = header.split_whitespace().next().unwrap_or("");
    let mut fields = first_word.split('|');
    match (fields.next(), fields.next()) {
        (Some("sp" | "tr"), Some(accession)) if !accession.is_empty() => accession,
        _ => first_word,
    }
}

/// Iterator over the records of a FASTA stream.
pub struct FastaReader<R> {
    lines: Lines<R>,
    /// Header of the record being read, with its line number.
    pending: Option<(String, usize)>,
    sequence: String,
    finished: bool,
}

impl FastaReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed FASTA file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(FastaReader::new(open_text(path)?, path))
    }
}

impl<R: BufRead> FastaReader<R> {
    /// Reads FASTA from `reader` (not decompressed: see [`crate::input::maybe_gunzip`]);
    /// `name` is used in error messages.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        FastaReader {
            lines: Lines::new(reader, name.into()),
            pending: None,
            sequence: String::new(),
            finished: false,
        }
    }

    fn finish_record(&mut self, header: String, line: usize) -> Result<FastaRecord> {
        let id = record_id(&header).to_string();
        let sequence = std::mem::take(&mut self.sequence);
        if sequence.is_empty() {
            return Err(BioError::EmptyFastaRecord {
                file: self.lines.file().to_path_buf(),
                line,
                id,
            });
        }
        Ok(FastaRecord {
            id,
            header,
            sequence,
            line,
        })
    }

    fn read_record(&mut self) -> Result<Option<FastaRecord>> {
        loop {
            let Some(text) = self.lines.next_line()? else {
                self.finished = true;
                return match self.pending.take() {
                    Some((header, line)) => self.finish_record(header, line).map(Some),
                    None => Ok(None),
                };
            };
            if let Some(header) = text.strip_prefix('>') {
                let header = header.trim().to_string();
                let line = self.lines.line_number();
                if header.is_empty() {
                    return Err(self.lines.malformed(
                        "header line '>' has no id",
                        "give every record an id after '>'",
                    ));
                }
                if let Some((previous, previous_line)) = self.pending.replace((header, line)) {
                    return self.finish_record(previous, previous_line).map(Some);
                }
            } else if self.pending.is_some() {
                self.sequence.extend(
                    text.chars()
                        .filter(|c| !c.is_whitespace())
                        .map(|c| c.to_ascii_uppercase()),
                );
            } else if !text.trim().is_empty() && !text.starts_with(';') {
                return Err(self.lines.malformed(
                    "sequence data before the first '>' header",
                    "check that this is a FASTA file and starts with a '>' line",
                ));
            }
        }
    }
}

impl<R: BufRead> Iterator for FastaReader<R> {
    type Item = Result<FastaRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        self.read_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Result<FastaRecord>> {
        FastaReader::new(text.as_bytes(), "test.fasta").collect()
    }

    #[test]
    fn ids_sequences_and_lines() {
        let records = parse(
            ">sp|P04819|DNLI1_YEAST DNA ligase\nmrr lt\nGC\r\n\n>1afo_A|P02724|GLPA_HUMAN\nMYG\n",
        );
        let records: Vec<_> = records.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(records[0].id, "P04819");
        assert_eq!(records[0].header, "sp|P04819|DNLI1_YEAST DNA ligase");
        assert_eq!(records[0].sequence, "MRRLTGC");
        assert_eq!(records[0].line, 1);
        assert_eq!(records[1].id, "1afo_A|P02724|GLPA_HUMAN");
        assert_eq!(records[1].line, 5);
        assert_eq!(uniprot_accession(&records[1].header), Some("P02724"));
    }

    #[test]
    fn empty_record_names_line_and_id() {
        let results = parse(">a\nMK\n>b desc\n>c\nMK\n");
        let message = results[1].as_ref().unwrap_err().to_string();
        assert!(message.contains("test.fasta:3"), "{message}");
        assert!(message.contains("'b'"), "{message}");
        assert_eq!(results[2].as_ref().unwrap().id, "c");
    }

    #[test]
    fn text_before_header_is_an_error() {
        let results = parse("MKV\n>a\nMK\n");
        assert!(results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("test.fasta:1"));
    }
}

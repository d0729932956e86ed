//! Streaming reader for the UniProtKB flat file (`.dat`, "Download: Text").
//!
//! Reads `ID` (entry name), `AC` (first accession is the primary one), `DE` (first `Full=`
//! name), `OS` (organism), `DR GO/Pfam/InterPro`, `FT` (residue features with qualifiers,
//! wrapped values joined) and the `SQ` sequence; an entry ends at `//`. Everything else is
//! skipped. Each entry becomes a [`ProteinAnnotation`], the type the TSV reader also yields.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::annotations::ProteinAnnotation;
use crate::error::Result;
use crate::features::{parse_location, FeatureKind, ResidueFeature};
use crate::ids::GoId;
use crate::input::{open_text, Lines};

/// Streaming UniProt flat-file reader.
pub struct UniProtDatReader<R> {
    lines: Lines<R>,
}

impl UniProtDatReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed flat file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(UniProtDatReader::new(open_text(path)?, path))
    }
}

/// State of the entry being read.
#[derive(Default)]
struct Entry {
    protein: ProteinAnnotation,
    first_line: usize,
    organism: String,
    /// Feature being read; `None` while skipping one on another sequence.
    feature: Option<ResidueFeature>,
    in_feature: bool,
    /// The last qualifier's quoted value continues on the next FT line.
    open_value: bool,
    in_sequence: bool,
}

impl Entry {
    fn finish_feature(&mut self) {
        if let Some(feature) = self.feature.take() {
            self.protein.features.push(feature);
        }
        self.in_feature = false;
        self.open_value = false;
    }
}

impl<R: BufRead> UniProtDatReader<R> {
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        UniProtDatReader {
            lines: Lines::new(reader, name.into()),
        }
    }

    fn read_entry(&mut self) -> Result<Option<ProteinAnnotation>> {
        let mut entry: Option<Entry> = None;
        while self.lines.advance()? {
            let line = self.lines.text();
            if line.trim().is_empty() {
                continue;
            }
            let line_number = self.lines.line_number();
            let code = line.get(..2).unwrap_or(line);
            let content = line.get(5..).unwrap_or("").trim_end();
            let current = entry.get_or_insert_with(|| Entry {
                first_line: line_number,
                ..Default::default()
            });
            if code != "FT" {
                current.finish_feature();
            }
            match code {
                "//" => {
                    let mut done = entry.take().unwrap_or_default();
                    if done.protein.accession.is_empty() {
                        return Err(self.lines.malformed(
                            format!("entry starting at line {} has no AC line", done.first_line),
                            "every entry needs an 'AC   P12345;' line",
                        ));
                    }
                    let organism = done.organism.trim().trim_end_matches('.').to_string();
                    done.protein.organism = (!organism.is_empty()).then_some(organism);
                    return Ok(Some(done.protein));
                }
                "ID" => {
                    current.protein.entry_name =
                        content.split_whitespace().next().map(str::to_string)
                }
                "AC" if current.protein.accession.is_empty() => {
                    let first = content.split(';').next().unwrap_or("").trim();
                    current.protein.accession = first.to_string();
                }
                "DE" if current.protein.protein_name.is_none() => {
                    if let Some(full) = content.split_once("Full=").map(|(_, rest)| rest) {
                        current.protein.protein_name = Some(strip_evidence(full).to_string());
                    }
                }
                "OS" => {
                    current.organism.push(' ');
                    current.organism.push_str(content.trim());
                }
                "DR" => read_cross_reference(content, &mut current.protein)
                    .map_err(|problem| self.lines.malformed(problem, "fix the DR line"))?,
                "FT" => self.read_feature_line(line, current)?,
                "SQ" => current.in_sequence = true,
                "  " if current.in_sequence => current
                    .protein
                    .sequence
                    .get_or_insert_with(String::new)
                    .extend(
                        line.chars()
                            .filter(|c| c.is_ascii_alphabetic())
                            .map(|c| c.to_ascii_uppercase()),
                    ),
                _ => {}
            }
        }
        match entry {
            None => Ok(None),
            Some(unfinished) => Err(self.lines.malformed(
                format!(
                    "entry starting at line {} is not closed by '//'",
                    unfinished.first_line
                ),
                "the file looks truncated; download it again",
            )),
        }
    }

    fn read_feature_line(&self, line: &str, entry: &mut Entry) -> Result<()> {
        let key = line.get(5..21).unwrap_or("").trim();
        let rest = line.get(21..).unwrap_or("").trim();
        if !key.is_empty() {
            entry.finish_feature();
            entry.in_feature = true;
            entry.open_value = false;
            let location =
                parse_location(rest).map_err(|e| self.lines.malformed(e.0, "fix the FT line"))?;
            entry.feature = location.map(|(start, end)| ResidueFeature {
                kind: FeatureKind::from_key(key),
                start,
                end,
                qualifiers: Vec::new(),
            });
            return Ok(());
        }
        if !entry.in_feature {
            return Err(self.lines.malformed(
                "FT continuation line before any feature key",
                "fix the FT block",
            ));
        }
        let Some(feature) = entry.feature.as_mut() else {
            return Ok(()); // continuation of a feature on another sequence
        };
        if entry.open_value {
            // A quoted value left open on an earlier line continues here.
            if let Some((_, value)) = feature.qualifiers.last_mut() {
                value.push(' ');
                match rest.strip_suffix('"') {
                    Some(last) => {
                        value.push_str(last);
                        entry.open_value = false;
                    }
                    None => value.push_str(rest),
                }
            }
        } else if let Some(qualifier) = rest.strip_prefix('/') {
            let (name, value) = qualifier.split_once('=').unwrap_or((qualifier, ""));
            let value = match value.strip_prefix('"') {
                Some(quoted) => match quoted.strip_suffix('"') {
                    Some(closed) => closed,
                    None => {
                        entry.open_value = true;
                        quoted
                    }
                },
                None => value,
            };
            feature
                .qualifiers
                .push((name.to_string(), value.to_string()));
        } else {
            return Err(self
                .lines
                .malformed(format!("unexpected FT text '{rest}'"), "fix the FT block"));
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for UniProtDatReader<R> {
    type Item = Result<ProteinAnnotation>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_entry().transpose()
    }
}

/// `Name {ECO:...};` -> `Name`.
fn strip_evidence(text: &str) -> &str {
    let text = text.trim().trim_end_matches(';');
    match text.find(" {") {
        Some(brace) => text[..brace].trim(),
        None => text.trim(),
    }
}

/// `GO; GO:0005524; F:ATP binding; IEA:UniProtKB-KW.`, `Pfam; PF00069; Pkinase; 1.`,
/// `InterPro; IPR000719; Prot_kinase_dom.`
fn read_cross_reference(content: &str, protein: &mut ProteinAnnotation) -> Result<(), String> {
    let mut fields = content.split(';').map(|f| f.trim().trim_end_matches('.'));
    let database = fields.next().unwrap_or("");
    let id = fields.next().unwrap_or("");
    match database {
        "GO" => {
            protein
                .go
                .insert(GoId::parse(id).ok_or_else(|| format!("'{id}' is not a GO id"))?);
        }
        "Pfam" => {
            protein.pfam.insert(id.to_string());
        }
        "InterPro" => {
            protein.interpro.insert(id.to_string());
        }
        _ => {}
    }
    Ok(())
}

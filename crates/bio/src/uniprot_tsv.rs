//! Streaming reader for UniProt's tab-separated export ("Download: TSV").
//!
//! Columns are found by their header name (case-insensitive), old and new UniProt spellings
//! alike: `Entry`, `Entry Name`, `Protein names`, `Organism`, `Sequence`, `Gene Ontology IDs`,
//! `Gene Ontology (biological process)` etc. (`name [GO:nnnnnnn]; ...`), `Pfam` /
//! `Cross-reference (Pfam)` (`PF00001;PF00002;`), `InterPro`, `Protein families`, and the residue
//! feature columns (`Binding site`, `Active site`, `Transmembrane`, ...). Unknown columns are
//! ignored. Each row becomes a [`ProteinAnnotation`].

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::annotations::ProteinAnnotation;
use crate::error::{BioError, Result};
use crate::features::{parse_feature_cell, FeatureKind};
use crate::ids::GoId;
use crate::input::{open_text, Lines};

/// Most header columns accepted; UniProt's export offers a few hundred. Bounds the per-column
/// state a corrupt header line would otherwise size.
const MAX_COLUMNS: usize = 2048;

/// What a recognised column holds.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    Accession,
    EntryName,
    ProteinName,
    Organism,
    Sequence,
    /// `GO:0005524; GO:0016301`
    GoIds,
    /// `ATP binding [GO:0005524]; ...`
    GoNamed,
    Pfam,
    InterPro,
    Families,
    Feature(FeatureKind),
}

fn classify(header: &str) -> Option<Column> {
    let lower = header.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "entry" => Column::Accession,
        "entry name" => Column::EntryName,
        "protein names" => Column::ProteinName,
        "organism" => Column::Organism,
        "sequence" => Column::Sequence,
        "gene ontology ids" => Column::GoIds,
        "gene ontology (go)"
        | "gene ontology (biological process)"
        | "gene ontology (molecular function)"
        | "gene ontology (cellular component)" => Column::GoNamed,
        "pfam" | "cross-reference (pfam)" => Column::Pfam,
        "interpro" | "cross-reference (interpro)" => Column::InterPro,
        "protein families" => Column::Families,
        _ => return FeatureKind::from_column_name(header.trim()).map(Column::Feature),
    })
}

/// Streaming UniProt TSV reader yielding one [`ProteinAnnotation`] per data row.
pub struct UniProtTsvReader<R> {
    lines: Lines<R>,
    header: Vec<String>,
    columns: Vec<Option<Column>>,
}

impl UniProtTsvReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed UniProt TSV; the `Entry` column is required.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_requiring(path, &[])
    }

    /// Like [`UniProtTsvReader::open`], also requiring the named columns (e.g. `Sequence`).
    pub fn open_requiring(path: impl AsRef<Path>, required: &[&str]) -> Result<Self> {
        let path = path.as_ref();
        UniProtTsvReader::new(open_text(path)?, path, required)
    }
}

impl<R: BufRead> UniProtTsvReader<R> {
    /// Reads the header line; `Entry` and every name in `required` must be present
    /// (case-insensitive).
    pub fn new(reader: R, name: impl Into<PathBuf>, required: &[&str]) -> Result<Self> {
        let mut lines = Lines::new(reader, name.into());
        let header: Vec<String> = match lines.next_line()? {
            Some(text) => text
                .split('\t')
                .take(MAX_COLUMNS + 1)
                .map(|c| c.trim().to_string())
                .collect(),
            None => Vec::new(),
        };
        if header.len() > MAX_COLUMNS {
            return Err(lines.malformed(
                format!("header has more than {MAX_COLUMNS} tab-separated columns"),
                "check that this is a UniProt TSV export",
            ));
        }
        for column in std::iter::once("Entry").chain(required.iter().copied()) {
            if !header.iter().any(|h| h.eq_ignore_ascii_case(column)) {
                return Err(BioError::MissingColumn {
                    file: lines.file().to_path_buf(),
                    column: column.to_string(),
                    found: header,
                });
            }
        }
        let columns = header.iter().map(|h| classify(h)).collect();
        Ok(UniProtTsvReader {
            lines,
            header,
            columns,
        })
    }

    /// Column names as written in the header line.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    fn read_row(&mut self) -> Result<Option<ProteinAnnotation>> {
        let (text, line) = loop {
            match self.lines.next_line()? {
                None => return Ok(None),
                Some(text) if text.trim().is_empty() => continue,
                Some(text) => break (text.to_string(), self.lines.line_number()),
            }
        };
        // One cell past the header's count is enough to say the row is wrong.
        let cells: Vec<&str> = text.split('\t').take(self.header.len() + 1).collect();
        if cells.len() != self.header.len() {
            let found = if cells.len() > self.header.len() {
                "more".to_string()
            } else {
                cells.len().to_string()
            };
            return Err(self.lines.malformed(
                format!(
                    "row has {found} tab-separated cells but the header has {}",
                    self.header.len()
                ),
                "check for stray tabs or a truncated line",
            ));
        }
        let mut protein = ProteinAnnotation::default();
        for ((cell, column), name) in cells.iter().zip(&self.columns).zip(&self.header) {
            let cell = cell.trim();
            let Some(column) = column else { continue };
            if cell.is_empty() {
                continue;
            }
            let file = self.lines.file();
            let bad = |problem: String| {
                BioError::malformed(
                    file,
                    line,
                    format!("column '{name}': {problem}"),
                    "fix the cell or export the table again",
                )
            };
            match column {
                Column::Accession => protein.accession = cell.to_string(),
                Column::EntryName => protein.entry_name = Some(cell.to_string()),
                Column::ProteinName => protein.protein_name = Some(cell.to_string()),
                Column::Organism => protein.organism = Some(cell.to_string()),
                Column::Sequence => protein.sequence = Some(cell.to_ascii_uppercase()),
                Column::GoIds => {
                    for id in split_list(cell) {
                        protein.go.insert(
                            GoId::parse(id).ok_or_else(|| bad(format!("'{id}' is not a GO id")))?,
                        );
                    }
                }
                Column::GoNamed => protein.go.extend(bracketed_go_ids(cell).map_err(bad)?),
                Column::Pfam => protein.pfam.extend(split_list(cell).map(str::to_string)),
                Column::InterPro => protein
                    .interpro
                    .extend(split_list(cell).map(str::to_string)),
                Column::Families => protein
                    .families
                    .extend(split_list(cell).map(str::to_string)),
                Column::Feature(_) => protein
                    .features
                    .extend(parse_feature_cell(cell).map_err(|e| bad(e.0))?),
            }
        }
        if protein.accession.is_empty() {
            return Err(self
                .lines
                .malformed("the Entry cell is empty", "every row needs an accession"));
        }
        Ok(Some(protein))
    }
}

impl<R: BufRead> Iterator for UniProtTsvReader<R> {
    type Item = Result<ProteinAnnotation>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_row().transpose()
    }
}

/// Non-empty trimmed items of a `;`-separated list (`PF00001;PF00002;`).
fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Every `[GO:nnnnnnn]` in `name [GO:nnnnnnn]; ...`; names themselves may contain brackets.
pub fn bracketed_go_ids(cell: &str) -> Result<Vec<GoId>, String> {
    let mut ids = Vec::new();
    let mut rest = cell;
    while let Some(start) = rest.find("[GO:") {
        let candidate = &rest[start + 1..];
        let end = candidate
            .find(']')
            .ok_or_else(|| format!("unclosed '[GO:' in '{cell}'"))?;
        let id = &candidate[..end];
        ids.push(GoId::parse(id).ok_or_else(|| format!("'{id}' is not a GO id"))?);
        rest = &candidate[end..];
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_go_cells() {
        let ids =
            bracketed_go_ids("[2Fe-2S] cluster assembly [GO:0044571]; ATP binding [GO:0005524]")
                .unwrap();
        assert_eq!(ids, vec![GoId(44571), GoId(5524)]);
        assert!(bracketed_go_ids("x [GO:12]").is_err());
    }

    #[test]
    fn row_with_all_kinds_of_columns() {
        let text = "Entry\tGene Ontology IDs\tCross-reference (Pfam)\tInterPro\tTransmembrane\tOrganism\n\
                    P1\tGO:0005524; GO:0016301\tPF00069;PF00001;\tIPR000719;\tTRANSMEM 5..25; /note=\"Helical\"\tYeast\n";
        let rows: Vec<_> = UniProtTsvReader::new(text.as_bytes(), "t.tsv", &[])
            .unwrap()
            .collect();
        let p = rows[0].as_ref().unwrap();
        assert_eq!(p.go.len(), 2);
        assert_eq!(p.pfam.len(), 2);
        assert!(p.interpro.contains("IPR000719"));
        assert_eq!(p.features[0].kind, FeatureKind::Transmembrane);
        assert_eq!(p.features[0].qualifier("note"), Some("Helical"));
    }

    #[test]
    fn bad_cell_names_line_and_column() {
        let text = "Entry\tGene Ontology IDs\nP1\tGO:1\n";
        let error = UniProtTsvReader::new(text.as_bytes(), "t.tsv", &[])
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("t.tsv:2") && message.contains("Gene Ontology IDs"),
            "{message}"
        );
    }
}

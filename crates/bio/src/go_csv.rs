//! The per-proteome GO list CSV (`UP..._go.csv`): header `Protein ID,GO ID,Function,Link`, one
//! row per protein, `GO ID` holding `|`-separated GO ids or `NA` for none. Fields follow RFC 4180
//! (double quotes around fields with commas, `""` for a quote, quoted line breaks allowed).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::annotations::ProteinAnnotation;
use crate::error::{BioError, Result};
use crate::ids::GoId;
use crate::input::{open_text, Lines};

const ACCESSION_COLUMN: &str = "Protein ID";
const GO_COLUMN: &str = "GO ID";
/// Most fields per record; the file has 4. Each field costs a `String`, so a corrupt line of
/// commas would otherwise cost 24 bytes per byte.
const MAX_FIELDS: usize = 1024;

/// One row: a protein and its GO ids (empty for `NA`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoCsvRow {
    pub accession: String,
    pub go: Vec<GoId>,
    /// 1-based line where the row starts.
    pub line: usize,
}

impl GoCsvRow {
    pub fn into_annotation(self) -> ProteinAnnotation {
        let mut protein = ProteinAnnotation::new(self.accession);
        protein.go.extend(self.go);
        protein
    }
}

/// Streaming reader of the GO list CSV.
pub struct GoCsvReader<R> {
    lines: Lines<R>,
    accession_column: usize,
    go_column: usize,
}

impl GoCsvReader<Box<dyn BufRead + Send>> {
    /// Opens a plain or gzip-compressed GO list CSV.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        GoCsvReader::new(open_text(path)?, path)
    }
}

impl<R: BufRead> GoCsvReader<R> {
    /// Reads the header; `Protein ID` and `GO ID` are required.
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Result<Self> {
        let mut lines = Lines::new(reader, name.into());
        let (header, _) = read_csv_record(&mut lines)?.unwrap_or_default();
        let find = |column: &str| {
            header
                .iter()
                .position(|h| h == column)
                .ok_or_else(|| BioError::MissingColumn {
                    file: lines.file().to_path_buf(),
                    column: column.to_string(),
                    found: header.clone(),
                })
        };
        let accession_column = find(ACCESSION_COLUMN)?;
        let go_column = find(GO_COLUMN)?;
        Ok(GoCsvReader {
            lines,
            accession_column,
            go_column,
        })
    }

    fn read_row(&mut self) -> Result<Option<GoCsvRow>> {
        let Some((fields, line)) = read_csv_record(&mut self.lines)? else {
            return Ok(None);
        };
        let needed = self.accession_column.max(self.go_column) + 1;
        if fields.len() < needed {
            return Err(self.lines.malformed(
                format!(
                    "row has {} fields, at least {needed} expected",
                    fields.len()
                ),
                "check the quoting of this row",
            ));
        }
        let accession = fields[self.accession_column].trim().to_string();
        let go_text = fields[self.go_column].trim();
        let go = if go_text == "NA" || go_text.is_empty() {
            Vec::new()
        } else {
            go_text
                .split('|')
                .map(|id| {
                    GoId::parse(id.trim()).ok_or_else(|| {
                        self.lines.malformed(
                            format!("'{id}' in column '{GO_COLUMN}' is not a GO id"),
                            "use GO:nnnnnnn ids separated by '|', or NA",
                        )
                    })
                })
                .collect::<Result<_>>()?
        };
        Ok(Some(GoCsvRow {
            accession,
            go,
            line,
        }))
    }
}

impl<R: BufRead> Iterator for GoCsvReader<R> {
    type Item = Result<GoCsvRow>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_row().transpose()
    }
}

/// Next non-empty CSV record and the line it starts on, joining lines while a quoted field is
/// open.
pub(crate) fn read_csv_record<R: BufRead>(
    lines: &mut Lines<R>,
) -> Result<Option<(Vec<String>, usize)>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut start_line = 0;
    while lines.advance()? {
        let text = lines.text();
        if start_line == 0 && text.trim().is_empty() {
            continue;
        }
        if start_line == 0 {
            start_line = lines.line_number();
        }
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, in_quotes) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => in_quotes = !in_quotes,
                (',', false) => {
                    fields.push(std::mem::take(&mut field));
                    if fields.len() > MAX_FIELDS {
                        return Err(lines.malformed(
                            format!("record has more than {MAX_FIELDS} comma-separated fields"),
                            "check that this is the GO list CSV (4 columns)",
                        ));
                    }
                }
                _ => field.push(c),
            }
        }
        if in_quotes {
            field.push('\n');
        } else {
            fields.push(field);
            return Ok(Some((fields, start_line)));
        }
    }
    if in_quotes {
        return Err(lines.malformed(
            "quoted field is not closed before the end of the file",
            "close the quote",
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_na() {
        let text = "Protein ID,GO ID,Function,Link\n\
                    P1,GO:0000001|GO:0000002,\"a, b|c \"\"x\"\"\",http://x\n\
                    P2,NA,NA,http://y\n";
        let rows: Vec<_> = GoCsvReader::new(text.as_bytes(), "t.csv")
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows[0].go, vec![GoId(1), GoId(2)]);
        assert!(rows[1].go.is_empty());
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn missing_column_lists_found_columns() {
        let error = GoCsvReader::new("Protein ID,Function\n".as_bytes(), "t.csv")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("'GO ID'") && error.contains("Function"),
            "{error}"
        );
    }
}

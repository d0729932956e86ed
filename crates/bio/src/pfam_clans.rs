//! Pfam's `Pfam-A.clans.tsv`: no header, five tab-separated columns: family accession, clan
//! accession (may be empty), clan name, family short name, family description.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::input::{open_text, Lines};

/// One Pfam family and its clan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfamFamily {
    /// `PF00001`.
    pub accession: String,
    /// `CL0192`, if the family belongs to a clan.
    pub clan: Option<String>,
    pub clan_name: Option<String>,
    /// `7tm_1`.
    pub short_name: String,
    pub description: String,
}

/// Streaming reader of `Pfam-A.clans.tsv`.
pub struct PfamClansReader<R> {
    lines: Lines<R>,
}

impl PfamClansReader<Box<dyn BufRead + Send>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(PfamClansReader::new(open_text(path)?, path))
    }
}

impl<R: BufRead> PfamClansReader<R> {
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        PfamClansReader {
            lines: Lines::new(reader, name.into()),
        }
    }

    fn read_row(&mut self) -> Result<Option<PfamFamily>> {
        loop {
            let Some(text) = self.lines.next_line()? else {
                return Ok(None);
            };
            if text.trim().is_empty() {
                continue;
            }
            // One cell past the five is enough to say the row is wrong.
            let cells: Vec<&str> = text.split('\t').take(6).collect();
            if cells.len() != 5 || !cells[0].starts_with("PF") {
                let found = cells.len();
                return Err(self.lines.malformed(
                    format!(
                        "expected 5 tab-separated cells starting with a PF accession, found {}",
                        if found > 5 {
                            "more".to_string()
                        } else {
                            found.to_string()
                        }
                    ),
                    "use Pfam's Pfam-A.clans.tsv as distributed",
                ));
            }
            let optional = |cell: &str| (!cell.trim().is_empty()).then(|| cell.trim().to_string());
            return Ok(Some(PfamFamily {
                accession: cells[0].trim().to_string(),
                clan: optional(cells[1]),
                clan_name: optional(cells[2]),
                short_name: cells[3].trim().to_string(),
                description: cells[4].trim().to_string(),
            }));
        }
    }
}

impl<R: BufRead> Iterator for PfamClansReader<R> {
    type Item = Result<PfamFamily>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_row().transpose()
    }
}

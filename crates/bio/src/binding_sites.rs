//! bindEmbed21's `binding_residues_*.txt`: `ACCESSION<TAB>comma-separated 1-based positions`,
//! one line per protein. The ligand class (metal, nuclear, small) is in the file name, so the
//! caller states it when turning the rows into features.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::features::{FeatureEnd, FeatureKind, ResidueFeature, MAX_POSITION};
use crate::input::{open_text, Lines};

/// Binding residues of one protein.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingResidues {
    pub accession: String,
    /// Sorted, distinct, 1-based.
    pub positions: Vec<u32>,
    pub line: usize,
}

impl BindingResidues {
    /// One single-residue `BINDING` feature per position, with qualifier `ligand_class`.
    pub fn features(&self, ligand_class: &str) -> Vec<ResidueFeature> {
        self.positions
            .iter()
            .map(|&position| ResidueFeature {
                kind: FeatureKind::BindingSite,
                start: FeatureEnd::exact(position),
                end: FeatureEnd::exact(position),
                qualifiers: vec![("ligand_class".to_string(), ligand_class.to_string())],
            })
            .collect()
    }
}

/// Streaming reader of a binding-residue list.
pub struct BindingResiduesReader<R> {
    lines: Lines<R>,
}

impl BindingResiduesReader<Box<dyn BufRead + Send>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Ok(BindingResiduesReader::new(open_text(path)?, path))
    }
}

impl<R: BufRead> BindingResiduesReader<R> {
    pub fn new(reader: R, name: impl Into<PathBuf>) -> Self {
        BindingResiduesReader {
            lines: Lines::new(reader, name.into()),
        }
    }

    fn read_row(&mut self) -> Result<Option<BindingResidues>> {
        loop {
            if !self.lines.advance()? {
                return Ok(None);
            }
            let text = self.lines.text();
            if text.trim().is_empty() {
                continue;
            }
            let fix = format!(
                "lines must read ACCESSION<TAB>1,2,3 with positions from 1 to {MAX_POSITION}"
            );
            let Some((accession, list)) = text.split_once('\t') else {
                return Err(self
                    .lines
                    .malformed("no tab between accession and positions", &fix));
            };
            let mut positions = list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_POSITION).contains(n))
                        .ok_or_else(|| {
                            self.lines
                                .malformed(format!("'{p}' is not a 1-based position"), &fix)
                        })
                })
                .collect::<Result<Vec<u32>>>()?;
            positions.sort_unstable();
            positions.dedup();
            return Ok(Some(BindingResidues {
                accession: accession.trim().to_string(),
                positions,
                line: self.lines.line_number(),
            }));
        }
    }
}

impl<R: BufRead> Iterator for BindingResiduesReader<R> {
    type Item = Result<BindingResidues>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_row().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_out_of_range_name_the_line() {
        let text = "P1\t3,1,3\nP2\t5,4294967296\n";
        let rows: Vec<_> = BindingResiduesReader::new(text.as_bytes(), "b.txt").collect();
        assert_eq!(rows[0].as_ref().unwrap().positions, vec![1, 3]);
        let error = rows[1].as_ref().unwrap_err().to_string();
        assert!(
            error.starts_with("b.txt:2:") && error.contains("4294967296"),
            "{error}"
        );
    }
}

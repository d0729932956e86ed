//! Annotation files: the format told from the content, and several files merged into one table
//! that remembers which proteins some GO / Pfam source lists.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};
use plmscope_bio::input::{open_text, Lines};
use plmscope_bio::{
    AnnotationTable, FeatureKind, GafReader, GoCsvReader, UniProtDatReader, UniProtTsvReader,
};

/// Annotation file formats analyze accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationFormat {
    UniProtTsv,
    UniProtDat,
    Gaf,
    GoCsv,
}

/// Tells the format from the first line that is neither empty nor a `!` comment (plain or
/// gzip) and from the comments before it, the extension breaking ties. GAF files open with a
/// comment block that holds `!gaf-version` somewhere, not necessarily first.
pub fn detect_format(path: &Path) -> Result<AnnotationFormat> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let mut lines = Lines::new(open_text(path)?, path.to_path_buf());
    let mut gaf_version = false;
    let first = loop {
        match lines.next_line()? {
            Some(line) if line.trim().is_empty() => continue,
            Some(line) if line.starts_with('!') => {
                gaf_version |= line.starts_with("!gaf-version");
            }
            Some(line) => break line.to_string(),
            None => bail!("{}: holds no annotation line", path.display()),
        }
    };
    Ok(if gaf_version || name.ends_with(".gaf") {
        AnnotationFormat::Gaf
    } else if first.starts_with("ID   ") || name.ends_with(".dat") {
        AnnotationFormat::UniProtDat
    } else if name.ends_with(".csv") || first.contains("Protein ID,") {
        AnnotationFormat::GoCsv
    } else if first.contains('\t') || name.ends_with(".tsv") || name.ends_with(".tab") {
        AnnotationFormat::UniProtTsv
    } else if first.starts_with('>') {
        bail!(
            "{}: looks like FASTA or TMbed labels, not annotations; residue labels go to \
             --residue-labels tmbed={}",
            path.display(),
            path.display()
        )
    } else {
        bail!(
            "{}:{}: unknown annotation format; expected a UniProt TSV (tab-separated, header \
             with Entry), a UniProt flat file (ID lines), a GAF (!gaf-version) or a GO list CSV \
             (Protein ID,GO ID)",
            path.display(),
            lines.line_number()
        )
    })
}

/// Merged annotations, and which accessions some GO / Pfam source has a record for: a protein
/// counts as unmatched only when no source of that kind lists it.
#[derive(Default)]
pub(crate) struct Annotations {
    pub table: AnnotationTable,
    pub go_records: BTreeSet<String>,
    pub pfam_records: BTreeSet<String>,
    /// The files that carry GO annotations, for the error when no ontology is given.
    pub go_files: Vec<String>,
}

/// Which annotation columns a file has.
struct Carries {
    go: bool,
    pfam: bool,
}

impl Annotations {
    pub fn read(&mut self, path: &Path, format: AnnotationFormat) -> Result<()> {
        let before = self.table.len();
        let mut accessions = Vec::new();
        let carries = match format {
            AnnotationFormat::UniProtTsv => self.read_tsv(path, &mut accessions)?,
            AnnotationFormat::UniProtDat => {
                for protein in UniProtDatReader::open(path)? {
                    let protein = protein?;
                    accessions.push(protein.accession.clone());
                    self.table.insert(protein);
                }
                Carries {
                    go: true,
                    pfam: true,
                }
            }
            AnnotationFormat::GoCsv => {
                for row in GoCsvReader::open(path)? {
                    let row = row?;
                    accessions.push(row.accession.clone());
                    self.table.insert(row.into_annotation());
                }
                Carries {
                    go: true,
                    pfam: false,
                }
            }
            AnnotationFormat::Gaf => {
                let mut reader = GafReader::open(path)?;
                for record in reader.by_ref() {
                    let record = record?;
                    self.table.entry(&record.accession).go.insert(record.go);
                    accessions.push(record.accession);
                }
                let s = reader.summary();
                tracing::info!(
                    "{}: GAF {}, {} NOT-qualified lines left out",
                    path.display(),
                    s.version.as_deref().unwrap_or("(no version)"),
                    s.not_excluded
                );
                Carries {
                    go: true,
                    pfam: false,
                }
            }
        };
        let records = accessions.len();
        // A file without a single record tells nothing about GO, whatever its format.
        if carries.go && records > 0 {
            self.go_files.push(path.display().to_string());
        }
        if carries.go {
            self.go_records.extend(accessions.iter().cloned());
        }
        if carries.pfam {
            self.pfam_records.extend(accessions);
        }
        tracing::info!(
            "{}: {format:?}, {records} records, {} new proteins",
            path.display(),
            self.table.len() - before
        );
        Ok(())
    }

    /// A UniProt TSV: columns by header name; one that analyze has no use for is refused.
    fn read_tsv(&mut self, path: &Path, accessions: &mut Vec<String>) -> Result<Carries> {
        let reader = UniProtTsvReader::open(path)?;
        let header: Vec<String> = reader
            .header()
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let carries = Carries {
            go: header.iter().any(|h| h.starts_with("gene ontology")),
            pfam: header
                .iter()
                .any(|h| h == "pfam" || h == "cross-reference (pfam)"),
        };
        let has_features = reader
            .header()
            .iter()
            .any(|h| FeatureKind::from_column_name(h).is_some());
        if !carries.go && !carries.pfam && !has_features {
            bail!(
                "{}: no column analyze uses (Gene Ontology IDs / Gene ontology (...), Pfam / \
                 Cross-reference (Pfam), or residue feature columns); columns found: {:?}",
                path.display(),
                reader.header()
            );
        }
        for protein in reader {
            let protein = protein?;
            accessions.push(protein.accession.clone());
            self.table.insert(protein);
        }
        Ok(carries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

    #[test]
    fn formats_are_told_from_real_files() {
        let format = |path: &str| detect_format(Path::new(&format!("{DATA}/{path}")));
        // The GAF opens with a comment block; its version line is not the first line.
        assert_eq!(
            format("ecoli_k12/gene_association.ecocyc").unwrap(),
            AnnotationFormat::Gaf
        );
        assert_eq!(
            format("ecoli_k12/UP000000625_83333_go.csv").unwrap(),
            AnnotationFormat::GoCsv
        );
        assert_eq!(
            format("ecoli_k12/Ecoli_metadata.txt").unwrap(),
            AnnotationFormat::UniProtTsv
        );
        assert_eq!(
            format("uniprot_tsv_example/sample_uniprot.tsv").unwrap(),
            AnnotationFormat::UniProtTsv
        );
        let err = format("tmbed/alpha.fasta").unwrap_err().to_string();
        assert!(err.contains("alpha.fasta") && err.contains("--residue-labels tmbed="));
    }

    #[test]
    fn go_and_pfam_records_come_only_from_files_that_carry_them() {
        let csv = format!("{DATA}/ecoli_k12/UP000000625_83333_go.csv");
        let mut annotations = Annotations::default();
        annotations
            .read(Path::new(&csv), AnnotationFormat::GoCsv)
            .unwrap();
        assert!(!annotations.go_records.is_empty());
        assert!(annotations.pfam_records.is_empty());
        assert_eq!(annotations.go_files, [csv]);
    }
}

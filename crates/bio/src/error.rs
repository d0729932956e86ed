//! The one error type of this crate. Every variant names the file (or stream name) it came from,
//! the 1-based line where that makes sense, what is wrong and what to do about it.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = BioError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading biological files or building the GO DAG.
#[derive(Debug, thiserror::Error)]
pub enum BioError {
    #[error("{file}: cannot read: {source} (check that the path exists and is readable)")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}:{line}: {problem} ({fix})")]
    Malformed {
        file: PathBuf,
        line: usize,
        problem: String,
        fix: String,
    },

    #[error(
        "{file}:{line}: FASTA record '{id}' has a header but no sequence \
         (remove the record or add its sequence)"
    )]
    EmptyFastaRecord {
        file: PathBuf,
        line: usize,
        id: String,
    },

    #[error(
        "{file}:{line}: record '{id}' has a sequence of {sequence_len} residues but \
         {labels_len} labels (each residue needs exactly one label)"
    )]
    LabelLengthMismatch {
        file: PathBuf,
        line: usize,
        id: String,
        sequence_len: usize,
        labels_len: usize,
    },

    #[error(
        "{file}: required column '{column}' is missing; columns found: {found:?} \
         (export the table again with that column)"
    )]
    MissingColumn {
        file: PathBuf,
        column: String,
        found: Vec<String>,
    },

    #[error(
        "{file}:{line}: GAF line has {found} tab-separated columns, at least 15 are required \
         (check that the file is GAF 2.x and uses tabs, not spaces)"
    )]
    ShortGafLine {
        file: PathBuf,
        line: usize,
        found: usize,
    },

    #[error(
        "{file}:{line}: term {term} names parent {parent} ({relation}), which is not a [Term] \
         in this file (use a complete ontology file, e.g. go-basic.obo)"
    )]
    DanglingParent {
        file: PathBuf,
        line: usize,
        term: String,
        parent: String,
        relation: String,
    },

    #[error(
        "{file}:{line}: cycle over is_a/part_of through terms {terms:?} \
         (GO must be acyclic; use go-basic.obo or fix the listed terms)"
    )]
    Cycle {
        file: PathBuf,
        line: usize,
        terms: Vec<String>,
    },

    #[error(
        "{file}:{line}: term {term} is defined twice, first at line {first_line} (keep one stanza)"
    )]
    DuplicateTerm {
        file: PathBuf,
        line: usize,
        term: String,
        first_line: usize,
    },
}

impl BioError {
    /// Shorthand for [`BioError::Malformed`].
    pub(crate) fn malformed(
        file: &std::path::Path,
        line: usize,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        BioError::Malformed {
            file: file.to_path_buf(),
            line,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

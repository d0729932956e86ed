//! The one error type of this crate. Every variant names the file or directory it is about, so
//! the binary can print it as is.

use std::path::PathBuf;

/// What went wrong while writing or reading an activation set or a code set.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system call on a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },

    /// `manifest.json` is unreadable JSON or lacks something this version needs.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A rerun targets a directory that holds a set written with other settings.
    #[error(
        "{}: the existing set has {field} = {existing}, this run asks for {requested}; \
         use another --out or delete the directory",
        dir.display()
    )]
    HeaderMismatch {
        /// The set directory.
        dir: PathBuf,
        /// The first field that differs (`model.id`, `layer`, ...).
        field: String,
        /// Its value in the existing manifest.
        existing: String,
        /// Its value in this run.
        requested: String,
    },

    /// The directory exists, is not empty and is not a set of this kind.
    #[error("{}: {message}", dir.display())]
    NotASet {
        /// The directory.
        dir: PathBuf,
        /// Why it is not accepted.
        message: String,
    },

    /// The set is not finished: a run was interrupted, or a shard is missing or short.
    #[error("{}: the set is incomplete ({reason}); rerun embed with the same arguments to resume it", dir.display())]
    Incomplete {
        /// The set directory.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// A shard's content disagrees with the manifest or with the format.
    #[error("{}: {message}", path.display())]
    Shard {
        /// The shard file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A shard is not a valid safetensors file (truncated, corrupt header...).
    #[error("{}: not a valid safetensors file: {source}", path.display())]
    Safetensors {
        /// The shard file.
        path: PathBuf,
        /// The parser's error.
        source: safetensors::SafeTensorError,
    },

    /// A line of `proteins.tsv` is malformed or disagrees with the manifest.
    #[error("{}:{line}: {message}", path.display())]
    ProteinTable {
        /// The `proteins.tsv` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// The caller passed data that does not fit the set (wrong length, bad id, shard out of range).
    #[error("{0}")]
    InvalidInput(String),

    /// Two sets that must line up row by row do not.
    #[error("sets are not aligned row by row: {0}")]
    NotAligned(String),

    /// A saved stream position does not belong to this stream's configuration.
    #[error("cannot resume the row stream: {0}")]
    ResumeMismatch(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn shard(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        StoreError::Shard {
            path: path.into(),
            message: message.into(),
        }
    }
}

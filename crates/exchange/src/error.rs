//! The crate's error: every variant names the file (and, where there is one, the table, column,
//! dataset or protein) and says what was wrong.

use std::path::{Path, PathBuf};

/// An export or import failure.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// An activation or code set could not be read or written.
    #[error(transparent)]
    Store(#[from] plmscope_store::StoreError),
    /// The atlas could not be read.
    #[error("{}: {action}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        action: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The Parquet writer refused a schema or a page.
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An input file is malformed or holds something this reader does not take; the message
    /// says which part and what to do.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    /// The request itself is inconsistent (a layer that is not in the files, no inputs...).
    #[error("{0}")]
    Invalid(String),
}

impl ExchangeError {
    pub(crate) fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| ExchangeError::Io {
            path,
            action,
            source,
        }
    }

    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        ExchangeError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self {
        let path = path.to_path_buf();
        move |source| ExchangeError::Parquet { path, source }
    }

    pub(crate) fn sqlite(
        path: &Path,
        action: impl Into<String>,
    ) -> impl FnOnce(rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        let action = action.into();
        move |source| ExchangeError::Sqlite {
            path,
            action,
            source,
        }
    }
}

impl From<plmscope_fsutil::Error> for ExchangeError {
    fn from(e: plmscope_fsutil::Error) -> Self {
        ExchangeError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ExchangeError> = std::result::Result<T, E>;

//! The error type of the analysis pipeline and the atlas database: statistics errors, SQLite and
//! file-system errors (each with the file it concerns) and inconsistent inputs.

use std::path::PathBuf;

use crate::stats_error::StatsError;

/// Result alias for the pipeline and the atlas.
pub type AnalysisResult<T> = std::result::Result<T, AnalysisError>;

/// Everything `analyze`, the atlas writer and the TSV export refuse or fail to do.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A statistics routine rejected its input.
    #[error("{context}: {source}")]
    Stats {
        context: String,
        #[source]
        source: StatsError,
    },

    /// An SQLite call failed on `path`.
    #[error("atlas {path}: {action} failed: {source}")]
    Sqlite {
        path: PathBuf,
        action: String,
        #[source]
        source: rusqlite::Error,
    },

    /// A file-system call failed on `path`.
    #[error("{path}: {action} failed: {source}")]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: std::io::Error,
    },

    /// The inputs contradict each other or an option is out of range.
    #[error("invalid analysis input: {what}; {fix}")]
    Input { what: String, fix: String },
}

impl AnalysisError {
    pub(crate) fn input(what: impl Into<String>, fix: impl Into<String>) -> Self {
        AnalysisError::Input {
            what: what.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (path, action) = (path.into(), action.into());
        move |source| AnalysisError::Io {
            path,
            action,
            source,
        }
    }

    pub(crate) fn sqlite(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
    ) -> impl FnOnce(rusqlite::Error) -> Self {
        let (path, action) = (path.into(), action.into());
        move |source| AnalysisError::Sqlite {
            path,
            action,
            source,
        }
    }

    pub(crate) fn stats(context: impl Into<String>) -> impl FnOnce(StatsError) -> Self {
        let context = context.into();
        move |source| AnalysisError::Stats { context, source }
    }
}

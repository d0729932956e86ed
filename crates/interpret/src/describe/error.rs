//! The error type of `describe`: what stops a whole run. A single unit's failure (a malformed
//! reply, a server that keeps failing) is not an error: it is recorded in the atlas and the run
//! goes on.

use std::path::PathBuf;

/// Result alias for the describe module.
pub type DescribeResult<T> = std::result::Result<T, DescribeError>;

/// Everything that stops `describe`.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
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

    /// An option is out of range or the atlas lacks what a prompt needs.
    #[error("describe: {what}; {fix}")]
    Input { what: String, fix: String },

    /// The provider refused in a way no retry can fix (bad key, unknown model or URL).
    #[error("{provider}: {message}")]
    Provider { provider: String, message: String },
}

impl DescribeError {
    pub(crate) fn input(what: impl Into<String>, fix: impl Into<String>) -> Self {
        DescribeError::Input {
            what: what.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn sqlite(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
    ) -> impl FnOnce(rusqlite::Error) -> Self {
        let (path, action) = (path.into(), action.into());
        move |source| DescribeError::Sqlite {
            path,
            action,
            source,
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (path, action) = (path.into(), action.into());
        move |source| DescribeError::Io {
            path,
            action,
            source,
        }
    }
}

use std::path::PathBuf;

/// Everything that can go wrong loading or running a model, naming the file or tensor involved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "{path}: tensor `{name}` is missing (found {found} tensors; is this an ESM2 checkpoint?)"
    )]
    MissingTensor {
        path: PathBuf,
        name: String,
        found: usize,
    },
    #[error("{path}: tensor `{name}` has shape {found:?}, the config needs {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "{path}: tensor `{name}` has {count} non-finite values (NaN or infinity) among {total}; \
         the checkpoint is corrupt or was saved after training diverged"
    )]
    NonFinite {
        path: PathBuf,
        name: String,
        count: usize,
        total: usize,
    },
    #[error("{0}")]
    Hub(String),
    #[error("{0}")]
    Request(String),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

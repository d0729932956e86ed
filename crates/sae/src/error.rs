//! The crate's error type: every variant names the file, tensor or batch row that is wrong.

use std::path::PathBuf;

/// Errors from building, training, evaluating or reading/writing dictionaries.
#[derive(Debug, thiserror::Error)]
pub enum SaeError {
    /// A configuration value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The `architecture` string is not in the registry.
    #[error("unknown architecture {name:?}; known: {known}")]
    UnknownArchitecture { name: String, known: String },
    /// Input rows do not have the width the dictionary expects.
    #[error("{what}: expected rows of width {expected}, got {got} values (not a multiple, or wrong width)")]
    Shape {
        what: String,
        expected: usize,
        got: usize,
    },
    /// A batch holds a NaN or infinite value.
    #[error("{what}: non-finite value {value} at row {row}, column {column}")]
    NonFinite {
        what: String,
        row: usize,
        column: usize,
        value: f32,
    },
    /// Training diverged (loss became non-finite).
    #[error("training diverged at step {step}: loss = {loss}")]
    Diverged { step: u64, loss: f32 },
    /// A batch source failed to produce a batch.
    #[error("batch source: {0}")]
    BatchSource(Box<dyn std::error::Error + Send + Sync>),
    /// Reading an activation set failed (incomplete set, bad shard, resume mismatch...).
    #[error(transparent)]
    Store(#[from] plmscope_store::StoreError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or does not hold the expected fields.
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    /// A safetensors file is malformed, or holds tensors of the wrong name, shape or dtype.
    #[error("{path}: {message}")]
    Tensors { path: PathBuf, message: String },
    /// A checkpoint layout this crate cannot read.
    #[error("{path}: {message}")]
    UnsupportedFormat { path: PathBuf, message: String },
    /// The dictionary reconstructs a probe sample far worse than recorded at training time.
    #[error(
        "dictionary reconstructs this sample with FVU {measured:.4}, recorded {recorded:.4} at training: \
         the activations probably come from another model, layer (off by one?) or site than {expected_source}"
    )]
    FvuMismatch {
        measured: f64,
        recorded: f64,
        expected_source: String,
    },
}

impl SaeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SaeError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn tensors(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        SaeError::Tensors {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn json(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        SaeError::Json {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = SaeError> = std::result::Result<T, E>;

/// Checks that `data` holds whole rows of `width` values, all finite; `what` names the data in errors.
pub fn check_rows(what: &str, data: &[f32], width: usize) -> Result<usize> {
    if data.len().checked_rem(width) != Some(0) {
        return Err(SaeError::Shape {
            what: what.to_string(),
            expected: width,
            got: data.len(),
        });
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(SaeError::NonFinite {
            what: what.to_string(),
            row: pos / width,
            column: pos % width,
            value: data[pos],
        });
    }
    Ok(data.len() / width)
}

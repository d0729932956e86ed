//! plmscope's stages as library functions with typed inputs and outputs (embed, train, eval,
//! encode, analyze), and the study runner that chains them, skipping every stage whose output
//! is complete and whose inputs and settings are unchanged. The command-line program and the
//! runner both call these functions; nothing here parses command-line flags or draws progress
//! bars (stages report through [`Progress`]).

pub mod analyze;
pub mod describe;
pub mod embed;
pub mod evaluate;
pub mod fingerprint;
pub mod merge;
pub mod presets;
pub mod probe;
pub mod progress;
pub mod runner;
pub mod shard;
pub mod slurm;
pub mod splice;
pub mod study;
mod study_analyze;
mod study_stages;
pub mod train;

pub use progress::{NoProgress, Progress};

/// Writes `bytes` to `path` through a temporary name (fsynced, renamed, folder fsynced), so
/// readers never see half a file.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(plmscope_fsutil::write_atomic(path, bytes)?)
}

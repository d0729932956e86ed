//! plmscope's stages as library functions with typed inputs and outputs (embed, train, eval,
//! encode, analyze, describe, compare, flow...), and the study runner that chains them,
//! skipping every stage whose output is complete and whose inputs and settings are unchanged.
//! The command-line program and the runner both call these functions; nothing here draws
//! progress bars (stages report through [`Progress`]). Requests that are exactly a command's
//! flags derive `clap::Args` with the `cli` feature, so the flags are defined once, here.

pub mod analyze;
pub mod compare;
pub mod describe;
pub mod describe_run;
pub mod embed;
pub mod evaluate;
pub mod fingerprint;
pub mod flow;
pub mod merge;
pub mod model;
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

//! plmscope's stages as library functions with typed inputs and outputs (embed, train, eval,
//! encode, analyze), and the study runner that chains them, skipping every stage whose output
//! is complete and whose inputs and settings are unchanged. The command-line program and the
//! runner both call these functions; nothing here parses command-line flags or draws progress
//! bars (stages report through [`Progress`]).

pub mod analyze;
pub mod embed;
pub mod progress;

pub use progress::{NoProgress, Progress};
pub mod evaluate;
pub mod splice;
pub mod train;

/// Writes `bytes` to `path` through a temporary name, so readers never see half a file.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
pub mod fingerprint;
pub mod presets;
pub mod runner;
pub mod study;
mod study_analyze;
mod study_stages;

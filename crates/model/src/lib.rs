//! ESM2 protein language model: config, alphabet/tokenizer, weight loading (HF safetensors,
//! HF `pytorch_model.bin`, fair-esm `.pt`), hub resolution, random-weight init, and a CPU
//! forward pass that captures chosen sites (residual stream, MLP input/output) per layer.
//!
//! ```no_run
//! use plmscope_model::{alphabet, load_model, CaptureRequest, Site};
//! let (model, info) = load_model("facebook/esm2_t6_8M_UR50D").unwrap();
//! let tokens = alphabet::tokenize("MKTAYIAKQR").unwrap();
//! let request = CaptureRequest { sites: vec![(6, Site::ResidPost)], logits: false };
//! let out = model.forward(&[&tokens], &request).unwrap();
//! assert_eq!(out.sites[&(6, Site::ResidPost)].len(), tokens.len() * 320);
//! # let _ = info;
//! ```

pub mod alphabet;
pub mod batching;
pub mod config;
mod error;
mod esm2;
pub mod hub;
pub mod init;
pub mod kernels;
pub mod splice;
pub mod weights;

pub use config::EsmConfig;
pub use error::ModelError;
pub use esm2::{CaptureRequest, Captured, Esm2, ResidualPatch};
/// The capture sites: one type, defined beside the manifests that record it (the store), so a
/// site captured here is the site a set's manifest names without a conversion.
pub use plmscope_store::Site;

/// Where a model came from, for manifests and `model info`.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// What the user passed (`facebook/esm2_t6_8M_UR50D` or a path).
    pub id: String,
    pub arch: String,
    pub weights_file: std::path::PathBuf,
    pub weights_sha256: String,
    pub parameters: usize,
}

/// Resolves `spec` (local dir/file, or a hub id through the HF cache) and loads the model.
pub fn load_model(spec: &str) -> Result<(Esm2, ModelInfo), ModelError> {
    let path = hub::resolve(spec)?;
    let checkpoint = weights::open_checkpoint(&path)?;
    let info = ModelInfo {
        id: spec.to_string(),
        arch: checkpoint.config.arch_name(),
        weights_file: checkpoint.weights_file.clone(),
        weights_sha256: checkpoint.weights_sha256.clone(),
        parameters: init::parameter_count(&checkpoint.config),
    };
    Ok((Esm2::from_checkpoint(checkpoint)?, info))
}

//! The architecture registry: the `architecture` string of a checkpoint maps to one variant, and
//! each variant's inference rule (`activate_row`) and training rule (`trainer::codes`) sit in
//! their own match arms, so adding one does not touch another (SAELens' registry, as an enum).

use serde::{Deserialize, Serialize};

use crate::error::{Result, SaeError};
use crate::kernels::top_k_positive;

/// How pre-activations become sparse codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Keep the k largest positive pre-activations of each row (Gao et al. 2024; sparsify).
    #[serde(rename = "topk")]
    TopK,
    /// Training: keep the k × rows largest over the whole batch; inference: a learned threshold.
    #[serde(rename = "batchtopk")]
    BatchTopK,
    /// ReLU with an L1 penalty weighted by decoder row norms (SAELens "standard").
    Relu,
    /// ReLU gated by a per-latent threshold, trained with a straight-through estimator.
    #[serde(rename = "jumprelu")]
    JumpRelu,
}

/// What the dictionary maps: a stream onto itself, or one site onto another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Sparse autoencoder: reconstructs its input.
    Sae,
    /// Transcoder: predicts another site (e.g. `mlp_out` from `mlp_in`).
    Transcoder,
    /// Transcoder plus a dense linear skip path `W_skip` [d_out, d_in].
    SkipTranscoder,
}

/// Every registered architecture, in the order error messages list them.
pub const REGISTRY: [Architecture; 4] = [
    Architecture::TopK,
    Architecture::BatchTopK,
    Architecture::Relu,
    Architecture::JumpRelu,
];

impl Architecture {
    /// The registry key, as written in our `cfg.json`.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::TopK => "topk",
            Architecture::BatchTopK => "batchtopk",
            Architecture::Relu => "relu",
            Architecture::JumpRelu => "jumprelu",
        }
    }

    /// Looks an architecture up by our name or SAELens' (`standard` is ReLU).
    pub fn from_name(name: &str) -> Result<Self> {
        let found = REGISTRY.iter().copied().find(|a| a.name() == name);
        found
            .or(if name == "standard" {
                Some(Architecture::Relu)
            } else {
                None
            })
            .ok_or_else(|| SaeError::UnknownArchitecture {
                name: name.to_string(),
                known: REGISTRY
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The name SAELens' loader expects for this architecture and kind, at inference.
    ///
    /// SAELens saves BatchTopK as JumpReLU with the learned threshold, has no TopK transcoder
    /// (we write `topk` plus `d_out`), and calls ReLU SAEs `standard`.
    pub fn saelens_name(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Architecture::TopK, _) => "topk",
            (Architecture::BatchTopK | Architecture::JumpRelu, Kind::Sae) => "jumprelu",
            (Architecture::BatchTopK | Architecture::JumpRelu, _) => "jumprelu_transcoder",
            (Architecture::Relu, Kind::Sae) => "standard",
            (Architecture::Relu, Kind::Transcoder) => "transcoder",
            (Architecture::Relu, Kind::SkipTranscoder) => "skip_transcoder",
        }
    }

    /// Whether inference needs `k`.
    pub fn uses_k(self) -> bool {
        matches!(self, Architecture::TopK | Architecture::BatchTopK)
    }

    /// Whether inference needs the per-latent `threshold` tensor.
    pub fn uses_threshold(self) -> bool {
        matches!(self, Architecture::BatchTopK | Architecture::JumpRelu)
    }

    /// Inference rule for one row of pre-activations: appends the active (index, value) pairs
    /// in increasing index order.
    pub(crate) fn activate_row(
        self,
        pre: &[f32],
        k: usize,
        threshold: Option<&[f32]>,
        scratch: &mut Vec<f32>,
        out_idx: &mut Vec<u32>,
        out_val: &mut Vec<f32>,
    ) {
        match self {
            Architecture::TopK => top_k_positive(pre, None, k, scratch, out_idx, out_val),
            Architecture::Relu => {
                for (j, &v) in pre.iter().enumerate() {
                    if v > 0.0 {
                        out_idx.push(j as u32);
                        out_val.push(v);
                    }
                }
            }
            Architecture::BatchTopK | Architecture::JumpRelu => {
                // Checked at construction: threshold-based architectures carry a threshold.
                let threshold = threshold.unwrap_or(&[]);
                for (j, (&v, &t)) in pre.iter().zip(threshold).enumerate() {
                    if v > t && v > 0.0 {
                        out_idx.push(j as u32);
                        out_val.push(v);
                    }
                }
            }
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

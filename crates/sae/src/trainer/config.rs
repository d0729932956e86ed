//! Training configuration: one struct, serialised into the train state and the checkpoint.

use serde::{Deserialize, Serialize};

use crate::architecture::{Architecture, Kind};
use crate::error::{Result, SaeError};
use crate::trainer::optim::{AdamConfig, Decay, Schedule};

/// How `b_dec` starts, from the first batch's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BDecInit {
    /// Leave it at zero (the seed paper, InterProt, SAELens).
    Zeros,
    /// The batch mean (sparsify).
    Mean,
    /// The geometric median by Weiszfeld iterations (InterPLM, dictionary_learning).
    GeometricMedian,
}

/// Input normalisation applied during training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrainNorm {
    None,
    /// Multiply inputs (and targets) by a constant so the mean of ‖x‖²/d is 1 on the first batch
    /// (E‖x‖² = d, SAELens' and dictionary_learning's convention); folded into the weights at export.
    UnitMeanSquare,
    /// Per-row LayerNorm (unbiased std, eps outside the root), undone after decoding
    /// (InterProt); SAEs only.
    LayerNorm {
        eps: f32,
    },
    /// The seed paper's per-row LayerNorm (biased variance, eps inside the root, 1e-5 there),
    /// undone after decoding: [`crate::InputNorm::BiasedLayerNorm`]; SAEs only.
    BiasedLayerNorm {
        eps: f32,
    },
}

/// When a latent counts as dead (for AuxK and the dead fraction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeadRule {
    /// Silent for `dead_window_rows` rows (sparsify, InterPLM: 10M tokens).
    #[default]
    Rows,
    /// The seed paper's idle-step counter (`_update_neuron_activity_counts` in Rep's
    /// `sparse_auto_script.py`): each step a latent's counter is reset to 0 if it fired on the
    /// batch, then incremented; it is dead while the counter exceeds `steps` (Rep's
    /// `inactive_threshold`: 200 at protein level, 50 at residue level in its README). The
    /// counter is updated before AuxK reads it, as Rep does, so a latent is dead on the step
    /// after `steps` idle steps following a firing; counters start at 0, so a latent that
    /// never fires is dead from step `steps + 1`.
    IdleSteps { steps: u64 },
}

/// How the encoder starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderInit {
    /// `W_enc = W_decᵀ` (OpenAI, sparsify; Rep's `encoder_decoder_init = 1`, `WeightTier`).
    DecoderTranspose,
    /// Drawn independently of the decoder, with the same scale.
    Independent,
}

/// How the decoder's entries are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// Gaussian rows scaled to unit norm (sparsify).
    #[default]
    UnitRows,
    /// Uniform on ±1/√d_sae: torch's default for `nn.Linear(d_sae, d_in)`, whose weight Rep's
    /// `WeightTier` takes as W_enc [d_in, d_sae] and transposes into W_dec.
    LinearUniform,
}

/// Reconstruction loss normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconLoss {
    /// Sum of squared errors over the batch's total variance around its mean (sparsify).
    Fvu,
    /// Mean over all elements of the squared error (`torch.nn.functional.mse_loss`).
    Mse,
}

/// Everything that defines a training run of one dictionary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub architecture: Architecture,
    pub kind: Kind,
    pub d_in: usize,
    pub d_sae: usize,
    pub d_out: usize,
    /// Active latents per row (TopK) or average per row (BatchTopK).
    pub k: usize,
    pub seed: u64,
    pub schedule: Schedule,
    pub adam: AdamConfig,
    /// Keep decoder rows at unit norm, removing the gradient component parallel to each row
    /// before the step (sparsify, InterProt); the seed paper trains without it.
    pub unit_norm_decoder: bool,
    pub b_dec_init: BDecInit,
    pub apply_b_dec_to_input: bool,
    pub input_norm: TrainNorm,
    pub recon_loss: ReconLoss,
    /// AuxK coefficient (1/32 in OpenAI's paper, sparsify, InterPLM); 0 turns AuxK off.
    pub auxk_coefficient: f32,
    /// Latents the AuxK loss uses per row; `None` = d_in / 2.
    pub k_aux: Option<usize>,
    /// A latent that has not fired for this many rows is dead (with [`DeadRule::Rows`]).
    pub dead_window_rows: u64,
    #[serde(default)]
    pub dead_rule: DeadRule,
    /// `None`: the decoder's transpose for SAEs, independent for transcoders.
    #[serde(default)]
    pub encoder_init: Option<EncoderInit>,
    #[serde(default)]
    pub weight_init: WeightInit,
    /// ReLU: L1 coefficient on Σ_j f_j ‖W_dec,j‖, averaged over rows.
    pub l1_coefficient: f32,
    /// JumpReLU: L0 coefficient, threshold at init and kernel bandwidth ε.
    pub l0_coefficient: f32,
    pub jumprelu_init_threshold: f32,
    pub jumprelu_bandwidth: f32,
    /// BatchTopK: the inference threshold is an exponential moving average of the smallest
    /// kept activation per batch, with this momentum.
    pub batchtopk_threshold_momentum: f32,
}

impl TrainConfig {
    /// A TopK SAE with sparsify-like defaults (Adam 2e-4/√(d_sae/2¹⁴), unit-norm decoder,
    /// b_dec = batch mean, AuxK 1/32, FVU loss, 10M-row dead window).
    pub fn topk(d_in: usize, d_sae: usize, k: usize) -> Self {
        let lr = 2e-4 / ((d_sae as f32) / 16384.0).sqrt();
        TrainConfig {
            architecture: Architecture::TopK,
            kind: Kind::Sae,
            d_in,
            d_sae,
            d_out: d_in,
            k,
            seed: 0,
            schedule: Schedule {
                lr,
                warmup_steps: 0,
                decay: Decay::Constant,
                total_steps: 0,
                min_lr_fraction: 0.0,
            },
            adam: AdamConfig::default(),
            unit_norm_decoder: true,
            b_dec_init: BDecInit::Mean,
            apply_b_dec_to_input: true,
            input_norm: TrainNorm::None,
            recon_loss: ReconLoss::Fvu,
            auxk_coefficient: 1.0 / 32.0,
            k_aux: None,
            dead_window_rows: 10_000_000,
            dead_rule: DeadRule::Rows,
            encoder_init: None,
            weight_init: WeightInit::UnitRows,
            l1_coefficient: 0.0,
            l0_coefficient: 0.0,
            jumprelu_init_threshold: 0.001,
            jumprelu_bandwidth: 0.001,
            batchtopk_threshold_momentum: 0.99,
        }
    }

    /// The seed paper's TopK SAE (Gujral et al. 2025; Rep's `sparse_auto_script.py` and the
    /// README's commands): Adam lr 1e-4 constant; encoder = decoder transpose, decoder entries
    /// U(±1/√d_sae), no decoder normalisation; b_dec = 0; per-row LayerNorm with eps inside
    /// the root, undone on decode; MSE loss; AuxK 1/32 with k_aux = d_in/2, scaled by
    /// min(n_dead/k_aux, 1); dead after `idle_steps` idle steps (200 protein, 50 residue).
    ///
    /// Not reproduced: Rep computes its losses after un-normalising (raw space) and its AuxK
    /// residual is not detached; here both are in the normalised space.
    pub fn gujral2025(d_in: usize, d_sae: usize, k: usize, idle_steps: u64) -> Self {
        let mut c = TrainConfig::topk(d_in, d_sae, k);
        c.schedule.lr = 1e-4;
        c.schedule.decay = Decay::Constant;
        c.unit_norm_decoder = false;
        c.b_dec_init = BDecInit::Zeros;
        c.input_norm = TrainNorm::BiasedLayerNorm { eps: 1e-5 };
        c.recon_loss = ReconLoss::Mse;
        c.auxk_coefficient = 1.0 / 32.0;
        c.k_aux = None;
        c.dead_rule = DeadRule::IdleSteps { steps: idle_steps };
        c.encoder_init = Some(EncoderInit::DecoderTranspose);
        c.weight_init = WeightInit::LinearUniform;
        c
    }

    /// The same defaults for another architecture.
    pub fn with_architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = architecture;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(SaeError::Config(m));
        if self.d_in == 0 || self.d_sae == 0 || self.d_out == 0 {
            return fail(format!(
                "dimensions must be positive: d_in {}, d_sae {}, d_out {}",
                self.d_in, self.d_sae, self.d_out
            ));
        }
        if self.architecture.uses_k() && (self.k == 0 || self.k > self.d_sae) {
            return fail(format!(
                "{} needs 0 < k <= d_sae ({}), got {}",
                self.architecture, self.d_sae, self.k
            ));
        }
        if self.kind == Kind::Sae && self.d_out != self.d_in {
            return fail(format!(
                "an SAE has d_out == d_in, got {} and {}",
                self.d_out, self.d_in
            ));
        }
        if self.kind != Kind::Sae && self.apply_b_dec_to_input {
            return fail(
                "transcoders cannot subtract b_dec (output space) from their input".into(),
            );
        }
        if self.kind != Kind::Sae
            && matches!(
                self.input_norm,
                TrainNorm::LayerNorm { .. } | TrainNorm::BiasedLayerNorm { .. }
            )
        {
            return fail("per-row LayerNorm cannot be undone on a transcoder's output".into());
        }
        if self.encoder_init == Some(EncoderInit::DecoderTranspose) && self.d_in != self.d_out {
            return fail(format!(
                "encoder_init decoder_transpose needs d_in == d_out, got {} and {}",
                self.d_in, self.d_out
            ));
        }
        if self.schedule.lr <= 0.0 || !self.schedule.lr.is_finite() {
            return fail(format!(
                "learning rate must be positive, got {}",
                self.schedule.lr
            ));
        }
        if self.architecture == Architecture::JumpRelu
            && !(self.jumprelu_bandwidth > 0.0 && self.jumprelu_init_threshold > 0.0)
        {
            return fail("jumprelu needs positive bandwidth and initial threshold".into());
        }
        Ok(())
    }

    /// Whether a latent with dead counter `c` is dead (rows or Rep's idle steps, per `dead_rule`).
    pub(crate) fn is_dead(&self, c: u64) -> bool {
        match self.dead_rule {
            DeadRule::Rows => c >= self.dead_window_rows,
            DeadRule::IdleSteps { steps } => c > steps,
        }
    }

    /// Nominal AuxK latents per row.
    pub(crate) fn k_aux_nominal(&self) -> usize {
        self.k_aux.unwrap_or(self.d_in / 2).max(1)
    }
}

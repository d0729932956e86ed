//! Training: Adam, schedules, unit-norm decoder with gradient projection, AuxK, dead-latent
//! tracking, and a sparse backward for the TopK family (only active latents get gradients).
//!
//! ```no_run
//! use plmscope_sae::trainer::{InMemoryBatches, TrainConfig, Trainer};
//! # fn main() -> plmscope_sae::Result<()> {
//! # let rows: Vec<f32> = vec![0.0; 320 * 8192];
//! let mut source = InMemoryBatches::new(rows, 320, None, 4096, 7)?;
//! let mut trainer = Trainer::new(TrainConfig::topk(320, 10240, 32))?;
//! trainer.train(&mut source, 1000, |_step, _stats| {})?;
//! let dictionary = trainer.to_dictionary();
//! # Ok(()) }
//! ```

mod batches;
mod config;
mod init;
mod optim;
mod select;
mod state;
mod step;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use batches::{BatchSource, InMemoryBatches, StreamPosition};
pub use config::{BDecInit, DeadRule, EncoderInit, ReconLoss, TrainConfig, TrainNorm, WeightInit};
pub use optim::{AdamConfig, Decay, Schedule};
pub use step::{StepStats, StepTimings};

use crate::architecture::{Architecture, Kind};
use crate::dictionary::{Dictionary, DictionaryMeta, InputNorm, RecordedMetrics};
use crate::error::Result;

/// Trainable tensors, in training layout. `enc_t` is the encoder transposed, [d_sae, d_in]
/// (torch `nn.Linear` layout), so a latent's encoder gradient is one contiguous row.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub enc_t: Vec<f32>,
    pub b_enc: Vec<f32>,
    /// [d_sae, d_out]
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
    /// JumpReLU: log of the per-latent threshold.
    pub log_threshold: Option<Vec<f32>>,
    /// Skip transcoders: [d_out, d_in].
    pub w_skip: Option<Vec<f32>>,
}

impl Params {
    /// Tensors by name, in a fixed order (the order of the train-state file and of Adam).
    pub fn named(&self) -> Vec<(&'static str, &Vec<f32>)> {
        let mut out = vec![
            ("enc_t", &self.enc_t),
            ("b_enc", &self.b_enc),
            ("w_dec", &self.w_dec),
            ("b_dec", &self.b_dec),
        ];
        if let Some(t) = &self.log_threshold {
            out.push(("log_threshold", t));
        }
        if let Some(w) = &self.w_skip {
            out.push(("w_skip", w));
        }
        out
    }

    pub fn named_mut(&mut self) -> Vec<(&'static str, &mut Vec<f32>)> {
        let mut out: Vec<(&'static str, &mut Vec<f32>)> = vec![
            ("enc_t", &mut self.enc_t),
            ("b_enc", &mut self.b_enc),
            ("w_dec", &mut self.w_dec),
            ("b_dec", &mut self.b_dec),
        ];
        if let Some(t) = &mut self.log_threshold {
            out.push(("log_threshold", t));
        }
        if let Some(w) = &mut self.w_skip {
            out.push(("w_skip", w));
        }
        out
    }

    pub(crate) fn zeros_like(&self) -> Params {
        let z = |v: &Vec<f32>| vec![0.0; v.len()];
        Params {
            enc_t: z(&self.enc_t),
            b_enc: z(&self.b_enc),
            w_dec: z(&self.w_dec),
            b_dec: z(&self.b_dec),
            log_threshold: self.log_threshold.as_ref().map(z),
            w_skip: self.w_skip.as_ref().map(z),
        }
    }
}

/// Everything that evolves during training; saved and restored by `save_state`/`load_state`.
pub struct Trainer {
    pub(crate) cfg: TrainConfig,
    pub(crate) params: Params,
    pub(crate) adam_m: Params,
    pub(crate) adam_v: Params,
    pub(crate) steps_done: u64,
    pub(crate) rows_seen: u64,
    /// Dead-latent counters: rows since each latent last fired ([`DeadRule::Rows`]), or Rep's
    /// idle-step counts ([`DeadRule::IdleSteps`]).
    pub(crate) rows_since_fired: Vec<u64>,
    /// Constant input/target scales (`TrainNorm::UnitMeanSquare`), fixed on the first batch.
    pub(crate) scales: Option<(f32, f32)>,
    pub(crate) batch_threshold: Option<f32>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) grads: Params,
    pub(crate) work: step::Workspace,
    pub(crate) last_fvu: Option<f64>,
}

impl Trainer {
    /// A fresh trainer with weights drawn from `cfg.seed`.
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        cfg.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let params = init::initial_params(&cfg, &mut rng);
        Ok(Trainer {
            adam_m: params.zeros_like(),
            adam_v: params.zeros_like(),
            grads: params.zeros_like(),
            rows_since_fired: vec![0; cfg.d_sae],
            params,
            cfg,
            steps_done: 0,
            rows_seen: 0,
            scales: None,
            batch_threshold: None,
            rng,
            work: step::Workspace::default(),
            last_fvu: None,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// Direct access to the weights, e.g. to start from a reference state.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }
    /// Gradients of the last step, as handed to Adam (after the decoder-parallel projection).
    pub fn last_gradients(&self) -> &Params {
        &self.grads
    }
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }
    pub fn rows_seen(&self) -> u64 {
        self.rows_seen
    }
    /// The dead-latent counters (rows, or idle steps under [`DeadRule::IdleSteps`]).
    pub fn rows_since_fired(&self) -> &[u64] {
        &self.rows_since_fired
    }
    /// Overrides the dead-latent counters (tests, or continuing from another tool's state).
    pub fn set_rows_since_fired(&mut self, counters: Vec<u64>) {
        self.rows_since_fired = counters;
    }
    /// Fraction of latents that count as dead under the config's [`DeadRule`].
    pub fn dead_fraction(&self) -> f64 {
        let dead = self
            .rows_since_fired
            .iter()
            .filter(|&&c| self.cfg.is_dead(c))
            .count();
        dead as f64 / self.cfg.d_sae as f64
    }

    /// Runs up to `steps` steps on batches from `source`; stops early when it is exhausted.
    /// Returns the number of steps run.
    pub fn train(
        &mut self,
        source: &mut dyn BatchSource,
        steps: u64,
        mut on_step: impl FnMut(u64, &StepStats),
    ) -> Result<u64> {
        train_many(std::slice::from_mut(self), source, steps, |_, s, st| {
            on_step(s, st)
        })
    }

    /// The inference form, with constant normalisation folded into the weights.
    pub fn to_dictionary(&self) -> Dictionary {
        let c = &self.cfg;
        let (c_in, c_out) = self.scales.unwrap_or((1.0, 1.0));
        let p = &self.params;
        let mut w_enc = vec![0.0f32; c.d_in * c.d_sae];
        for j in 0..c.d_sae {
            for i in 0..c.d_in {
                w_enc[i * c.d_sae + j] = p.enc_t[j * c.d_in + i] * c_in;
            }
        }
        // Trained on (c_in·x, c_out·y): raw output = normalised output / c_out.
        let threshold = match c.architecture {
            Architecture::JumpRelu => p
                .log_threshold
                .as_ref()
                .map(|t| t.iter().map(|v| v.exp()).collect()),
            Architecture::BatchTopK => Some(vec![self.batch_threshold.unwrap_or(0.0); c.d_sae]),
            _ => None,
        };
        let input_norm = match c.input_norm {
            TrainNorm::LayerNorm { eps } => InputNorm::LayerNorm { eps },
            TrainNorm::BiasedLayerNorm { eps } => InputNorm::BiasedLayerNorm { eps },
            _ => InputNorm::None,
        };
        Dictionary {
            architecture: c.architecture,
            kind: c.kind,
            d_in: c.d_in,
            d_sae: c.d_sae,
            d_out: c.d_out,
            k: c.k,
            w_enc,
            b_enc: p.b_enc.clone(),
            w_dec: p.w_dec.iter().map(|v| v / c_out).collect(),
            b_dec: p.b_dec.iter().map(|v| v / c_out).collect(),
            threshold,
            w_skip: p
                .w_skip
                .as_ref()
                .map(|w| w.iter().map(|v| v * c_in / c_out).collect()),
            apply_b_dec_to_input: c.apply_b_dec_to_input,
            input_norm,
            meta: DictionaryMeta {
                normalisation: serde_json::json!({
                    "training": c.input_norm,
                    "folded_input_scale": c_in,
                    "folded_output_scale": c_out,
                }),
                hyperparameters: serde_json::to_value(c).unwrap_or_default(),
                metrics: RecordedMetrics {
                    fvu: self.last_fvu,
                    dead_fraction: Some(self.dead_fraction()),
                    rows_trained: Some(self.rows_seen),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }
}

/// Trains several dictionaries (e.g. k = 16, 32, 64) on one stream of batches in one pass:
/// every trainer sees every batch. All must share d_in, d_out and kind.
pub fn train_many(
    trainers: &mut [Trainer],
    source: &mut dyn BatchSource,
    steps: u64,
    mut on_step: impl FnMut(usize, u64, &StepStats),
) -> Result<u64> {
    let needs_y = trainers.iter().any(|t| t.cfg.kind != Kind::Sae);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for done in 0..steps {
        let more = source.next_batch(&mut x, if needs_y { Some(&mut y) } else { None })?;
        if !more {
            return Ok(done);
        }
        for (i, t) in trainers.iter_mut().enumerate() {
            let stats = t.step(
                &x,
                if t.cfg.kind != Kind::Sae {
                    Some(&y)
                } else {
                    None
                },
            )?;
            on_step(i, t.steps_done, &stats);
        }
    }
    Ok(steps)
}

//! `plmscope train`'s flags (the `cli` feature): declared once, mapped onto a [`TrainRequest`].

use std::path::PathBuf;

use anyhow::Result;
use plmscope_sae::Architecture;

use super::{DictionarySize, Normalize, TrainRequest};
use crate::presets::Preset;

/// Stated in `plmscope train --help`: where the defaults come from.
const TRAIN_DEFAULTS_NOTE: &str = "Defaults follow the papers: residue level k = 32 and \
expansion 32 (InterPLM's 10,240 latents on ESM2-8M); protein level k = 64 and 20,000 latents \
(the seed paper, Gujral et al.). Optimiser and TopK details follow sparsify: Adam \
2e-4/sqrt(latents/2^14), constant; unit-norm decoder rows; b_dec from the first batch's mean; \
AuxK 1/32. Several values of --arch, --k and --expansion train every combination from one \
read of the data.";

/// Train sparse autoencoders (or transcoders, with --target) on an activation set.
#[derive(clap::Args, Debug)]
#[command(after_help = TRAIN_DEFAULTS_NOTE)]
pub struct TrainArgs {
    /// A published setup (architecture, k, latents, lr, normalisation, decoder norm, dead rule,
    /// initialisation): gujral2025-protein, gujral2025-residue, gujral2025-transcoder,
    /// interplm-esm2-8m, interprot-esm2-650m. --k, --latents/--expansion and --lr override it.
    #[arg(long)]
    pub preset: Option<String>,
    /// Activation set (a directory written by `plmscope embed`).
    #[arg(long)]
    pub activations: PathBuf,
    /// Target set for a transcoder (e.g. layerL.mlp_out.residue for --activations
    /// layerL.mlp_in.residue); must hold the same proteins in the same order.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Architectures: topk, batchtopk, relu, jumprelu (comma list: each is trained).
    #[arg(long, value_delimiter = ',', default_value = "topk")]
    pub arch: Vec<String>,
    /// Active latents per row (comma list). Default: 32 at residue level, 64 at protein level.
    #[arg(long, value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Latents per input dimension (comma list). Default: 32 at residue level; at protein
    /// level the default is 20,000 latents (see --latents).
    #[arg(long, value_delimiter = ',', conflicts_with = "latents")]
    pub expansion: Vec<usize>,
    /// Number of latents, instead of --expansion (comma list).
    #[arg(long, value_delimiter = ',')]
    pub latents: Vec<usize>,
    /// Passes over the training proteins (default 1).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<u64>,
    /// Training steps (batches), instead of --epochs; the data cycles as needed.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Learning rate for every dictionary (default: 2e-4/√(latents/2^14)).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Rows per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Fraction of proteins held out for validation (split by protein, seeded).
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    /// Seed of the weights, the split and the row order.
    #[arg(long)]
    pub seed: u64,
    /// Output directory; with several dictionaries one sub-directory each,
    /// named <arch>-k<k>-x<expansion> (or -n<latents>).
    #[arg(long)]
    pub out: PathBuf,
    /// Write a checkpoint (train state, cfg.json, weights) every N steps.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Continue the run in --out from its last checkpoint (same arguments).
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value = "none")]
    pub normalize: Normalize,
    /// Let decoder rows take any norm (the seed paper) instead of keeping them unit norm.
    #[arg(long)]
    pub no_decoder_norm: bool,
    /// L1 coefficient of relu dictionaries.
    #[arg(long, default_value_t = 1e-3)]
    pub l1_coefficient: f32,
    /// L0 coefficient of jumprelu dictionaries.
    #[arg(long, default_value_t = 1e-3)]
    pub l0_coefficient: f32,
    /// Rows shuffled together in RAM (default: 256 MiB worth).
    #[arg(long)]
    pub shuffle_buffer: Option<usize>,
    /// A latent silent for this many rows is dead (AuxK revives it). Default: 10M rows or
    /// one epoch, whichever is smaller.
    #[arg(long)]
    pub dead_window: Option<u64>,
}

impl TrainArgs {
    /// The request these flags ask for, with --preset applied under the flags given.
    pub fn into_request(self) -> Result<TrainRequest> {
        let mut req = TrainRequest::new(self.activations, self.out, self.seed);
        req.target = self.target;
        req.archs = self
            .arch
            .iter()
            .map(|a| Architecture::from_name(a).map_err(|e| anyhow::anyhow!("--arch: {e}")))
            .collect::<Result<_>>()?;
        req.ks = self.k;
        req.sizes = DictionarySize::list(self.latents, self.expansion);
        req.epochs = self.epochs;
        req.steps = self.steps;
        req.lr = self.lr;
        req.batch = self.batch;
        req.val_fraction = self.val_fraction;
        req.checkpoint_every = self.checkpoint_every;
        req.resume = self.resume;
        req.normalize = self.normalize;
        req.decoder_norm = !self.no_decoder_norm;
        req.l1_coefficient = self.l1_coefficient;
        req.l0_coefficient = self.l0_coefficient;
        req.shuffle_buffer = self.shuffle_buffer;
        req.dead_window = self.dead_window;
        if let Some(name) = &self.preset {
            Preset::by_name(name)?.fill_train_request_under(&mut req);
        }
        Ok(req)
    }
}

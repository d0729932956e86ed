//! `plmscope train | eval | encode`: arguments → the pipeline's dictionary stages.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_pipeline::evaluate::{
    encode, encode_part, encode_report, evaluate, EncodeRequest, EvalRequest, SpliceRequest,
};
use plmscope_pipeline::presets::Preset;
use plmscope_pipeline::shard::ShardSpec;
use plmscope_pipeline::train::{train as train_stage, DictionarySize, Normalize, TrainRequest};
use plmscope_sae::Architecture;

use crate::progress::BarProgress;

/// Stated in `plmscope train --help`: where the defaults come from.
const TRAIN_DEFAULTS_NOTE: &str = "Defaults follow the papers: residue level k = 32 and \
expansion 32 (InterPLM's 10,240 latents on ESM2-8M); protein level k = 64 and 20,000 latents \
(the seed paper, Gujral et al.). Optimiser and TopK details follow sparsify: Adam \
2e-4/sqrt(latents/2^14), constant; unit-norm decoder rows; b_dec from the first batch's mean; \
AuxK 1/32. Several values of --arch, --k and --expansion train every combination from one \
read of the data.";

/// Train sparse autoencoders (or transcoders, with --target) on an activation set.
#[derive(Args, Debug)]
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

/// Evaluate a dictionary on an activation set.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub request: EvalRequest,
    /// With --fasta: also run the spliced-in test (residue-level SAEs on resid_post): the
    /// masked-LM cross-entropy of this model with the layer replaced by the reconstruction,
    /// by zeros, and untouched, and the loss recovered.
    #[arg(long, requires = "fasta")]
    pub model: Option<String>,
    /// Proteins for the spliced-in test.
    #[arg(long, requires = "model")]
    pub fasta: Option<PathBuf>,
    /// Proteins used from --fasta (the first N valid ones).
    #[arg(long, default_value_t = 128)]
    pub max_proteins: usize,
    /// Fraction of residues masked per protein (seeded per protein).
    #[arg(long, default_value_t = 0.15)]
    pub mask_fraction: f64,
    #[arg(long, default_value_t = 0)]
    pub mask_seed: u64,
}

/// Encode an activation set into a sparse code set (CSR), shard by shard; rerun to resume.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub request: EncodeRequest,
    /// Encode only part i of N (0-based; `auto/N` takes i from $SLURM_ARRAY_TASK_ID): a
    /// contiguous run of shards balanced by rows, into an unfinished code set with part.json;
    /// `plmscope merge` joins the N parts.
    #[arg(long, value_name = "i/N")]
    pub shard: Option<String>,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let mut req = TrainRequest::new(args.activations, args.out, args.seed);
    req.target = args.target;
    req.archs = args
        .arch
        .iter()
        .map(|a| Architecture::from_name(a).map_err(|e| anyhow::anyhow!("--arch: {e}")))
        .collect::<Result<_>>()?;
    req.ks = args.k;
    req.sizes = DictionarySize::list(args.latents, args.expansion);
    req.epochs = args.epochs;
    req.steps = args.steps;
    req.lr = args.lr;
    req.batch = args.batch;
    req.val_fraction = args.val_fraction;
    req.checkpoint_every = args.checkpoint_every;
    req.resume = args.resume;
    req.normalize = args.normalize;
    req.decoder_norm = !args.no_decoder_norm;
    req.l1_coefficient = args.l1_coefficient;
    req.l0_coefficient = args.l0_coefficient;
    req.shuffle_buffer = args.shuffle_buffer;
    req.dead_window = args.dead_window;
    if let Some(name) = &args.preset {
        Preset::by_name(name)?.fill_train_request_under(&mut req);
    }
    let outcome = train_stage(&req, &BarProgress::new())?;
    if outcome.already_complete {
        println!("{}: training already complete", req.out.display());
    } else {
        print!("{outcome}");
    }
    Ok(())
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let mut req = args.request;
    req.splice = match (args.model, args.fasta) {
        (Some(model), Some(fasta)) => Some(SpliceRequest {
            model,
            fasta,
            max_proteins: args.max_proteins,
            mask_fraction: args.mask_fraction,
            mask_seed: args.mask_seed,
        }),
        _ => None,
    };
    let outcome = evaluate(&req, &BarProgress::new())?;
    println!("{} on {}", req.sae.display(), req.activations.display());
    print!("{outcome}");
    Ok(())
}

pub fn encode_cmd(args: EncodeArgs) -> Result<()> {
    let req = args.request;
    let summary = match args.shard.as_deref().map(ShardSpec::parse).transpose()? {
        Some(part) => encode_part(&req, part, &BarProgress::new())?,
        None => encode(&req, &BarProgress::new())?,
    };
    println!("{}", encode_report(&summary, &req.out));
    Ok(())
}

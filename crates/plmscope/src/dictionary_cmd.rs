//! `plmscope train | eval | encode`: arguments → the pipeline's dictionary stages.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_pipeline::evaluate::{
    encode, encode_part, encode_report, evaluate, EncodeRequest, EvalRequest, SpliceRequest,
};
use plmscope_pipeline::shard::ShardSpec;
use plmscope_pipeline::train::{train as train_stage, TrainArgs};

use crate::progress::BarProgress;

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
    let req = args.into_request()?;
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

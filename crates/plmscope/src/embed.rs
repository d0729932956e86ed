//! `plmscope embed`: arguments → [`plmscope_pipeline::embed`].

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use plmscope_pipeline::embed::{
    embed, embed_part, parse_levels, parse_sites, EmbedRequest, LongPolicy, OnInvalid,
};
use plmscope_pipeline::shard::ShardSpec;
use std::path::PathBuf;

use crate::progress::BarProgress;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Local checkpoint directory/file or hub id (facebook/esm2_t6_8M_UR50D).
    #[arg(long)]
    model: String,
    /// Proteins, FASTA (plain or gzip); UniProt headers give the accession as the id.
    #[arg(long)]
    fasta: PathBuf,
    /// Layers to capture (0 = embeddings, L = output of block L).
    #[arg(long, value_delimiter = ',', required = true)]
    layers: Vec<usize>,
    /// resid_post, mlp_in, mlp_out, block_delta.
    #[arg(long, value_delimiter = ',', default_value = "resid_post")]
    sites: Vec<String>,
    /// residue (every residue) and/or protein (mean over residues).
    #[arg(long, value_delimiter = ',', default_value = "residue,protein")]
    level: Vec<String>,
    /// Output directory; one sub-directory per set, e.g. `layer6.resid_post.protein`.
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Tokens per forward batch (packed, no padding).
    #[arg(long, default_value_t = 8192)]
    token_budget: usize,
    /// Proteins per shard (default: about 64 MB of residue activations per shard).
    #[arg(long)]
    proteins_per_shard: Option<usize>,
    #[arg(long, value_enum, default_value = "error")]
    on_invalid: OnInvalid,
    /// Proteins longer than 1022 residues.
    #[arg(long, value_enum, default_value = "truncate")]
    long: LongPolicy,
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
    /// Embed only part i of N (0-based; `auto/N` takes i from $SLURM_ARRAY_TASK_ID): a
    /// contiguous run of shards balanced by residues, into unfinished sets with part.json;
    /// `plmscope merge` joins the N parts.
    #[arg(long, value_name = "i/N")]
    shard: Option<String>,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    if args.device == Device::Cuda {
        bail!(if cfg!(feature = "cuda") {
            "--device cuda: the CUDA forward pass is not implemented yet; use --device cpu"
        } else {
            "--device cuda: this binary was built without CUDA (cargo build --release --features cuda)"
        });
    }
    let request = EmbedRequest {
        model: args.model,
        fasta: args.fasta,
        layers: args.layers,
        sites: parse_sites(&args.sites).context("--sites")?,
        levels: parse_levels(&args.level).context("--level")?,
        out: args.out,
        dtype: args
            .dtype
            .parse()
            .map_err(|e| anyhow::anyhow!("--dtype {}: {e}", args.dtype))?,
        token_budget: args.token_budget,
        proteins_per_shard: args.proteins_per_shard,
        on_invalid: args.on_invalid,
        long: args.long,
    };
    let outcome = match args.shard.as_deref().map(ShardSpec::parse).transpose()? {
        Some(part) => embed_part(&request, part, &BarProgress::new())?,
        None => embed(&request, &BarProgress::new())?,
    };
    eprintln!("{outcome} under {}", request.out.display());
    Ok(())
}

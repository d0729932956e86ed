//! `plmscope model init|info`: arguments → [`plmscope_pipeline::model`].

use anyhow::Result;
use clap::Subcommand;
use plmscope_pipeline::model::{init_model, model_summary};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Write a random-weight checkpoint in the HF layout (config.json, model.safetensors,
    /// vocab.txt) that HF transformers loads. Same seed, same bytes.
    Init {
        /// esm2_t6_8M, esm2_t12_35M, esm2_t30_150M, esm2_t33_650M, esm2_t36_3B or esm2_t48_15B.
        #[arg(long)]
        arch: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a checkpoint's architecture, parameter count and weights hash.
    Info {
        /// Local directory/file or hub id (facebook/esm2_t6_8M_UR50D).
        model: String,
    },
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Init { arch, seed, out } => println!("{}", init_model(&arch, seed, &out)?),
        ModelCommand::Info { model } => print!("{}", model_summary(&model)?),
    }
    Ok(())
}

//! `plmscope model init|info`.

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use plmscope_model::{config, init, load_model, EsmConfig};
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
        ModelCommand::Init { arch, seed, out } => {
            let config = EsmConfig::for_arch(&arch).ok_or_else(|| {
                let names: Vec<&str> = config::ARCHITECTURES.iter().map(|a| a.0).collect();
                anyhow!("unknown --arch {arch}; choose one of {}", names.join(", "))
            })?;
            init::write_random_checkpoint(&config, seed, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {} ({} parameters, seed {seed}) to {}",
                config.arch_name(),
                init::parameter_count(&config),
                out.display()
            );
        }
        ModelCommand::Info { model } => {
            let (m, info) = load_model(&model)?;
            let c = &m.config;
            println!("model        {}", info.id);
            println!("architecture {}", info.arch);
            println!("layers       {}", c.num_hidden_layers);
            println!("hidden       {}", c.hidden_size);
            println!("heads        {}", c.num_attention_heads);
            println!("intermediate {}", c.intermediate_size);
            println!("parameters   {}", info.parameters);
            println!(
                "lm_head      {}",
                if m.has_lm_head() { "yes" } else { "no" }
            );
            println!("weights      {}", info.weights_file.display());
            println!("sha256       {}", info.weights_sha256);
        }
    }
    Ok(())
}

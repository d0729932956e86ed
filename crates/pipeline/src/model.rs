//! The model commands' work: a random-weight ESM2 checkpoint written by architecture name
//! (`plmscope model init`), and what a checkpoint holds (`plmscope model info`). Weights,
//! configs and the forward pass belong to `plmscope_model`.
//!
//! ```no_run
//! use plmscope_pipeline::model::{init_model, model_summary};
//! # fn main() -> anyhow::Result<()> {
//! println!("{}", init_model("esm2_t6_8M", 0, "models/t6".as_ref())?);
//! print!("{}", model_summary("models/t6")?);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plmscope_model::{config, init, load_model, EsmConfig, ModelInfo};

/// A random-weight checkpoint written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitOutcome {
    /// The architecture's full name, e.g. `esm2_t6_8M`.
    pub arch: String,
    pub parameters: usize,
    pub seed: u64,
    pub out: PathBuf,
}

impl fmt::Display for InitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ({} parameters, seed {}) to {}",
            self.arch,
            self.parameters,
            self.seed,
            self.out.display()
        )
    }
}

/// Writes a random-weight checkpoint of architecture `arch` (`esm2_t6_8M` ... `esm2_t48_15B`)
/// in the HF layout into `out`; the same seed gives the same bytes. An unknown name is refused
/// with the list of known ones.
pub fn init_model(arch: &str, seed: u64, out: &Path) -> Result<InitOutcome> {
    let config = EsmConfig::for_arch(arch).ok_or_else(|| {
        let names: Vec<&str> = config::ARCHITECTURES.iter().map(|a| a.0).collect();
        anyhow!("unknown --arch {arch}; choose one of {}", names.join(", "))
    })?;
    init::write_random_checkpoint(&config, seed, out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(InitOutcome {
        arch: config.arch_name(),
        parameters: init::parameter_count(&config),
        seed,
        out: out.to_path_buf(),
    })
}

/// What a checkpoint holds; displayed, one `name value` line per field.
#[derive(Clone, Debug)]
pub struct ModelSummary {
    pub info: ModelInfo,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    /// Whether the checkpoint has the masked-LM head.
    pub lm_head: bool,
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        writeln!(f, "model        {}", i.id)?;
        writeln!(f, "architecture {}", i.arch)?;
        writeln!(f, "layers       {}", self.layers)?;
        writeln!(f, "hidden       {}", self.hidden)?;
        writeln!(f, "heads        {}", self.heads)?;
        writeln!(f, "intermediate {}", self.intermediate)?;
        writeln!(f, "parameters   {}", i.parameters)?;
        writeln!(
            f,
            "lm_head      {}",
            if self.lm_head { "yes" } else { "no" }
        )?;
        writeln!(f, "weights      {}", i.weights_file.display())?;
        writeln!(f, "sha256       {}", i.weights_sha256)
    }
}

/// Loads `model` (a local directory or file, or a hub id) and sums up what it holds.
pub fn model_summary(model: &str) -> Result<ModelSummary> {
    let (m, info) = load_model(model)?;
    let c = &m.config;
    Ok(ModelSummary {
        layers: c.num_hidden_layers,
        hidden: c.hidden_size,
        heads: c.num_attention_heads,
        intermediate: c.intermediate_size,
        lm_head: m.has_lm_head(),
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches an init that reports another architecture or size than it wrote, an info that
    /// reads the wrong config fields, and an unknown name refused without the list.
    #[test]
    fn init_writes_what_info_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t6");
        let written = init_model("esm2_t6_8M", 3, &out).unwrap();
        assert_eq!(written.arch, "esm2_t6_8M");
        assert_eq!(
            written.to_string(),
            format!(
                "wrote esm2_t6_8M ({} parameters, seed 3) to {}",
                written.parameters,
                out.display()
            )
        );
        let summary = model_summary(out.to_str().unwrap()).unwrap();
        assert_eq!(summary.info.parameters, written.parameters);
        assert_eq!(
            (summary.layers, summary.hidden, summary.heads),
            (6, 320, 20)
        );
        assert_eq!(summary.intermediate, 1280);
        let text = summary.to_string();
        assert!(text.starts_with(&format!("model        {}\n", out.display())));
        assert!(text.contains("\narchitecture esm2_t6_8M\n"), "{text}");
        assert_eq!(text.lines().count(), 10);

        let err = init_model("esm2_t7", 0, &dir.path().join("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown --arch esm2_t7; choose one of esm2_t6_8M, esm2_t12_35M, esm2_t30_150M, \
             esm2_t33_650M, esm2_t36_3B, esm2_t48_15B"
        );
    }
}

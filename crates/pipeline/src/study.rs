//! A study file (TOML): the proteins, the models, what to capture, the dictionaries to train
//! and the analysis, in one place. Paths are relative to the study file. Every section has the
//! command line's defaults, so a study names only what it changes.
//!
//! ```toml
//! name = "quickstart"
//! out = "../runs/quickstart"          # default: runs/<name> beside the study file
//!
//! [[proteins]]                         # several files are concatenated in order
//! fasta = "proteins.fasta"
//! max = 500                            # the first 500 records (default: all)
//!
//! [[models]]
//! name = "t6"
//! init = { arch = "esm2_t6_8M", seed = 0 }   # or: source = "facebook/esm2_t6_8M_UR50D"
//!
//! [embed]
//! layers = [3, 6]
//! sites = ["resid_post"]
//! levels = ["protein", "residue"]
//!
//! [[dictionaries]]
//! name = "topk"
//! level = "protein"
//! k = 32
//! expansion = 8
//! steps = 400
//!
//! [analyze]
//! go = "go-basic.obo"
//! annotations = ["go.csv"]
//! residue_labels = ["tmbed=alpha.fasta"]
//!
//! [describe]                           # optional: LLM descriptions of every atlas
//! provider = "anthropic"               # anthropic | openai | replay (key from the environment)
//! model = "claude-haiku-4-5"
//! sample = 200                         # units per kind; also: base_url, units, seed,
//! max_cost = 5.0                       # protocol, concurrency, preset, replay_log, price_table
//!
//! [slurm]                              # optional: the jobs of `plmscope slurm` (see slurm.rs)
//! partition = "cpu"                    # also account, time, cpus, mem, gpus, extra, shards,
//! shards = 8                           # setup, plmscope; per job kind in [slurm.embed] etc.
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The whole study, as read from its file (paths already resolved against the file's folder).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    pub name: String,
    /// Output folder (default: `runs/<name>` beside the study file).
    pub out: Option<PathBuf>,
    /// A published setup whose settings fill in what the study leaves out
    /// ([`crate::presets`]).
    pub preset: Option<String>,
    pub proteins: Vec<ProteinSource>,
    pub models: Vec<ModelSpec>,
    pub embed: EmbedSection,
    #[serde(default)]
    pub dictionaries: Vec<DictionarySpec>,
    pub analyze: Option<AnalyzeSection>,
    /// LLM descriptions of every atlas, after each analyze stage (needs `[analyze]`).
    pub describe: Option<crate::describe::DescribeSection>,
    /// Resources of the Slurm jobs `plmscope slurm` writes ([`crate::slurm::SlurmSection`]);
    /// `plmscope run` ignores it.
    pub slurm: Option<crate::slurm::SlurmSection>,
}

/// One FASTA input.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProteinSource {
    pub fasta: PathBuf,
    /// Keep only the first `max` records of this file.
    pub max: Option<usize>,
    /// `fasta` (default) or `tmbed` (TMbed's 3-line records: header, sequence, labels).
    #[serde(default)]
    pub format: ProteinFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProteinFormat {
    #[default]
    Fasta,
    Tmbed,
}

/// A model: a hub id or local checkpoint (`source`), or a random-weight checkpoint of a real
/// architecture that the study writes itself (`init`, for offline runs and tests).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub source: Option<String>,
    pub init: Option<ModelInit>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInit {
    pub arch: String,
    #[serde(default)]
    pub seed: u64,
}

fn default_sites() -> Vec<String> {
    vec!["resid_post".into()]
}
fn default_levels() -> Vec<String> {
    vec!["protein".into(), "residue".into()]
}
fn default_dtype() -> String {
    "f32".into()
}
fn default_token_budget() -> usize {
    8192
}
fn default_long() -> String {
    "truncate".into()
}
fn default_on_invalid() -> String {
    "error".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSection {
    pub layers: Vec<usize>,
    #[serde(default = "default_sites")]
    pub sites: Vec<String>,
    #[serde(default = "default_levels")]
    pub levels: Vec<String>,
    #[serde(default = "default_dtype")]
    pub dtype: String,
    #[serde(default = "default_token_budget")]
    pub token_budget: usize,
    pub proteins_per_shard: Option<usize>,
    #[serde(default = "default_long")]
    pub long: String,
    #[serde(default = "default_on_invalid")]
    pub on_invalid: String,
}

fn default_arch() -> String {
    "topk".into()
}
fn default_batch() -> usize {
    4096
}
fn default_val_fraction() -> f64 {
    0.05
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_normalize() -> String {
    "none".into()
}

/// One dictionary, trained on every embedded layer (or `layers`) at one site and level.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictionarySpec {
    pub name: String,
    pub level: String,
    #[serde(default = "default_site")]
    pub site: String,
    /// Default: every layer of `[embed]`.
    pub layers: Option<Vec<usize>>,
    #[serde(default = "default_arch")]
    pub arch: String,
    pub k: Option<usize>,
    pub expansion: Option<usize>,
    pub latents: Option<usize>,
    pub steps: Option<u64>,
    pub epochs: Option<u64>,
    pub lr: Option<f32>,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    #[serde(default = "default_normalize")]
    pub normalize: String,
    #[serde(default = "default_true")]
    pub decoder_norm: bool,
    pub l1_coefficient: Option<f32>,
    pub dead_window: Option<u64>,
    /// A training preset for this dictionary alone (default: the study's).
    pub preset: Option<String>,
    /// Train a transcoder from this set at layer L to `target_site` at layer L + 1 (e.g.
    /// `block_delta`, the seed paper's inter-layer transcoder). Both must be embedded.
    pub target_site: Option<String>,
}

fn default_site() -> String {
    "resid_post".into()
}

fn default_namespaces() -> Vec<String> {
    vec!["BP".into(), "MF".into(), "CC".into()]
}

/// The analysis of every encoded set (features) against the set's own dimensions (neurons).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeSection {
    pub go: Option<PathBuf>,
    #[serde(default)]
    pub annotations: Vec<PathBuf>,
    #[serde(default)]
    pub gaf: Vec<PathBuf>,
    /// `KIND=FILE`, as `plmscope analyze --residue-labels`.
    #[serde(default)]
    pub residue_labels: Vec<String>,
    #[serde(default = "default_namespaces")]
    pub namespaces: Vec<String>,
    pub min_term_size: Option<u32>,
    pub max_term_size: Option<u32>,
    /// `bh` or `bonferroni`.
    pub correction: Option<String>,
    pub alpha: Option<f64>,
    pub foreground: Option<String>,
    pub neuron_foreground: Option<String>,
    /// Analyse the model's neurons as a baseline in the same atlas.
    #[serde(default = "default_true")]
    pub neurons: bool,
    /// Also export every atlas table as TSV beside the atlas.
    #[serde(default)]
    pub tsv: bool,
}

impl Study {
    /// Reads and checks a study file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Study> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading study file {}", path.display()))?;
        let mut study: Study = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', "\n  ")
            )
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        study.resolve_paths(base);
        if study.out.is_none() {
            study.out = Some(base.join("runs").join(&study.name));
        }
        study
            .check()
            .with_context(|| format!("study file {}", path.display()))?;
        Ok(study)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(out) = &mut self.out {
            fix(out);
        }
        self.proteins.iter_mut().for_each(|p| fix(&mut p.fasta));
        for m in &mut self.models {
            // A source that exists relative to the study file is a local path; anything
            // else (a hub id such as facebook/esm2_t6_8M_UR50D) is left as written.
            if let Some(source) = &m.source {
                let local = base.join(source);
                if Path::new(source).is_relative() && local.exists() {
                    m.source = Some(local.display().to_string());
                }
            }
        }
        if let Some(d) = &mut self.describe {
            d.replay_log.iter_mut().for_each(fix);
            d.price_table.iter_mut().for_each(fix);
        }
        if let Some(a) = &mut self.analyze {
            if let Some(go) = &mut a.go {
                fix(go);
            }
            a.annotations.iter_mut().for_each(fix);
            a.gaf.iter_mut().for_each(fix);
            for label in &mut a.residue_labels {
                if let Some((kind, file)) = label.split_once('=') {
                    let mut p = PathBuf::from(file);
                    fix(&mut p);
                    *label = format!("{kind}={}", p.display());
                }
            }
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(d) = &self.describe {
            if self.analyze.is_none() {
                bail!("[describe] describes the atlases that [analyze] writes: add an [analyze] section");
            }
            d.options().context("[describe]")?;
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "name {:?}: use letters, digits, '-', '_' and '.'",
                self.name
            );
        }
        if self.proteins.is_empty() {
            bail!("no [[proteins]]: give at least one FASTA file");
        }
        if self.models.is_empty() {
            bail!("no [[models]]: give at least one model (source = ... or init = ...)");
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &self.models {
            if m.source.is_some() == m.init.is_some() {
                bail!(
                    "model {}: give exactly one of source = \"hub id or path\" and init = {{ arch = ..., seed = ... }}",
                    m.name
                );
            }
            if !names.insert(&m.name) {
                bail!("two models are named {}", m.name);
            }
        }
        if self.embed.layers.is_empty() {
            bail!("[embed] layers is empty");
        }
        let mut names = std::collections::BTreeSet::new();
        for d in &self.dictionaries {
            if !names.insert(&d.name) {
                bail!("two dictionaries are named {}", d.name);
            }
            if !self.embed.levels.contains(&d.level) {
                bail!(
                    "dictionary {}: level {} is not embedded ([embed] levels = {:?})",
                    d.name,
                    d.level,
                    self.embed.levels
                );
            }
            if !self.embed.sites.contains(&d.site) {
                bail!(
                    "dictionary {}: site {} is not embedded ([embed] sites = {:?})",
                    d.name,
                    d.site,
                    self.embed.sites
                );
            }
            for layer in d.layers.iter().flatten() {
                if !self.embed.layers.contains(layer) {
                    bail!(
                        "dictionary {}: layer {layer} is not embedded ([embed] layers = {:?})",
                        d.name,
                        self.embed.layers
                    );
                }
            }
            if d.expansion.is_some() && d.latents.is_some() {
                bail!("dictionary {}: give expansion or latents, not both", d.name);
            }
        }
        Ok(())
    }

    /// The output folder.
    pub fn out_dir(&self) -> &Path {
        self.out.as_deref().expect("set by load")
    }
}

//! Descriptions of units in words, written by a language model, and their scores: the seed
//! paper's protocol (Gujral et al., PNAS 2025) over an atlas that `analyze` wrote.
//!
//! Per unit: min-max scale its per-protein activations, sample proteins across the activation
//! range ([`sampling`]), ask the model for a one-sentence description from the annotations of
//! half of them ([`prompts`]), ask it to predict the scaled activation of the other half from
//! the description, and score the description by Pearson's r of prediction against truth
//! ([`stats`]). Units are drawn in a seeded random order per kind (features, neurons).
//!
//! Before [`describe`] the atlas needs per-protein activations ([`write_protein_activations`],
//! at analyze time) and, for useful prompts, protein names, genes and GO terms
//! ([`write_protein_info`] with [`protein_info_from_fasta`] / [`protein_info_from_annotations`]).
//!
//! ```no_run
//! use plmscope_interpret::describe::{describe, DescribeOptions, ProviderKind, ProviderOptions};
//! let options = DescribeOptions::new(ProviderOptions::new(ProviderKind::Anthropic, "claude-sonnet-4-5"));
//! let summary = describe("atlas.sqlite".as_ref(), &options, &mut |event| eprintln!("{event:?}"))?;
//! println!("spent ${:.2}", summary.spent_usd);
//! # Ok::<(), plmscope_interpret::describe::DescribeError>(())
//! ```

pub mod delphi;
pub mod error;
pub mod figures;
pub mod log;
pub mod metadata;
mod plan;
pub mod pooled;
pub mod prompts;
pub mod provider;
pub mod rescore;
mod run;
pub mod sampling;
pub mod stats;
pub mod store;
mod unit;
pub mod unit_prompts;

use std::path::{Path, PathBuf};

pub use error::{DescribeError, DescribeResult};
pub use figures::{description_stats, DescriptionStats, KindStats};
pub use metadata::{
    parse_uniprot_header, protein_info_from_annotations, protein_info_from_fasta,
    write_protein_info, ProteinInfo, UniprotHeader,
};
pub use pooled::write_protein_activations;
pub use provider::{Price, ProviderKind, ProviderOptions, Retry};
pub use rescore::{rescore, RescoreFilter, RescoreSummary};
pub use run::describe;
pub use sampling::SeedSampling;
pub use unit_prompts::{unit_prompts, UnitPrompts};

/// The protocol name stored with each description.
pub const GUJRAL2025: &str = "gujral2025";

/// Which description protocol a run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The seed paper's: per-protein activations, a Pearson score ([`GUJRAL2025`]).
    #[default]
    Gujral2025,
    /// delphi's: residue windows, detection and fuzzing scores ([`delphi::DELPHI`]).
    Delphi,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Gujral2025 => GUJRAL2025,
            Protocol::Delphi => delphi::DELPHI,
        }
    }
}

/// Which units to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSelection {
    Features,
    Neurons,
    Both,
}

impl UnitSelection {
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            UnitSelection::Features => &["feature"],
            UnitSelection::Neurons => &["neuron"],
            UnitSelection::Both => &["feature", "neuron"],
        }
    }
}

/// Every choice of a describe run.
#[derive(Debug, Clone)]
pub struct DescribeOptions {
    pub provider: ProviderOptions,
    pub units: UnitSelection,
    /// Units per kind (the seed: 200 features, and as many neurons).
    pub sample: usize,
    /// Seeds the unit order and every unit's protein sample.
    pub seed: u64,
    pub sampling: SeedSampling,
    /// Show sequences in prompts (the seed's option; off by default, prompts get long).
    pub include_sequence: bool,
    /// Stop before the spend could pass this many US dollars.
    pub max_cost: Option<f64>,
    /// Units described at once.
    pub concurrency: usize,
    /// Report units, prompts and the estimated cost; call nothing, write nothing.
    pub dry_run: bool,
    /// Ask again for units recorded as failed (otherwise a rerun skips them).
    pub retry_failed: bool,
    /// The JSONL call log (and cache); default `<atlas stem>.descriptions.jsonl` beside it.
    pub log_path: Option<PathBuf>,
    /// The seed paper's protocol (default) or delphi's residue-level one.
    pub protocol: Protocol,
    /// delphi's counts, used with [`Protocol::Delphi`].
    pub delphi: delphi::DelphiOptions,
}

impl DescribeOptions {
    pub fn new(provider: ProviderOptions) -> Self {
        DescribeOptions {
            provider,
            units: UnitSelection::Both,
            sample: 200,
            seed: 42,
            sampling: SeedSampling::default(),
            include_sequence: false,
            max_cost: None,
            concurrency: 4,
            dry_run: false,
            retry_failed: false,
            log_path: None,
            protocol: Protocol::Gujral2025,
            delphi: delphi::DelphiOptions::default(),
        }
    }

    /// The log path for `atlas`.
    pub fn log_path_for(&self, atlas: &Path) -> PathBuf {
        self.log_path.clone().unwrap_or_else(|| {
            let stem = atlas
                .file_stem()
                .map_or_else(|| "atlas".to_string(), |s| s.to_string_lossy().into_owned());
            atlas.with_file_name(format!("{stem}.descriptions.jsonl"))
        })
    }
}

/// What happened, as it happens (for a progress bar and logs).
#[derive(Debug, Clone, PartialEq)]
pub enum DescribeEvent {
    /// The units of one kind were chosen.
    Planned { kind: String, counts: KindCounts },
    /// Dry run: a unit's explain prompt.
    Prompt {
        unit: u32,
        label: String,
        prompt: String,
    },
    /// A call is retried after `retry.wait`.
    Retrying { unit: u32, retry: Retry },
    /// A unit is finished (described or recorded failed).
    UnitDone {
        unit: u32,
        label: String,
        done: usize,
        total: usize,
        pearson: Option<f64>,
        error: Option<String>,
        spent_usd: f64,
    },
    /// The next call could pass `max_cost`: no new call starts.
    BudgetReached { spent_usd: f64, max_cost: f64 },
}

/// Per kind: how the sample came about and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindCounts {
    /// Units to describe in this run.
    pub selected: usize,
    /// Units of the draw described (or recorded failed) by an earlier run.
    pub already_done: usize,
    /// Units passed over for fewer active proteins than the protocol needs.
    pub too_few_active: usize,
    /// Units passed over for fewer inactive proteins than the protocol needs.
    pub too_few_inactive: usize,
    pub dead: usize,
    pub described: usize,
    pub failed: usize,
    /// Selected but not finished (budget reached or the run stopped).
    pub not_finished: usize,
}

/// The result of [`describe`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DescribeSummary {
    pub features: Option<KindCounts>,
    pub neurons: Option<KindCounts>,
    pub spent_usd: f64,
    /// Dry run: the estimated cost of the selected units.
    pub estimated_cost_usd: Option<f64>,
    /// Dry run: prompt tokens (characters / 4) and the reply-token budget of every call the
    /// selected units would make. Set by the delphi protocol; the seed protocol's estimate is
    /// made by the caller from its prompt files.
    pub estimated_tokens: Option<(u64, u64)>,
    pub stopped_by_budget: bool,
    pub log: PathBuf,
}

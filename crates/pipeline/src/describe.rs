//! The describe and score stages: LLM descriptions of an atlas's units and their scores
//! (`plmscope describe`, `plmscope score`, and the `[describe]` section of a study). The
//! protocol, calls, cache and atlas tables belong to `plmscope_interpret::describe`; this
//! module turns settings (a study section or command-line flags) into its options, adds the
//! dry-run estimate and the prompt files, and words the summary.
//!
//! ```no_run
//! use plmscope_pipeline::describe::{describe_atlas, DescribeSection};
//! # fn main() -> anyhow::Result<()> {
//! let section: DescribeSection = toml::from_str("provider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"")?;
//! let (options, protocol) = section.options()?;
//! let outcome = describe_atlas("atlas.sqlite".as_ref(), &options, protocol, None, &mut |_| {})?;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_interpret::describe::{
    description_stats, rescore, unit_prompts, DescribeEvent, DescribeOptions, DescribeSummary,
    DescriptionStats, KindCounts, Price, ProviderKind, ProviderOptions, RescoreFilter,
    RescoreSummary, UnitSelection,
};
use serde::{Deserialize, Serialize};

pub use plmscope_interpret::describe::Protocol;

use crate::analyze::write_description_rows;

/// The description protocol by name: `gujral2025` (the seed paper's, per protein, Pearson r)
/// or `delphi` (residue windows, detection and fuzzing scores).
pub fn parse_protocol(s: &str) -> Result<Protocol> {
    match s {
        "gujral2025" => Ok(Protocol::Gujral2025),
        "delphi" => Ok(Protocol::Delphi),
        other => bail!("unknown protocol {other:?}: use gujral2025 or delphi"),
    }
}

/// The text a predict prompt shows where the model's description goes, in dry runs and prompt
/// files (a real run puts the explain reply there).
pub const DESCRIPTION_PLACEHOLDER: &str =
    "<the one-sentence description the model gave in reply to the explain prompt>";

/// The settings of a describe run: a study's `[describe]` section, and what the command line
/// fills in. `None` takes the preset's value, else the library default (200 units per kind,
/// seed 42, both kinds, 4 at once, no cost limit).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeSection {
    /// `anthropic`, `openai` (and any OpenAI-compatible server) or `replay`.
    pub provider: String,
    pub model: String,
    /// API root, e.g. `http://localhost:8000/v1` for vLLM, llama.cpp or Ollama.
    pub base_url: Option<String>,
    /// `features`, `neurons` or `both`.
    pub units: Option<String>,
    /// Units per kind.
    pub sample: Option<usize>,
    pub seed: Option<u64>,
    /// `gujral2025` or `delphi`.
    pub protocol: Option<String>,
    /// Stop before the spend could pass this many US dollars.
    pub max_cost: Option<f64>,
    pub concurrency: Option<usize>,
    /// A preset of `crate::presets` (gujral2025-* → the seed paper's protocol and sample).
    pub preset: Option<String>,
    /// `replay`: the JSONL log of an earlier run to answer from.
    pub replay_log: Option<PathBuf>,
    /// A TOML price table (`[models] "prefix" = { input = USD, output = USD }` per million
    /// tokens) overriding the built-in one.
    pub price_table: Option<PathBuf>,
    /// Ask again for units recorded as failed.
    #[serde(default)]
    pub retry_failed: bool,
}

/// What a preset implies for descriptions: the protocol and the sample per kind.
pub fn preset_protocol(name: &str) -> Result<(Protocol, usize)> {
    crate::presets::Preset::by_name(name)?;
    Ok(if name.starts_with("gujral2025") {
        // The seed describes 200 features per dictionary and the same number of neurons.
        (Protocol::Gujral2025, 200)
    } else {
        // InterPLM and InterProt describe residue-level features from residue windows.
        (Protocol::Delphi, 200)
    })
}

/// Whether this build has the residue-level (delphi) protocol.
pub fn delphi_available() -> bool {
    true
}

impl DescribeSection {
    /// The library options and the protocol; refuses unknown names before any call.
    pub fn options(&self) -> Result<(DescribeOptions, Protocol)> {
        let kind: ProviderKind = self
            .provider
            .parse()
            .map_err(|e| anyhow::anyhow!("provider: {e}"))?;
        if self.model.trim().is_empty() {
            bail!("no model: name the model (e.g. claude-haiku-4-5, gpt-4o-mini, or the local server's model)");
        }
        let mut provider = ProviderOptions::new(kind, self.model.clone());
        provider.base_url = self.base_url.clone();
        provider.replay_log = self.replay_log.clone();
        if kind == ProviderKind::Replay && self.replay_log.is_none() {
            bail!("provider replay answers from the JSONL log of an earlier run: give its path (replay_log / --replay-log)");
        }
        if let Some(path) = &self.price_table {
            let table = read_price_table(path)?;
            provider.price = price_for(&table, &self.model);
            if provider.price.is_none() && self.max_cost.is_some() {
                bail!(
                    "{}: no price for model {} (and max_cost needs one): add a line `\"{}\" = {{ input = USD, output = USD }}` under [models]",
                    path.display(),
                    self.model,
                    self.model
                );
            }
        }
        let mut options = DescribeOptions::new(provider);
        let mut protocol = Protocol::Gujral2025;
        if let Some(preset) = &self.preset {
            let (p, sample) = preset_protocol(preset)?;
            protocol = p;
            options.sample = sample;
        }
        if let Some(p) = &self.protocol {
            protocol = parse_protocol(p)?;
        }
        if protocol == Protocol::Delphi && !delphi_available() {
            bail!(
                "protocol delphi (residue windows, detection and fuzzing scores){} is not yet available in this build; use --protocol gujral2025 (the seed paper's protocol, residue units pooled per protein)",
                self.preset
                    .as_deref()
                    .map_or(String::new(), |p| format!(", implied by preset {p},"))
            );
        }
        options.units = match self.units.as_deref() {
            None | Some("both") => UnitSelection::Both,
            Some("features") => UnitSelection::Features,
            Some("neurons") => UnitSelection::Neurons,
            Some(other) => bail!("units {other:?}: use features, neurons or both"),
        };
        if let Some(n) = self.sample {
            options.sample = n;
        }
        if let Some(s) = self.seed {
            options.seed = s;
        }
        options.max_cost = self.max_cost;
        if let Some(c) = self.concurrency {
            options.concurrency = c;
        }
        options.retry_failed = self.retry_failed;
        options.protocol = protocol;
        if options.sample == 0 || options.concurrency == 0 {
            bail!("sample and concurrency must be at least 1");
        }
        if options.max_cost.is_some()
            && options.provider.price().is_none()
            && options.provider.base_url.is_some()
        {
            bail!(
                "no list price known for model {:?} at {}: give a price table (--price-table) to use max_cost",
                self.model,
                options.provider.base_url.as_deref().unwrap_or("")
            );
        }
        Ok((options, protocol))
    }

    /// What the stage hash covers: everything that changes what is written (not the
    /// concurrency, not the key).
    pub fn hashed_settings(&self) -> serde_json::Value {
        let mut value = crate::runner::settings_of(self);
        if let Some(o) = value.as_object_mut() {
            o.remove("concurrency");
        }
        value
    }
}

/// Reads a TOML price table: `[models]` with `"model prefix" = { input = USD, output = USD }`
/// per million tokens.
pub fn read_price_table(path: &Path) -> Result<Vec<(String, Price)>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        input: f64,
        output: f64,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        models: std::collections::BTreeMap<String, Entry>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading price table {}", path.display()))?;
    let table: Table = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}; write `[models]` then one line per model: \"claude-haiku-4-5\" = {{ input = 1.0, output = 5.0 }} (USD per million tokens)",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let mut prices = Vec::new();
    for (model, entry) in table.models {
        if !(entry.input >= 0.0 && entry.output >= 0.0) {
            bail!(
                "{}: model {model}: prices must be numbers >= 0",
                path.display()
            );
        }
        prices.push((
            model,
            Price {
                input_per_mtok: entry.input,
                output_per_mtok: entry.output,
            },
        ));
    }
    Ok(prices)
}

/// The price of `model`: the entry with the longest prefix of its name.
pub fn price_for(table: &[(String, Price)], model: &str) -> Option<Price> {
    table
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, price)| *price)
}

/// A dry run's estimate.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub units: usize,
    /// Prompt tokens, counted as characters / 4.
    pub input_tokens: u64,
    /// Reply tokens at their budget: 150 for the sentence, 8 per predicted number (delphi: 100
    /// per detection or fuzzing prompt).
    pub output_tokens: u64,
    pub price: Option<Price>,
    pub cost_usd: Option<f64>,
}

/// What [`describe_atlas`] did.
#[derive(Clone, Debug, Serialize)]
pub struct DescribeOutcome {
    pub atlas: PathBuf,
    pub protocol: String,
    pub provider: String,
    pub model: String,
    pub summary: DescribeSummary,
    /// Dry run: tokens and cost.
    pub estimate: Option<Estimate>,
    /// Prompt files written (`--prompts-dir`).
    pub prompt_files: Vec<PathBuf>,
    /// The atlas's descriptions afterwards, per protocol, provider and model.
    #[serde(skip)]
    pub descriptions: Vec<DescriptionStats>,
}

/// Describes the units of `atlas` (see the module documentation); with `prompts_dir`, writes
/// each selected unit's explain and predict prompts there as text files.
pub fn describe_atlas(
    atlas: &Path,
    options: &DescribeOptions,
    protocol: Protocol,
    prompts_dir: Option<&Path>,
    on_event: &mut dyn FnMut(&DescribeEvent),
) -> Result<DescribeOutcome> {
    if protocol != options.protocol {
        bail!(
            "protocol {} asked for, but the options say {}",
            protocol.as_str(),
            options.protocol.as_str()
        );
    }
    if prompts_dir.is_some() && protocol != Protocol::Gujral2025 {
        bail!(
            "--prompts-dir writes the seed protocol's explain and predict prompts; with \
             --protocol {} use --dry-run --show-prompts to see every explain prompt",
            protocol.as_str()
        );
    }
    let mut units: Vec<u32> = Vec::new();
    let summary = plmscope_interpret::describe::describe(atlas, options, &mut |event| {
        if let DescribeEvent::Prompt { unit, .. } = event {
            units.push(*unit);
        }
        on_event(event);
    })
    .with_context(|| format!("describing {}", atlas.display()))?;
    let mut estimate = None;
    let mut prompt_files = Vec::new();
    let seed_protocol = protocol == Protocol::Gujral2025;
    if options.dry_run && seed_protocol {
        let prompts = unit_prompts(atlas, options, &units, DESCRIPTION_PLACEHOLDER)?;
        let price = options.provider.price();
        let mut e = Estimate {
            units: prompts.len(),
            price,
            ..Estimate::default()
        };
        for p in &prompts {
            e.input_tokens += (p.explain.len() + p.predict.len()) as u64 / 4;
            e.output_tokens += 150 + 8 * p.n_held_out as u64;
        }
        e.cost_usd = price.map(|p| p.cost(e.input_tokens, e.output_tokens));
        estimate = Some(e);
        if let Some(dir) = prompts_dir {
            prompt_files = write_prompt_files(atlas, dir, &prompts)?;
        }
    } else if options.dry_run {
        // delphi: the interpret side counted every explain, detection and fuzzing prompt.
        let (input_tokens, output_tokens) = summary.estimated_tokens.unwrap_or_default();
        estimate = Some(Estimate {
            units: units.len(),
            input_tokens,
            output_tokens,
            price: options.provider.price(),
            cost_usd: summary.estimated_cost_usd,
        });
    } else if let (Some(dir), true) = (prompts_dir, seed_protocol) {
        let prompts = unit_prompts(atlas, options, &units, DESCRIPTION_PLACEHOLDER)?;
        prompt_files = write_prompt_files(atlas, dir, &prompts)?;
    }
    let descriptions = description_stats(atlas)?;
    Ok(DescribeOutcome {
        atlas: atlas.to_path_buf(),
        protocol: protocol.as_str().to_string(),
        provider: options.provider.kind.as_str().to_string(),
        model: options.provider.model.clone(),
        summary,
        estimate,
        prompt_files,
        descriptions,
    })
}

fn write_prompt_files(
    atlas: &Path,
    dir: &Path,
    prompts: &[plmscope_interpret::describe::UnitPrompts],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = atlas
        .file_stem()
        .map_or_else(|| "atlas".into(), |s| s.to_string_lossy().into_owned());
    let mut files = Vec::new();
    for p in prompts {
        for (step, text) in [("explain", &p.explain), ("score", &p.predict)] {
            let path = dir.join(format!("{stem}.{}_{}.{step}.txt", p.kind, p.index));
            plmscope_fsutil::write_atomic(&path, format!("{text}\n").as_bytes())?;
            files.push(path);
        }
    }
    Ok(files)
}

fn counts_line(f: &mut fmt::Formatter<'_>, kind: &str, c: &KindCounts) -> fmt::Result {
    writeln!(
        f,
        "{kind}: {} selected, {} described, {} failed, {} not finished; {} done before; \
         passed over: {} too few active, {} too few inactive, {} dead",
        c.selected,
        c.described,
        c.failed,
        c.not_finished,
        c.already_done,
        c.too_few_active,
        c.too_few_inactive,
        c.dead
    )
}

impl fmt::Display for DescribeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "atlas: {}\nprotocol {}, {} {}",
            self.atlas.display(),
            self.protocol,
            self.provider,
            self.model
        )?;
        if let Some(c) = &s.features {
            counts_line(f, "features", c)?;
        }
        if let Some(c) = &s.neurons {
            counts_line(f, "neurons", c)?;
        }
        if let Some(e) = &self.estimate {
            writeln!(
                f,
                "dry run, nothing called: {} units, about {} input and at most {} output tokens",
                e.units, e.input_tokens, e.output_tokens
            )?;
            match (e.price, e.cost_usd) {
                (Some(p), Some(c)) => writeln!(
                    f,
                    "estimated cost: ${c:.4} at ${} / ${} per million input / output tokens",
                    p.input_per_mtok, p.output_per_mtok
                )?,
                _ => writeln!(
                    f,
                    "estimated cost: unknown (no list price for this model; give --price-table)"
                )?,
            }
        } else {
            writeln!(f, "spent: ${:.4}", s.spent_usd)?;
            if s.stopped_by_budget {
                writeln!(
                    f,
                    "stopped before passing --max-cost; rerun with a higher limit to go on"
                )?;
            }
            writeln!(f, "log: {}", s.log.display())?;
        }
        if !self.prompt_files.is_empty() {
            let dirs: BTreeSet<String> = self
                .prompt_files
                .iter()
                .filter_map(|p| p.parent().map(|d| d.display().to_string()))
                .collect();
            writeln!(
                f,
                "wrote {} prompt files to {}",
                self.prompt_files.len(),
                dirs.into_iter().collect::<Vec<_>>().join(", ")
            )?;
        }
        if !self.descriptions.is_empty() {
            writeln!(f, "{:<48}{:>10}{:>10}", "", "features", "neurons")?;
            write_description_rows(f, &self.descriptions)?;
        }
        Ok(())
    }
}

/// What [`score_atlas`] did.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreOutcome {
    pub atlas: PathBuf,
    pub scorer_provider: String,
    pub scorer_model: String,
    pub summary: RescoreSummary,
}

/// Scores the atlas's descriptions again with `options.provider` (see
/// `plmscope_interpret::describe::rescore`).
pub fn score_atlas(
    atlas: &Path,
    options: &DescribeOptions,
    filter: &RescoreFilter,
    on_event: &mut dyn FnMut(&DescribeEvent),
) -> Result<ScoreOutcome> {
    let summary = rescore(atlas, options, filter, on_event)
        .with_context(|| format!("scoring the descriptions of {}", atlas.display()))?;
    Ok(ScoreOutcome {
        atlas: atlas.to_path_buf(),
        scorer_provider: options.provider.kind.as_str().to_string(),
        scorer_model: options.provider.model.clone(),
        summary,
    })
}

impl fmt::Display for ScoreOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let r = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.3}"));
        writeln!(
            f,
            "atlas: {}\nscorer: {} {}",
            self.atlas.display(),
            self.scorer_provider,
            self.scorer_model
        )?;
        writeln!(
            f,
            "descriptions: {}; scored now {}, failed {}, not finished {}, scored before {}",
            s.descriptions, s.scored, s.failed, s.not_finished, s.already_scored
        )?;
        writeln!(
            f,
            "median Pearson r: {} with this scorer, {} as first scored",
            r(s.median_pearson),
            r(s.original_median_pearson)
        )?;
        writeln!(f, "spent: ${:.4}", s.spent_usd)?;
        if s.stopped_by_budget {
            writeln!(f, "stopped before passing --max-cost")?;
        }
        Ok(())
    }
}

//! A describe or score run as the command line gives it: the settings of a
//! [`DescribeSection`] plus what only a single run has (the atlas, the call log, the dry-run
//! switch), and the words shown for each [`DescribeEvent`] as the run goes.
//!
//! ```no_run
//! use plmscope_pipeline::describe::DescribeSection;
//! use plmscope_pipeline::describe_run::{describe_run, event_text, DescribeRun};
//! # fn main() -> anyhow::Result<()> {
//! let run = DescribeRun {
//!     atlas: "atlas.sqlite".into(),
//!     section: DescribeSection {
//!         provider: "anthropic".into(),
//!         model: "claude-haiku-4-5".into(),
//!         ..DescribeSection::default()
//!     },
//!     log: None,
//!     dry_run: true,
//! };
//! let outcome = describe_run(&run, None, &mut |e| eprintln!("{:?}", event_text(e, false)))?;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use plmscope_interpret::describe::{
    DescribeEvent, DescribeOptions, ProviderKind, ProviderOptions, RescoreFilter,
};

use crate::describe::{
    describe_atlas, score_atlas, DescribeOutcome, DescribeSection, Protocol, ScoreOutcome,
};

/// One describe or score run on one atlas.
#[derive(Clone, Debug)]
pub struct DescribeRun {
    /// The atlas `plmscope analyze` wrote.
    pub atlas: PathBuf,
    /// Provider, model, units, sample, budget...: what a study's `[describe]` section says.
    pub section: DescribeSection,
    /// The JSONL call log and cache (default: `<atlas stem>.descriptions.jsonl` beside it).
    pub log: Option<PathBuf>,
    /// Print what would be asked and the token and cost estimate; call nothing.
    pub dry_run: bool,
}

impl DescribeRun {
    /// The call log: `log`, or `<atlas stem>.descriptions.jsonl` beside the atlas.
    pub fn log_path(&self) -> PathBuf {
        let mut options = DescribeOptions::new(ProviderOptions::new(ProviderKind::Replay, ""));
        options.log_path = self.log.clone();
        options.log_path_for(&self.atlas)
    }

    /// The library options and protocol ([`DescribeSection::options`]) with this run's log and
    /// dry run; provider `replay` without a replay log answers from this run's own log.
    pub fn options(&self) -> Result<(DescribeOptions, Protocol)> {
        let mut section = self.section.clone();
        if section.provider == "replay" && section.replay_log.is_none() {
            section.replay_log = Some(self.log_path());
        }
        let (mut options, protocol) = section.options()?;
        options.dry_run = self.dry_run;
        options.log_path = self.log.clone();
        Ok((options, protocol))
    }
}

/// Describes the run's atlas ([`describe_atlas`]); with `prompts_dir`, writes every selected
/// unit's prompts there.
pub fn describe_run(
    run: &DescribeRun,
    prompts_dir: Option<&Path>,
    on_event: &mut dyn FnMut(&DescribeEvent),
) -> Result<DescribeOutcome> {
    let (options, protocol) = run.options()?;
    describe_atlas(&run.atlas, &options, protocol, prompts_dir, on_event)
}

/// Scores the run's atlas's descriptions again ([`score_atlas`]), those `filter` keeps; only
/// the gujral2025 protocol's descriptions can be scored again.
pub fn score_run(
    run: &DescribeRun,
    filter: &RescoreFilter,
    on_event: &mut dyn FnMut(&DescribeEvent),
) -> Result<ScoreOutcome> {
    let (options, protocol) = run.options()?;
    if protocol != Protocol::Gujral2025 {
        bail!("score re-scores gujral2025 descriptions only");
    }
    score_atlas(&run.atlas, &options, filter, on_event)
}

/// What to show for one [`DescribeEvent`].
#[derive(Clone, Debug, PartialEq)]
pub enum EventText {
    /// A status line for stderr (above the progress bar, when there is one).
    Status(String),
    /// A dry run's prompt listing, for stdout.
    Output(String),
    /// A finished unit: `done` of `total`, the progress bar's message, and the line to log
    /// instead when there is no bar (stderr is not a terminal).
    Unit {
        done: usize,
        total: usize,
        message: String,
        line: String,
    },
}

/// The words for `event`; `show_prompts` lists dry-run prompts in full instead of their length.
pub fn event_text(event: &DescribeEvent, show_prompts: bool) -> EventText {
    match event {
        DescribeEvent::Planned { kind, counts } => EventText::Status(format!(
            "{kind}s: {} to describe, {} done before, passed over {} too few active, {} too few inactive, {} dead",
            counts.selected,
            counts.already_done,
            counts.too_few_active,
            counts.too_few_inactive,
            counts.dead
        )),
        DescribeEvent::Prompt {
            unit,
            label,
            prompt,
        } => EventText::Output(if show_prompts {
            format!("===== {label} (unit {unit}) prompt\n{prompt}\n")
        } else {
            format!("{label} (unit {unit}): prompt of {} characters", prompt.len())
        }),
        DescribeEvent::Retrying { unit, retry } => EventText::Status(format!(
            "unit {unit}: retry {} in {:.1}s: {}",
            retry.attempt,
            retry.wait.as_secs_f64(),
            retry.reason
        )),
        DescribeEvent::UnitDone {
            label,
            done,
            total,
            pearson,
            error,
            spent_usd,
            ..
        } => {
            let result = match (pearson, error) {
                (_, Some(e)) => format!("failed: {e}"),
                (Some(r), None) => format!("r = {r:.3}"),
                (None, None) => "no correlation (constant predictions)".to_string(),
            };
            EventText::Unit {
                done: *done,
                total: *total,
                message: format!("spent ${spent_usd:.4} · {label}: {result}"),
                line: format!("[{done}/{total}] {label}: {result}; spent ${spent_usd:.4}"),
            }
        }
        DescribeEvent::BudgetReached {
            spent_usd,
            max_cost,
        } => EventText::Status(format!(
            "spent ${spent_usd:.4}: the next call could pass --max-cost ${max_cost}; no new call starts"
        )),
    }
}

/// `plmscope describe` and `plmscope score`'s flags (the `cli` feature), mapped onto a
/// [`DescribeRun`].
#[cfg(feature = "cli")]
mod cli {
    use std::path::PathBuf;

    use plmscope_interpret::describe::RescoreFilter;

    use super::DescribeRun;
    use crate::describe::DescribeSection;

    /// Who answers, and at what price.
    #[derive(clap::Args, Clone, Debug)]
    struct ProviderArgs {
        /// The atlas `plmscope analyze` wrote.
        #[arg(long)]
        atlas: PathBuf,
        /// anthropic (key: ANTHROPIC_API_KEY), openai (key: OPENAI_API_KEY; with --base-url any
        /// OpenAI-compatible server: vLLM, llama.cpp, Ollama) or replay (answers from a log).
        #[arg(long, value_parser = ["anthropic", "openai", "replay"])]
        provider: String,
        /// The model, e.g. claude-haiku-4-5, gpt-4o-mini, or the name a local server serves.
        #[arg(long)]
        model: String,
        /// API root, e.g. http://localhost:8000/v1 (a local server needs no key and costs nothing).
        #[arg(long)]
        base_url: Option<String>,
        /// Units to describe (or whose descriptions to score).
        #[arg(long, default_value = "both", value_parser = ["features", "neurons", "both"])]
        units: String,
        /// Seeds the unit draw and every unit's protein sample (score: the describe run's seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Stop cleanly before the spend could pass this many US dollars.
        #[arg(long, value_name = "USD")]
        max_cost: Option<f64>,
        /// Units in flight at once.
        #[arg(long)]
        concurrency: Option<usize>,
        /// Print what would be asked and the token and cost estimate; call nothing.
        #[arg(long)]
        dry_run: bool,
        /// Ask again for units recorded as failed by an earlier run.
        #[arg(long)]
        retry_failed: bool,
        /// TOML prices per million tokens overriding the built-in list prices:
        /// `[models]` then `"claude-haiku-4-5" = { input = 1.0, output = 5.0 }`.
        #[arg(long, value_name = "FILE")]
        price_table: Option<PathBuf>,
        /// replay: the JSONL log of an earlier run to answer from (default: this atlas's log).
        #[arg(long, value_name = "FILE")]
        replay_log: Option<PathBuf>,
        /// The JSONL call log and cache (default: <atlas stem>.descriptions.jsonl beside it).
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    }

    /// Describe an atlas's features and neurons in words with a language model, and score each
    /// description by how well it predicts activations on held-out proteins.
    #[derive(clap::Args, Debug)]
    pub struct DescribeArgs {
        #[command(flatten)]
        common: ProviderArgs,
        /// Units per kind (default 200, the seed paper's).
        #[arg(long)]
        sample: Option<usize>,
        /// gujral2025 (the seed paper's, default) or delphi (residue windows).
        #[arg(long, value_parser = ["gujral2025", "delphi"])]
        protocol: Option<String>,
        /// A preset's protocol and sample (gujral2025-protein, gujral2025-residue, ...).
        #[arg(long)]
        preset: Option<String>,
        /// Write every selected unit's explain and score prompt to DIR as text files.
        #[arg(long, value_name = "DIR")]
        pub prompts_dir: Option<PathBuf>,
        /// Dry run: print every explain prompt in full, not only the list of units.
        #[arg(long, requires = "dry_run")]
        pub show_prompts: bool,
    }

    /// Score the descriptions already in an atlas again (e.g. with another model), on the same
    /// held-out proteins; new rows go to description_scores, the originals stay.
    #[derive(clap::Args, Debug)]
    pub struct ScoreArgs {
        #[command(flatten)]
        common: ProviderArgs,
        /// Only descriptions written by this provider.
        #[arg(long)]
        described_by_provider: Option<String>,
        /// Only descriptions written by this model.
        #[arg(long)]
        described_by_model: Option<String>,
    }

    impl ProviderArgs {
        fn into_run(self) -> DescribeRun {
            DescribeRun {
                atlas: self.atlas,
                section: DescribeSection {
                    provider: self.provider,
                    model: self.model,
                    base_url: self.base_url,
                    units: Some(self.units),
                    seed: self.seed,
                    max_cost: self.max_cost,
                    concurrency: self.concurrency,
                    price_table: self.price_table,
                    replay_log: self.replay_log,
                    retry_failed: self.retry_failed,
                    ..DescribeSection::default()
                },
                log: self.log,
                dry_run: self.dry_run,
            }
        }
    }

    impl DescribeArgs {
        /// The run these flags ask for (the prompts directory and --show-prompts stay here).
        pub fn run(&self) -> DescribeRun {
            let mut run = self.common.clone().into_run();
            run.section.sample = self.sample;
            run.section.preset = self.preset.clone();
            run.section.protocol = self.protocol.clone();
            run
        }
    }

    impl ScoreArgs {
        /// The run these flags ask for, and which descriptions to score.
        pub fn into_run(self) -> (DescribeRun, RescoreFilter) {
            let filter = RescoreFilter {
                provider: self.described_by_provider,
                model: self.described_by_model,
            };
            (self.common.into_run(), filter)
        }
    }
}
#[cfg(feature = "cli")]
pub use cli::{DescribeArgs, ScoreArgs};

#[cfg(test)]
mod tests {
    use super::*;
    use plmscope_interpret::describe::{KindCounts, Retry};
    use std::time::Duration;

    fn run(provider: &str, protocol: Option<&str>) -> DescribeRun {
        DescribeRun {
            atlas: "/runs/x/layer3.sqlite".into(),
            section: DescribeSection {
                provider: provider.into(),
                model: "m".into(),
                protocol: protocol.map(str::to_string),
                ..DescribeSection::default()
            },
            log: None,
            dry_run: true,
        }
    }

    /// Catches a replay run that asks for a log the user never gave instead of reading the
    /// atlas's own, and a run that drops --log or --dry-run on the way to the options.
    #[test]
    fn replay_defaults_to_the_atlas_log_and_the_run_keeps_log_and_dry_run() {
        let own = PathBuf::from("/runs/x/layer3.descriptions.jsonl");
        let (options, protocol) = run("replay", None).options().unwrap();
        assert_eq!(protocol, Protocol::Gujral2025);
        assert_eq!(options.provider.replay_log, Some(own.clone()));
        assert!(options.dry_run);
        assert_eq!(options.log_path, None);
        assert_eq!(run("replay", None).log_path(), own);

        let mut logged = run("replay", None);
        logged.log = Some("/elsewhere/calls.jsonl".into());
        let (options, _) = logged.options().unwrap();
        assert_eq!(options.log_path, logged.log);
        assert_eq!(options.provider.replay_log, logged.log);

        let (options, _) = run("anthropic", None).options().unwrap();
        assert_eq!(options.provider.replay_log, None);
    }

    /// Catches score accepting delphi descriptions, which it cannot score again; the refusal
    /// comes before the atlas is opened (it does not exist here).
    #[test]
    fn score_refuses_other_protocols_before_reading_the_atlas() {
        let err = score_run(
            &run("replay", Some("delphi")),
            &RescoreFilter::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "score re-scores gujral2025 descriptions only"
        );
    }

    /// Catches a changed wording of the lines the describe tests and users read.
    #[test]
    fn events_are_worded_for_the_bar_the_log_and_stdout() {
        let done = |pearson, error: Option<&str>| DescribeEvent::UnitDone {
            unit: 7,
            label: "feature 7".into(),
            done: 2,
            total: 5,
            pearson,
            error: error.map(str::to_string),
            spent_usd: 0.0123,
        };
        assert_eq!(
            event_text(&done(Some(0.5), None), false),
            EventText::Unit {
                done: 2,
                total: 5,
                message: "spent $0.0123 · feature 7: r = 0.500".into(),
                line: "[2/5] feature 7: r = 0.500; spent $0.0123".into(),
            }
        );
        let EventText::Unit { line, .. } = event_text(&done(Some(0.5), Some("429")), false) else {
            panic!("a unit")
        };
        assert_eq!(line, "[2/5] feature 7: failed: 429; spent $0.0123");
        let prompt = DescribeEvent::Prompt {
            unit: 3,
            label: "neuron 3".into(),
            prompt: "abcd".into(),
        };
        assert_eq!(
            event_text(&prompt, false),
            EventText::Output("neuron 3 (unit 3): prompt of 4 characters".into())
        );
        assert_eq!(
            event_text(&prompt, true),
            EventText::Output("===== neuron 3 (unit 3) prompt\nabcd\n".into())
        );
        let retry = DescribeEvent::Retrying {
            unit: 3,
            retry: Retry {
                attempt: 1,
                wait: Duration::from_millis(1500),
                reason: "HTTP 429".into(),
            },
        };
        assert_eq!(
            event_text(&retry, false),
            EventText::Status("unit 3: retry 1 in 1.5s: HTTP 429".into())
        );
        let planned = DescribeEvent::Planned {
            kind: "feature".into(),
            counts: KindCounts {
                selected: 4,
                dead: 1,
                ..KindCounts::default()
            },
        };
        let EventText::Status(line) = event_text(&planned, false) else {
            panic!("a status line")
        };
        assert!(
            line.starts_with("features: 4 to describe, 0 done before"),
            "{line}"
        );
    }
}

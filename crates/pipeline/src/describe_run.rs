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

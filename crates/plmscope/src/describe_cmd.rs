//! `plmscope describe` and `plmscope score`: LLM descriptions of an atlas's units and their
//! scores. Parsing and drawing only; the stage functions are in `plmscope_pipeline::describe`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use plmscope_interpret::describe::{DescribeEvent, DescribeOptions, RescoreFilter};
use plmscope_pipeline::describe::{describe_atlas, score_atlas, DescribeSection, Protocol};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProviderArg {
    Anthropic,
    Openai,
    Replay,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum UnitsArg {
    Features,
    Neurons,
    Both,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProtocolArg {
    Gujral2025,
    Delphi,
}

/// Who answers, and at what price.
#[derive(Args, Debug)]
struct ProviderArgs {
    /// The atlas `plmscope analyze` wrote.
    #[arg(long)]
    atlas: PathBuf,
    /// anthropic (key: ANTHROPIC_API_KEY), openai (key: OPENAI_API_KEY; with --base-url any
    /// OpenAI-compatible server: vLLM, llama.cpp, Ollama) or replay (answers from a log).
    #[arg(long, value_enum)]
    provider: ProviderArg,
    /// The model, e.g. claude-haiku-4-5, gpt-4o-mini, or the name a local server serves.
    #[arg(long)]
    model: String,
    /// API root, e.g. http://localhost:8000/v1 (a local server needs no key and costs nothing).
    #[arg(long)]
    base_url: Option<String>,
    /// Units to describe (or whose descriptions to score).
    #[arg(long, value_enum, default_value = "both")]
    units: UnitsArg,
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
#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    common: ProviderArgs,
    /// Units per kind (default 200, the seed paper's).
    #[arg(long)]
    sample: Option<usize>,
    /// gujral2025 (the seed paper's, default) or delphi (residue windows).
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// A preset's protocol and sample (gujral2025-protein, gujral2025-residue, ...).
    #[arg(long)]
    preset: Option<String>,
    /// Write every selected unit's explain and score prompt to DIR as text files.
    #[arg(long, value_name = "DIR")]
    prompts_dir: Option<PathBuf>,
    /// Dry run: print every explain prompt in full, not only the list of units.
    #[arg(long, requires = "dry_run")]
    show_prompts: bool,
}

/// Score the descriptions already in an atlas again (e.g. with another model), on the same
/// held-out proteins; new rows go to description_scores, the originals stay.
#[derive(Args, Debug)]
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
    fn section(&self) -> DescribeSection {
        let provider = match self.provider {
            ProviderArg::Anthropic => "anthropic",
            ProviderArg::Openai => "openai",
            ProviderArg::Replay => "replay",
        };
        let units = match self.units {
            UnitsArg::Features => "features",
            UnitsArg::Neurons => "neurons",
            UnitsArg::Both => "both",
        };
        let default_log = || {
            let mut o = DescribeOptions::new(plmscope_interpret::describe::ProviderOptions::new(
                plmscope_interpret::describe::ProviderKind::Replay,
                "",
            ));
            o.log_path = self.log.clone();
            o.log_path_for(&self.atlas)
        };
        DescribeSection {
            provider: provider.to_string(),
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            units: Some(units.to_string()),
            seed: self.seed,
            max_cost: self.max_cost,
            concurrency: self.concurrency,
            price_table: self.price_table.clone(),
            replay_log: match self.provider {
                ProviderArg::Replay => Some(self.replay_log.clone().unwrap_or_else(default_log)),
                _ => self.replay_log.clone(),
            },
            retry_failed: self.retry_failed,
            ..DescribeSection::default()
        }
    }

    fn finish(&self, options: &mut DescribeOptions) {
        options.dry_run = self.dry_run;
        options.log_path = self.log.clone();
    }
}

/// Draws the progress bar (with the spend so far) on a terminal, and plain lines otherwise.
struct Bar {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Bar {
    fn new() -> Self {
        Bar {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) if self.terminal => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    fn event(&mut self, event: &DescribeEvent, show_prompts: bool) {
        match event {
            DescribeEvent::Planned { kind, counts } => self.line(&format!(
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
            } => {
                if show_prompts {
                    println!("===== {label} (unit {unit}) prompt\n{prompt}\n");
                } else {
                    println!("{label} (unit {unit}): prompt of {} characters", prompt.len());
                }
            }
            DescribeEvent::Retrying { unit, retry } => self.line(&format!(
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
                if self.terminal {
                    let bar = self.bar.get_or_insert_with(|| {
                        let bar = ProgressBar::new(*total as u64).with_style(
                            ProgressStyle::with_template(
                                "[{elapsed_precise}] {bar:40} {pos}/{len} units ({eta}) {msg}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        bar.enable_steady_tick(Duration::from_millis(200));
                        bar
                    });
                    bar.set_position(*done as u64);
                    bar.set_message(format!("spent ${spent_usd:.4} · {label}: {result}"));
                } else {
                    eprintln!("[{done}/{total}] {label}: {result}; spent ${spent_usd:.4}");
                }
            }
            DescribeEvent::BudgetReached {
                spent_usd,
                max_cost,
            } => self.line(&format!(
                "spent ${spent_usd:.4}: the next call could pass --max-cost ${max_cost}; no new call starts"
            )),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn describe(args: DescribeArgs) -> Result<()> {
    let mut section = args.common.section();
    section.sample = args.sample;
    section.preset = args.preset.clone();
    section.protocol = args.protocol.map(|p| {
        match p {
            ProtocolArg::Gujral2025 => "gujral2025",
            ProtocolArg::Delphi => "delphi",
        }
        .to_string()
    });
    let (mut options, protocol) = section.options()?;
    args.common.finish(&mut options);
    let mut bar = Bar::new();
    let show = args.show_prompts;
    let outcome = describe_atlas(
        &args.common.atlas,
        &options,
        protocol,
        args.prompts_dir.as_deref(),
        &mut |event| bar.event(event, show),
    );
    bar.finish();
    let outcome = outcome?;
    print!("{outcome}");
    Ok(())
}

pub fn score(args: ScoreArgs) -> Result<()> {
    let section = args.common.section();
    let (mut options, protocol) = section.options()?;
    if protocol != Protocol::Gujral2025 {
        anyhow::bail!("score re-scores gujral2025 descriptions only");
    }
    args.common.finish(&mut options);
    let filter = RescoreFilter {
        provider: args.described_by_provider.clone(),
        model: args.described_by_model.clone(),
    };
    let mut bar = Bar::new();
    let outcome = score_atlas(&args.common.atlas, &options, &filter, &mut |event| {
        bar.event(event, false)
    });
    bar.finish();
    print!("{}", outcome?);
    Ok(())
}

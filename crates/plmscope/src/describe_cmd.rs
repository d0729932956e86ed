//! `plmscope describe` and `plmscope score`: LLM descriptions of an atlas's units and their
//! scores. Parsing and drawing only; the stage functions are in
//! `plmscope_pipeline::describe_run`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_interpret::describe::{DescribeEvent, RescoreFilter};
use plmscope_pipeline::describe::DescribeSection;
use plmscope_pipeline::describe_run::{
    describe_run, event_text, score_run, DescribeRun, EventText,
};
use plmscope_pipeline::Progress;

use crate::progress::BarProgress;

/// Who answers, and at what price.
#[derive(Args, Debug)]
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
#[derive(Args, Debug)]
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

/// Draws the events: the progress bar (with the spend so far) on a terminal, plain lines
/// otherwise.
struct Drawing {
    bar: BarProgress,
    terminal: bool,
    show_prompts: bool,
}

impl Drawing {
    fn new(show_prompts: bool) -> Self {
        Drawing {
            bar: BarProgress::new(),
            terminal: std::io::stderr().is_terminal(),
            show_prompts,
        }
    }

    fn event(&self, event: &DescribeEvent) {
        match event_text(event, self.show_prompts) {
            EventText::Status(line) => self.bar.println(&line),
            EventText::Output(text) => println!("{text}"),
            EventText::Unit {
                done,
                total,
                message,
                line,
            } => {
                if self.terminal {
                    self.bar.show(done as u64, total as u64, "units", &message);
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }
}

pub fn describe(args: DescribeArgs) -> Result<()> {
    let mut run = args.common.into_run();
    run.section.sample = args.sample;
    run.section.preset = args.preset;
    run.section.protocol = args.protocol;
    let drawing = Drawing::new(args.show_prompts);
    let outcome = describe_run(&run, args.prompts_dir.as_deref(), &mut |e| drawing.event(e));
    drawing.bar.finish();
    print!("{}", outcome?);
    Ok(())
}

pub fn score(args: ScoreArgs) -> Result<()> {
    let filter = RescoreFilter {
        provider: args.described_by_provider,
        model: args.described_by_model,
    };
    let run = args.common.into_run();
    let drawing = Drawing::new(false);
    let outcome = score_run(&run, &filter, &mut |e| drawing.event(e));
    drawing.bar.finish();
    print!("{}", outcome?);
    Ok(())
}

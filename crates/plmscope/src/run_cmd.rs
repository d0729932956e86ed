//! `plmscope run STUDY.toml`: every stage of a study, each skipped when up to date.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_pipeline::runner::{nothing_to_run, plan, plan_text, run as run_study, run_summary};
use plmscope_pipeline::study::Study;

use crate::progress::BarProgress;

/// Run a whole study (embed → train → encode → analyze) from one file; rerun to resume.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The study file (TOML); see examples/.
    study: PathBuf,
    /// Output folder (default: the study's `out`, or runs/<name> beside the study file).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print what would run and what is up to date, and why; run nothing.
    #[arg(long)]
    plan: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut study = Study::load(&args.study)?;
    if let Some(out) = args.out {
        study.out = Some(out);
    }
    let stages = plan(&study)?;
    if args.plan {
        print!("{}", plan_text(&stages));
        return Ok(());
    }
    if let Some(line) = nothing_to_run(&study, &stages) {
        println!("{line}");
        return Ok(());
    }
    let reports = run_study(&study, &BarProgress::for_stage, &mut |r| eprintln!("{r}"))?;
    print!("{}", run_summary(&study, &reports));
    Ok(())
}

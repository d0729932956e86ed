//! `plmscope run STUDY.toml`: every stage of a study, each skipped when up to date.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_pipeline::runner::{plan, plan_text, run as run_study, Action};
use plmscope_pipeline::study::Study;
use plmscope_pipeline::Progress;

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
    if stages.iter().all(|s| s.action == Action::UpToDate) {
        println!(
            "{}: all {} stages are up to date; nothing to run",
            study.out_dir().display(),
            stages.len()
        );
        return Ok(());
    }
    let progress_for = |id: &str| -> Box<dyn Progress> { Box::new(BarProgress::with_prefix(id)) };
    let reports = run_study(&study, &progress_for, &mut |r| {
        eprintln!(
            "{:<8} {} in {:.1}s, peak RSS {}",
            r.action.name(),
            r.id,
            r.seconds,
            r.peak_rss_bytes
                .map_or("?".to_string(), |b| format!("{} MB", b / (1 << 20)))
        );
    })?;
    for r in reports
        .iter()
        .filter(|r| r.id.starts_with("analyze/") || r.id.starts_with("describe/"))
    {
        println!("== {}\n{}", r.id, r.summary);
    }
    println!(
        "{}: {} stages run; results under {}",
        study.name,
        reports.len(),
        study.out_dir().display()
    );
    Ok(())
}

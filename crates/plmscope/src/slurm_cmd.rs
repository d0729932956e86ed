//! `plmscope slurm STUDY.toml`: arguments → [`plmscope_pipeline::slurm`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use plmscope_pipeline::slurm::{exec_stages, load_study_for_jobs, plan_jobs, SlurmRequest};

use crate::progress::BarProgress;

/// Write a study as Slurm batch scripts (an array job and a merge job per sharded stage, one
/// job per other stage, chained with afterok dependencies); --submit submits them.
#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// The study file (TOML); resources per stage come from its `[slurm]` section.
    study: PathBuf,
    /// The study's output folder (default: its `out`, or runs/<name> beside the study file).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the scripts, submit.sh and logs/ go (default: OUT/slurm).
    #[arg(long)]
    scripts: Option<PathBuf>,
    /// Array tasks of embed and encode, over `[slurm] shards` (analyze: `[slurm.analyze]
    /// shards`).
    #[arg(long)]
    shards: Option<usize>,
    /// Submit the jobs in order (sbatch --parsable, --dependency=afterok:<ids>); the ids go
    /// to SCRIPTS/jobs.tsv.
    #[arg(long)]
    submit: bool,
    /// Run these stages of the study here, as `plmscope run` would, and exit (what the
    /// generated jobs call for unsharded stages; repeatable).
    #[arg(long, value_name = "STAGE")]
    exec: Vec<String>,
}

pub fn run(args: SlurmArgs) -> Result<()> {
    let (study_file, study) = load_study_for_jobs(&args.study, args.out.as_deref())?;
    if !args.exec.is_empty() {
        for line in exec_stages(&study, &args.exec, &BarProgress::for_stage)? {
            println!("{line}");
        }
        return Ok(());
    }
    let dir = args
        .scripts
        .unwrap_or_else(|| study.out_dir().join("slurm"));
    let binary = std::env::current_exe()
        .context("finding this plmscope binary for the jobs")?
        .display()
        .to_string();
    let plan = plan_jobs(
        &study,
        &SlurmRequest {
            study_file,
            dir,
            binary,
            shards: args.shards,
        },
    )?;
    plan.write()?;
    print!("{}", plan.summary());
    println!(
        "{} jobs written to {} (submit.sh submits them)",
        plan.jobs.len(),
        plan.dir.display()
    );
    if args.submit {
        let ids = plan.submit("sbatch")?;
        for (job, id) in plan.jobs.iter().zip(&ids) {
            println!("submitted {} as {id}", job.file);
        }
    }
    Ok(())
}

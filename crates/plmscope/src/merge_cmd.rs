//! `plmscope merge PART... --out DIR|ATLAS`: arguments → [`plmscope_pipeline::merge`].

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use plmscope_pipeline::merge::{merge, MergeRequest};

use crate::progress::BarProgress;

#[derive(Args)]
pub struct MergeArgs {
    /// Part directories, each the --out of one `embed`, `encode` or `analyze` run with
    /// --shard i/N (any order; all N parts are needed).
    #[arg(required = true, value_name = "PART")]
    parts: Vec<PathBuf>,
    /// The merged result: embed's output directory (one sub-directory per set), the code set,
    /// or the atlas (analyze: q-values and coherence recomputed over all parts).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: MergeArgs) -> Result<()> {
    let request = MergeRequest {
        parts: args.parts,
        out: args.out,
    };
    let outcome = merge(&request, &BarProgress::new())?;
    eprintln!("{outcome} under {}", request.out.display());
    Ok(())
}

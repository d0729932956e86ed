//! `plmscope probe`: sparse logistic probes on code sets (features) and activation sets
//! (neurons) against protein or residue labels, ranked by held-out AUROC. The flags are here;
//! the stage and its results table are `plmscope_pipeline::probe`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use plmscope_pipeline::probe::{probe, LabelSource, ProbeRequest};
use plmscope_store::Level;

#[derive(Args)]
pub struct ProbeArgs {
    /// Activation sets: their neurons are probed.
    #[arg(long, num_args = 1..)]
    activations: Vec<PathBuf>,
    /// Code sets: their features are probed.
    #[arg(long, num_args = 1..)]
    codes: Vec<PathBuf>,
    /// Labels: `tmbed=FILE` (TMbed 3-line file; residues in a TM helix, or --tmbed-class),
    /// `binding=FILE` (bindEmbed21 binding_residues_*.txt), or a protein TSV `accession<TAB>class`.
    #[arg(long)]
    labels: String,
    /// protein or residue (default: residue for TMbed and binding labels, protein for a TSV).
    #[arg(long)]
    level: Option<String>,
    /// With a TSV: the positive class (default: the rarer of two classes).
    #[arg(long)]
    positive: Option<String>,
    /// With TMbed labels: helix, strand or signal.
    #[arg(long, default_value = "helix")]
    tmbed_class: String,
    /// Activation set whose protein list the code sets share (default: the first --activations
    /// set of the same level).
    #[arg(long)]
    proteins_from: Option<PathBuf>,
    /// scikit-learn's C (inverse L1 strength).
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// At most this many rows (whole proteins in seeded order), to bound memory.
    #[arg(long, default_value_t = 40000)]
    max_rows: usize,
    /// Write the results into this atlas (tables `probes`, `probe_units`).
    #[arg(long)]
    atlas: Option<PathBuf>,
    /// Write every report (path, coefficients, single units) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: ProbeArgs) -> Result<()> {
    let level = match args.level.as_deref() {
        Some("residue") => Some(Level::Residue),
        Some("protein") => Some(Level::Protein),
        Some(other) => bail!("--level {other}: use protein or residue"),
        None => None,
    };
    let req = ProbeRequest {
        labels: LabelSource::parse(&args.labels, &args.tmbed_class, args.positive)?,
        activations: args.activations,
        codes: args.codes,
        level,
        proteins_from: args.proteins_from,
        c: args.c,
        test_fraction: args.test_fraction,
        seed: args.seed,
        max_rows: args.max_rows,
        atlas: args.atlas,
        json: args.json,
    };
    let out = probe(&req)?;
    eprintln!(
        "{} rows of {} labelled proteins ({} positive)",
        out.rows, out.proteins, out.positives
    );
    print!("{out}");
    if let Some(atlas) = &req.atlas {
        eprintln!("probes written to {}", atlas.display());
    }
    Ok(())
}

//! `plmscope compare` (atlases side by side, TSV and a self-contained HTML page) and
//! `plmscope flow` (feature links between dictionaries of adjacent layers or through a
//! transcoder, into an atlas's `flow_links`). The work is in `plmscope_interpret::compare` and
//! `plmscope_interpret::flow`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use plmscope_interpret::compare::{compare_atlases_with, to_html, to_tsv, CompareOptions};
use plmscope_interpret::flow::{
    attribute, match_decoders, write_flow_links, Directions, FlowLink, MatchOptions,
};

#[derive(Args)]
pub struct CompareArgs {
    /// Atlases (one per model × layer × dictionary).
    #[arg(required = true)]
    atlases: Vec<PathBuf>,
    /// Write a self-contained HTML page (table and SVG plots across layers).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the table as TSV (printed to stdout when neither --tsv nor --html is given).
    #[arg(long)]
    tsv: Option<PathBuf>,
    /// GO OBO for term depths, instead of the one each atlas names in its inputs.
    #[arg(long)]
    go: Option<PathBuf>,
}

pub fn compare(args: CompareArgs) -> Result<()> {
    let rows = compare_atlases_with(&args.atlases, &CompareOptions { go: args.go })?;
    let tsv = to_tsv(&rows);
    if let Some(path) = &args.tsv {
        std::fs::write(path, &tsv).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, to_html(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.tsv.is_none() && args.html.is_none() {
        print!("{tsv}");
    } else {
        print_summary(&rows);
    }
    Ok(())
}

fn print_summary(rows: &[plmscope_interpret::compare::AtlasComparison]) {
    println!("layer\tlevel\tkind\tunits\tdead\tGO share\tGO terms\tGO depth\tFVE\tatlas");
    for r in rows {
        for (kind, s) in [("feature", &r.features), ("neuron", &r.neurons)] {
            let Some(s) = s else { continue };
            let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or("-".into());
            println!(
                "{}\t{}\t{kind}\t{}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{}",
                r.source.layer.map(|l| l.to_string()).unwrap_or("-".into()),
                r.source.level.as_deref().unwrap_or("-"),
                s.units,
                s.dead_fraction,
                s.go_share,
                s.go_distinct_terms,
                opt(s.go_mean_depth),
                opt(if kind == "feature" {
                    r.source.fve
                } else {
                    None
                }),
                r.atlas.display()
            );
        }
    }
}

#[derive(Args)]
pub struct FlowArgs {
    /// Dictionary at the source layer (or the transcoder, with --transcoder-into).
    #[arg(long)]
    source: PathBuf,
    /// Dictionary at the target layer.
    #[arg(long)]
    target: PathBuf,
    /// Link by decoder · encoder weights (source = a transcoder writing into the target's
    /// input space, or an SAE feeding a transcoder) instead of decoder cosine.
    #[arg(long)]
    weights: bool,
    /// Atlas to write `flow_links` into (the target's atlas, usually).
    #[arg(long)]
    atlas: PathBuf,
    /// Names of the two atlases as stored in `flow_links` (default: the dictionary folders).
    #[arg(long)]
    source_atlas: Option<String>,
    #[arg(long)]
    target_atlas: Option<String>,
    /// Keep decoder matches with null p at most this.
    #[arg(long, default_value_t = 0.01)]
    max_p: f64,
    /// Sources kept per target feature with --weights.
    #[arg(long, default_value_t = 5)]
    top: usize,
    #[arg(long, default_value_t = 1000)]
    null_directions: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn flow(args: FlowArgs) -> Result<()> {
    let load = |p: &PathBuf| {
        plmscope_sae::io::load(p).with_context(|| format!("loading dictionary {}", p.display()))
    };
    let (source, target) = (load(&args.source)?, load(&args.target)?);
    let decoder = Directions::new(source.d_sae, source.d_out, source.w_dec.clone())?;
    let links: Vec<FlowLink> = if args.weights {
        if source.d_out != target.d_in {
            bail!(
                "{} writes {} dimensions but {} reads {}: --weights needs the source's output \
                 space to be the target's input space",
                args.source.display(),
                source.d_out,
                args.target.display(),
                target.d_in
            );
        }
        let encoder = Directions::from_columns(target.d_in, target.d_sae, &target.w_enc)?;
        attribute(&decoder, &encoder, args.top)?
    } else {
        let target_decoder = Directions::new(target.d_sae, target.d_out, target.w_dec.clone())?;
        let options = MatchOptions {
            null_directions: args.null_directions,
            seed: args.seed,
        };
        let found = match_decoders(&decoder, &target_decoder, &options);
        println!(
            "null best cosine of {} random directions: 99% {:.3}, 99.9% {:.3}",
            args.null_directions, found.null_q99, found.null_q999
        );
        let total = found.links.len();
        let kept: Vec<FlowLink> = found
            .links
            .into_iter()
            .filter(|l| l.p.unwrap_or(1.0) <= args.max_p)
            .collect();
        println!(
            "{} of {total} target features matched at p <= {}",
            kept.len(),
            args.max_p
        );
        kept
    };
    let name = |given: &Option<String>, p: &PathBuf| {
        given.clone().unwrap_or_else(|| p.display().to_string())
    };
    write_flow_links(
        &args.atlas,
        &name(&args.source_atlas, &args.source),
        &name(&args.target_atlas, &args.target),
        &links,
    )?;
    let mut strongest = links.clone();
    strongest.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    println!("source\ttarget\tweight\tp\tkind");
    for l in strongest.iter().take(10) {
        println!(
            "{}\t{}\t{:.4}\t{}\t{}",
            l.source,
            l.target,
            l.weight,
            l.p.map(|p| format!("{p:.4}")).unwrap_or("-".into()),
            l.kind.as_str()
        );
    }
    println!("{} links written to {}", links.len(), args.atlas.display());
    Ok(())
}

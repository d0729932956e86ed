//! `plmscope analyze`: the flags of [`plmscope_pipeline::analyze`], which does the work.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use plmscope_interpret::enrichment::{CorrectionMethod, TermSizeFilter};
use plmscope_pipeline::analyze::{
    analyze, parse_namespaces, parse_rule, parse_store_tests, AnalyzeRequest, LabelSource,
};
use plmscope_pipeline::presets::Preset;
use plmscope_pipeline::shard::ShardSpec;

use crate::progress::BarProgress;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Correction {
    /// Benjamini-Hochberg false discovery rate.
    Bh,
    /// Bonferroni family-wise error rate.
    Bonferroni,
}

/// Test which GO terms, Pfam families and residue concepts each unit stands for; write the atlas.
///
/// Features and neurons are tested the same way into one atlas (`units.kind`), so "how many
/// features vs neurons map to a term" is one query. Each source is optional: GO needs --go and
/// GO annotations, Pfam a file with Pfam, concepts residue-level units and residue labels.
/// Defaults: GO terms with 5..=1000 annotated proteins, all namespaces, Benjamini-Hochberg at
/// 0.05 over all tests of one kind and source.
///
/// Large dictionaries can be split over jobs by units: `--shard i/N --out PART_i` for i in
/// 0..N, then `plmscope merge PART_0 ... PART_{N-1} --out ATLAS`, which recomputes the q-values
/// (and coherence and summary counts) over all parts: the atlas equals a single run's.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("features").args(["codes", "activations"]))]
pub struct AnalyzeArgs {
    /// A published setup's statistics (GO namespaces, correction, alpha): gujral2025-protein,
    /// gujral2025-residue, gujral2025-transcoder, interplm-esm2-8m, interprot-esm2-650m. It
    /// replaces --namespace, --correction and --alpha.
    #[arg(long)]
    preset: Option<String>,
    /// Code set (from `plmscope encode`): its dictionary latents are the features.
    #[arg(long)]
    codes: Option<PathBuf>,
    /// Activation set whose dimensions are analysed as the features.
    #[arg(long)]
    activations: Option<PathBuf>,
    /// Activation set whose dimensions are the neuron baseline.
    #[arg(long)]
    neurons: Option<PathBuf>,
    /// Activation set listing the proteins of --codes (the set they were encoded from, or any
    /// set of the same proteins in the same order). Default: --neurons.
    #[arg(long, requires = "codes")]
    proteins_from: Option<PathBuf>,
    /// Annotation files, format told from the content: UniProt TSV (columns by header name),
    /// UniProt flat file (.dat), GAF (`!gaf-version`), GO list CSV (`Protein ID,GO ID`).
    #[arg(long)]
    annotations: Vec<PathBuf>,
    /// UniProt FASTA files whose headers give protein names, genes and organisms for
    /// `plmscope describe` prompts (repeatable).
    #[arg(long)]
    fasta: Vec<PathBuf>,
    /// Also store residue windows of residue-level units for `describe --protocol delphi`
    /// (sequences from --fasta; up to 250 windows per unit).
    #[arg(long, requires = "fasta")]
    residue_windows: bool,
    /// Gene Ontology (OBO, e.g. go-basic.obo); needed exactly when GO annotations are given.
    #[arg(long)]
    go: Option<PathBuf>,
    /// Extra GO annotation files read as GAF (NOT-qualified lines are left out).
    #[arg(long)]
    gaf: Vec<PathBuf>,
    /// Residue labels KIND=FILE for concept scores (residue-level units only): tmbed (3-line
    /// TMbed labels), metal | nuclear | small | binding (bindEmbed21 binding residues; binding
    /// takes the class from the file name), uniprot (feature columns of a TSV or .dat).
    #[arg(long = "residue-labels", value_name = "KIND=FILE")]
    residue_labels: Vec<String>,
    /// GO namespaces tested.
    #[arg(long, value_delimiter = ',', default_value = "BP,MF,CC")]
    namespace: Vec<String>,
    /// Smallest GO term tested (annotated background proteins).
    #[arg(long, default_value_t = 5)]
    min_term_size: u32,
    /// Largest GO term tested.
    #[arg(long, default_value_t = 1000)]
    max_term_size: u32,
    #[arg(long, value_enum, default_value = "bh")]
    correction: Correction,
    /// Significance level on the corrected q (FDR for bh).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Feature study sets: topk (the latent is stored in the protein's code; residue level: on
    /// any residue), above:T, top:N, quantile:Q. Default: topk for --codes; for
    /// --activations the top 1% of proteins (a dense unit is nonzero almost everywhere).
    #[arg(long)]
    foreground: Option<String>,
    /// Neuron study sets: match (top N proteins, N = the features' median study-set size), or
    /// any --foreground rule.
    #[arg(long, default_value = "match")]
    neuron_foreground: String,
    /// Enrichment tests stored as atlas rows: nominal (p < 0.05), significant (q < alpha) or
    /// all; every test counts in the correction whatever is stored.
    #[arg(long, default_value = "nominal", value_parser = ["nominal", "significant", "all"])]
    store_tests: String,
    /// The atlas (SQLite) to write; with --shard, the part directory (atlas.sqlite + part.json).
    #[arg(long)]
    out: PathBuf,
    /// Also export every atlas table as DIR/<table>.tsv.
    #[arg(long, value_name = "DIR")]
    tsv: Option<PathBuf>,
    /// Analyse only part i of N (0-based; auto/N takes i from SLURM_ARRAY_TASK_ID): the units
    /// (features, then neurons) are cut into N contiguous runs of about equal count, and the
    /// part's units are written with every enrichment test's p into the directory --out
    /// (atlas.sqlite + part.json); `plmscope merge PART... --out ATLAS` then recomputes q over
    /// all parts and writes the atlas one process writes.
    #[arg(long, value_name = "i/N")]
    shard: Option<String>,
}

impl AnalyzeArgs {
    /// The typed request; a typo in a rule or namespace fails here, before any file is read.
    fn request(self) -> Result<AnalyzeRequest> {
        let preset = self.preset.as_deref().map(Preset::by_name).transpose()?;
        let mut req = AnalyzeRequest {
            codes: self.codes,
            activations: self.activations,
            neurons: self.neurons,
            proteins_from: self.proteins_from,
            annotations: self.annotations,
            go: self.go,
            gaf: self.gaf,
            residue_labels: self
                .residue_labels
                .iter()
                .map(|l| l.parse::<LabelSource>())
                .collect::<Result<_>>()?,
            namespaces: parse_namespaces(&self.namespace)?,
            go_term_size: TermSizeFilter {
                min_population_count: self.min_term_size,
                max_population_count: self.max_term_size,
            },
            correction: match self.correction {
                Correction::Bh => CorrectionMethod::BenjaminiHochberg,
                Correction::Bonferroni => CorrectionMethod::Bonferroni,
            },
            alpha: self.alpha,
            feature_rule: self
                .foreground
                .as_deref()
                .map(|r| parse_rule(r, false))
                .transpose()?,
            neuron_rule: parse_rule(&self.neuron_foreground, true)?,
            out: self.out,
            store_tests: parse_store_tests(&self.store_tests)?,
            tsv: self.tsv,
            fasta: self.fasta,
            residue_windows: self.residue_windows,
            shard: self.shard.as_deref().map(ShardSpec::parse).transpose()?,
        };
        if let Some(p) = preset {
            p.fill_analyze_request(&mut req)?;
        }
        Ok(req)
    }
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    let request = args.request()?;
    let outcome = analyze(&request, &BarProgress::new())?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    print!("{outcome}");
    Ok(())
}

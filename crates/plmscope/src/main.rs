//! `plmscope`: the command-line program. It parses arguments, sets up logging, progress and
//! threads, and wires the library crates together; the work itself lives in those crates.

mod analyze_cmd;
mod describe_cmd;
mod dictionary_cmd;
mod embed;
mod exchange_cmd;
mod model_cmd;
mod probe_cmd;
mod progress;
mod run_cmd;
mod serve_cmd;
mod slurm_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use plmscope_exchange::{ExportRequest, ImportRequest};
use plmscope_pipeline::compare::{compare, CompareRequest};
use plmscope_pipeline::flow::{flow, FlowRequest};
use plmscope_pipeline::merge::{merge, MergeRequest};

use crate::progress::BarProgress;

#[derive(Parser)]
#[command(
    name = "plmscope",
    version,
    about = "Open up protein language models with sparse dictionaries"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// More log output (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make or inspect ESM2 checkpoints.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Run ESM2 on a FASTA file and store activations per layer × site × level.
    Embed(embed::EmbedArgs),
    /// Train sparse autoencoders or transcoders on an activation set.
    Train(plmscope_pipeline::train::TrainArgs),
    /// Evaluate a dictionary on an activation set (MSE, FVE, L0, dead/dense, density).
    Eval(dictionary_cmd::EvalArgs),
    /// Encode an activation set into a sparse code set.
    Encode(dictionary_cmd::EncodeArgs),
    /// Run a whole study from one file (embed → train → encode → analyze), resumably.
    Run(run_cmd::RunArgs),
    /// Write a study as Slurm batch jobs (arrays per sharded stage, merges, dependencies).
    Slurm(slurm_cmd::SlurmArgs),
    /// Test which GO terms, Pfam families and residue concepts units stand for; write the atlas.
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Write an atlas's tables or a set's values as Parquet (DuckDB, Polars, Spark).
    Export(ExportRequest),
    /// Turn embeddings from fair-esm, HDF5 or NumPy files into an activation set.
    Import(ImportRequest),
    /// Join the parts of a sharded embed, encode or analyze (--shard i/N) into one set (equal
    /// byte for byte to a single-process run's) or one atlas (equal table by table; q over all
    /// parts).
    Merge(MergeRequest),
    /// Describe an atlas's units in words with a language model, and score the descriptions.
    Describe(plmscope_pipeline::describe_run::DescribeArgs),
    /// Browse atlases in a web browser (read-only; loopback unless --host says otherwise).
    Serve(serve_cmd::ServeArgs),
    /// Score an atlas's descriptions again (e.g. with another model), on the same proteins.
    Score(plmscope_pipeline::describe_run::ScoreArgs),
    /// Atlases side by side (FVE, L0, dead, GO share and depth, Pfam, concepts, descriptions;
    /// features and neurons) as TSV and a self-contained HTML page with plots across layers.
    Compare(CompareRequest),
    /// Sparse logistic probes on features (code sets) and neurons (activation sets) against
    /// protein or residue labels, on held-out proteins; results into an atlas.
    Probe(probe_cmd::ProbeArgs),
    /// Link features of two dictionaries (adjacent layers by decoder cosine, or transcoder
    /// paths by weights) into an atlas's flow_links.
    Flow(FlowRequest),
}

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLMSCOPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()?;
    }
    match cli.command {
        Command::Model(cmd) => model_cmd::run(cmd)?,
        Command::Embed(args) => embed::run(args)?,
        Command::Train(args) => dictionary_cmd::train(args)?,
        Command::Eval(args) => dictionary_cmd::eval(args)?,
        Command::Encode(args) => dictionary_cmd::encode_cmd(args)?,
        Command::Analyze(args) => analyze_cmd::run(args)?,
        Command::Export(req) => exchange_cmd::export_cmd(req)?,
        Command::Import(req) => exchange_cmd::import_cmd(req)?,
        Command::Merge(req) => {
            let outcome = merge(&req, &BarProgress::new())?;
            eprintln!("{outcome} under {}", req.out.display());
        }
        Command::Run(args) => run_cmd::run(args)?,
        Command::Slurm(args) => slurm_cmd::run(args)?,
        Command::Describe(args) => describe_cmd::describe(args)?,
        Command::Serve(args) => serve_cmd::run(args)?,
        Command::Score(args) => describe_cmd::score(args)?,
        Command::Compare(req) => print!("{}", compare(&req)?),
        Command::Probe(args) => probe_cmd::run(args)?,
        Command::Flow(req) => print!("{}", flow(&req)?),
    }
    Ok(())
}

//! `plmscope`: the command-line program. It parses arguments, sets up logging, progress and
//! threads, and wires the library crates together; the work itself lives in those crates.

mod analyze_cmd;
mod dictionary_cmd;
mod embed;
mod model_cmd;
mod progress;
mod run_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    Train(dictionary_cmd::TrainArgs),
    /// Evaluate a dictionary on an activation set (MSE, FVE, L0, dead/dense, density).
    Eval(dictionary_cmd::EvalArgs),
    /// Encode an activation set into a sparse code set.
    Encode(dictionary_cmd::EncodeArgs),
    /// Run a whole study from one file (embed → train → encode → analyze), resumably.
    Run(run_cmd::RunArgs),
    /// Test which GO terms, Pfam families and residue concepts units stand for; write the atlas.
    Analyze(analyze_cmd::AnalyzeArgs),
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
        Command::Model(cmd) => model_cmd::run(cmd),
        Command::Embed(args) => embed::run(args),
        Command::Train(args) => dictionary_cmd::train(args),
        Command::Eval(args) => dictionary_cmd::eval(args),
        Command::Encode(args) => dictionary_cmd::encode_cmd(args),
        Command::Analyze(args) => analyze_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
    }
}

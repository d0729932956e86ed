//! `plmscope serve`: the web atlas. Parsing and wiring only; the server is `plmscope_web`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use plmscope_web::{AppState, ServeOptions};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Atlases written by `plmscope analyze` (opened read-only).
    #[arg(required = true)]
    atlases: Vec<PathBuf>,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind; loopback unless you mean to share the atlas on a network.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// ESM2 checkpoint for the "your sequence" page (needs --sae).
    #[arg(long, requires = "sae")]
    model: Option<String>,
    /// The dictionary: live encoding with --model, and decoder-cosine neighbours of features.
    #[arg(long)]
    sae: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let options = ServeOptions {
        atlases: args.atlases,
        model: args.model,
        sae: args.sae,
    };
    let state = AppState::load(&options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let address = listener.local_addr()?;
        println!(
            "serving {} atlas(es) on http://{address}/",
            state.atlases.len()
        );
        plmscope_web::serve(listener, state)
            .await
            .context("serving")
    })
}

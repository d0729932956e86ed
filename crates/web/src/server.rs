//! The server: state loaded at startup, routes, and the guard that answers malformed query
//! strings with 400 before any handler sees them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::atlas::Atlas;
use crate::error::{WebError, WebResult};
use crate::flow::FlowGraph;
use crate::index::Index;
use crate::live::Live;
use crate::pages;
use crate::similar::{decoder_neighbours, Neighbour};

/// What `plmscope serve` was given.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Atlas files, served as `/a/0`, `/a/1`, ...
    pub atlases: Vec<PathBuf>,
    /// ESM2 checkpoint for the "your sequence" page (with `sae`).
    pub model: Option<String>,
    /// Dictionary: live encoding (with `model`) and decoder-cosine neighbours.
    pub sae: Option<PathBuf>,
}

/// Everything the handlers read; built once, shared read-only.
pub struct AppState {
    pub atlases: Vec<Atlas>,
    pub(crate) index: Index,
    pub(crate) live: Option<Live>,
    /// Decoder-cosine neighbours from `--sae`, per atlas whose feature count matches it.
    pub(crate) similar: HashMap<usize, Arc<Vec<Vec<Neighbour>>>>,
    pub(crate) compare: Vec<pages::compare::AtlasSummary>,
    /// `plmscope compare`'s rows (plmscope_interpret::compare) in atlas order, and its report,
    /// when they could be computed.
    pub(crate) compare_rows: Option<Vec<plmscope_interpret::compare::AtlasComparison>>,
    pub(crate) compare_full: Option<String>,
    /// Links between features of different dictionaries (`flow_links`).
    pub(crate) flow: FlowGraph,
}

/// Neighbours kept per feature.
const NEIGHBOURS: usize = 10;

impl AppState {
    /// Opens every atlas read-only and builds the in-memory index.
    pub fn load(options: &ServeOptions) -> WebResult<AppState> {
        if options.atlases.is_empty() {
            return Err(WebError::BadRequest("give at least one atlas".into()));
        }
        let atlases = options
            .atlases
            .iter()
            .enumerate()
            .map(|(i, p)| Atlas::open(i, p))
            .collect::<WebResult<Vec<_>>>()?;
        let index = Index::build(&atlases)?;
        let dictionary =
            match &options.sae {
                Some(path) => Some(plmscope_sae::io::load(path).map_err(|e| {
                    WebError::input(path, format!("cannot load the dictionary: {e}"))
                })?),
                None => None,
            };
        let mut similar = HashMap::new();
        let mut users = Vec::new();
        if let (Some(d), Some(path)) = (&dictionary, &options.sae) {
            let level = if d.meta.source.level == Some(plmscope_store::Level::Protein) {
                "protein"
            } else {
                "residue"
            };
            let same_size = atlases
                .iter()
                .filter(|a| a.level == level && a.feature_units() == Some(d.d_sae))
                .count();
            users = atlases
                .iter()
                .filter(|a| a.uses_dictionary(path, d.d_sae, level, same_size == 1))
                .map(|a| a.id)
                .collect();
            if !users.is_empty() {
                let neighbours = Arc::new(decoder_neighbours(&d.w_dec, d.d_sae, NEIGHBOURS));
                for &a in &users {
                    similar.insert(a, neighbours.clone());
                }
            }
        }
        let live = match (&options.model, dictionary) {
            (Some(model), Some(dictionary)) => {
                Some(Live::load(model, dictionary, users.first().copied())?)
            }
            (Some(_), None) => {
                return Err(WebError::BadRequest(
                    "--model needs --sae (the dictionary to encode with)".into(),
                ))
            }
            _ => None,
        };
        let compare = atlases
            .iter()
            .map(pages::compare::summarise)
            .collect::<WebResult<Vec<_>>>()?;
        // The richer report of `plmscope compare` (FVE, L0, GO depth...); it needs each atlas's
        // GO OBO, so it is optional: the summary table is always there.
        let compare_rows = match plmscope_interpret::compare::compare_atlases(&options.atlases) {
            Ok(rows) => Some(rows),
            Err(e) => {
                eprintln!("compare: no full report ({e}); /compare shows the summary table");
                None
            }
        };
        let compare_full = compare_rows
            .as_deref()
            .map(plmscope_interpret::compare::to_html);
        let flow = FlowGraph::load(&atlases, compare_rows.as_deref().unwrap_or(&[]))?;
        Ok(AppState {
            atlases,
            index,
            live,
            similar,
            compare,
            compare_rows,
            compare_full,
            flow,
        })
    }

    pub(crate) fn atlas(&self, id: usize) -> WebResult<&Atlas> {
        self.atlases
            .get(id)
            .ok_or_else(|| WebError::NotFound(format!("no atlas {id}")))
    }
}

type Shared = State<Arc<AppState>>;

/// Runs a page builder off the async threads.
async fn blocking(
    state: Arc<AppState>,
    f: impl FnOnce(&AppState) -> WebResult<String> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&state)).await {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => WebError::Internal("the page builder panicked".into()).into_response(),
    }
}

async fn home(State(s): Shared) -> Response {
    blocking(s, pages::home).await
}

async fn list(
    State(s): Shared,
    Path(atlas): Path<usize>,
    Query(q): Query<pages::list::ListQuery>,
) -> Response {
    blocking(s, move |s| pages::list::render(s, atlas, &q)).await
}

async fn unit(State(s): Shared, Path((atlas, unit)): Path<(usize, i64)>) -> Response {
    blocking(s, move |s| pages::feature::render(s, atlas, unit)).await
}

async fn protein(State(s): Shared, Path((atlas, accession)): Path<(usize, String)>) -> Response {
    blocking(s, move |s| pages::protein::render(s, atlas, &accession)).await
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(State(s): Shared, Query(q): Query<SearchQuery>) -> Response {
    blocking(s, move |s| pages::search(s, &q.q)).await
}

async fn compare(State(s): Shared) -> Response {
    blocking(s, pages::compare::render).await
}

async fn flow(State(s): Shared, Query(q): Query<pages::flow::FlowQuery>) -> Response {
    blocking(s, move |s| pages::flow::render(s, &q)).await
}

async fn compare_full(State(s): Shared) -> Response {
    match &s.compare_full {
        Some(html) => Html(html.clone()).into_response(),
        None => WebError::NotFound("the full comparison could not be computed at startup".into())
            .into_response(),
    }
}

async fn sequence_form(State(s): Shared) -> Response {
    blocking(s, |s| pages::sequence::render(s, None)).await
}

#[derive(Deserialize)]
struct SequenceForm {
    sequence: String,
}

async fn sequence_post(State(s): Shared, Form(f): Form<SequenceForm>) -> Response {
    blocking(s, move |s| pages::sequence::render(s, Some(&f.sequence))).await
}

async fn not_found() -> Response {
    WebError::NotFound("no such page".into()).into_response()
}

/// Percent escapes must be `%XX`, the decoded text UTF-8 without control characters other
/// than tab and line breaks.
pub(crate) fn check_encoded(raw: &str) -> Result<(), String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                match value {
                    Some(v) => decoded.push(v),
                    None => return Err(format!("bad percent-encoding at byte {i}")),
                }
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| "the query is not UTF-8".to_string())?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err("control characters (NUL...) are not allowed".into());
    }
    Ok(())
}

async fn guard(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let checked = check_encoded(uri.path()).and_then(|_| uri.query().map_or(Ok(()), check_encoded));
    if let Err(message) = checked {
        return WebError::BadRequest(message).into_response();
    }
    next.run(request).await
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/a/{atlas}", get(list))
        .route("/a/{atlas}/unit/{unit}", get(unit))
        .route("/a/{atlas}/protein/{accession}", get(protein))
        .route("/search", get(search))
        .route("/compare", get(compare))
        .route("/compare/full", get(compare_full))
        .route("/flow", get(flow))
        .route("/sequence", get(sequence_form).post(sequence_post))
        .fallback(not_found)
        .layer(middleware::from_fn(guard))
        .with_state(state)
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(Arc::new(state))).await
}

/// Starts the server on `127.0.0.1:0` in a thread of its own (tests and benchmarks) and
/// returns its address.
pub fn spawn_on_loopback(state: AppState) -> std::io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(listener) => {
                    let _ = tx.send(listener.local_addr());
                    let _ = serve(listener, state).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    rx.recv()
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

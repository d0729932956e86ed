//! The web atlas behind `plmscope serve`: browse one or more SQLite atlases written by
//! `plmscope analyze` in a browser.
//!
//! This crate owns the HTTP server (axum, HTTP/1.1, loopback by default), the pages
//! (server-rendered HTML, inline SVG, a few lines of vanilla JavaScript; no front-end build), the
//! in-memory search and sort index built at startup (plain data, read without a lock; the
//! atlases themselves are opened `SQLITE_OPEN_READ_ONLY` and never written), residue tracks
//! read from the code and activation sets an atlas names in its `meta.inputs`, live encoding
//! of a pasted sequence (`--model` + `--sae`), and decoder-cosine neighbours of features
//! ([`similar`]), which `analyze` may also store in an atlas as a `similar_units` table.
//!
//! Pages: `/` (atlases), `/a/{atlas}` (features, sort and filter), `/a/{atlas}/unit/{unit}`,
//! `/a/{atlas}/protein/{accession}`, `/search?q=`, `/compare`, `/flow` (links between layers'
//! features stored by `plmscope flow`, and the GO depth profile by layer), `/sequence`.
//!
//! ```no_run
//! use plmscope_web::{AppState, ServeOptions};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ServeOptions { atlases: vec!["runs/t6/atlas/l6.sqlite".into()], ..Default::default() };
//! let state = AppState::load(&options)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! plmscope_web::serve(listener, state).await?;
//! # Ok(()) }
//! ```

mod atlas;
mod error;
mod flow;
mod html;
mod index;
mod live;
mod pages;
mod server;
pub use plmscope_interpret::similar;
pub mod synthetic;
mod tracks;

pub use atlas::Atlas;
pub use error::{WebError, WebResult};
pub use server::{router, serve, spawn_on_loopback, AppState, ServeOptions};

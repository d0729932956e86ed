//! Data in and out of plmscope: Parquet exports of atlases and sets, for DuckDB, Polars or
//! Spark, and imports of embeddings made by other tools (fair-esm `extract.py`, HDF5 files of
//! the bio_embeddings / ProtT5 / Ankh scripts, NumPy `.npy`) as activation sets, so
//! dictionaries can be trained and analysed on them.
//!
//! ```no_run
//! use std::path::Path;
//! use plmscope_exchange::{export_atlas, export_set};
//! # fn main() -> Result<(), plmscope_exchange::ExchangeError> {
//! // runs/x/atlas.sqlite → runs/x/parquet/{units,enrichment,...}.parquet
//! export_atlas(Path::new("runs/x/atlas.sqlite"), Path::new("runs/x/parquet"))?;
//! // an activation set → proteins.parquet + activations.parquet (protein, position, unit, value)
//! export_set(Path::new("runs/x/acts/layer6"), None, Path::new("runs/x/acts-parquet"))?;
//! # Ok(()) }
//! ```
//!
//! Nothing here knows what the numbers mean: an export writes what the store and the atlas
//! hold, and an import writes an activation set the rest of the pipeline reads like any other.

mod error;
pub mod export;
pub mod parquet;

pub use error::{ExchangeError, Result};
pub use export::{export, ExportRequest, Exported};
pub use parquet::{export_atlas, export_set, SetExport};
pub mod import;

pub use import::{import, ImportFormat, ImportRequest, ImportSummary};

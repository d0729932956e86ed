//! Activation sets and sparse code sets on disk: manifest, safetensors shards written atomically
//! and resumably, memory-mapped readers, and a seeded shuffling stream for training.
//!
//! An **activation set** is a directory:
//! - `manifest.json`: format `plmscope.activations`, version 1, model, layer, site, level,
//!   d_model, dtype, proteins_per_shard, total_proteins, shards (file, rows, proteins,
//!   first_protein, sha256), `complete`, extra;
//! - `proteins.tsv`: `index id length shard first_row rows` (first_row within the shard);
//! - `shard-NNNNN.safetensors`: `activations` `[rows, d_model]` (f32/f16/bf16); at residue level
//!   also `protein` and `position` `[rows]` u32. Each shard also lists its proteins' ids and
//!   lengths in `__metadata__["proteins"]`, so a resumed run can rebuild `proteins.tsv`.
//!
//! Every file is written under a temporary name, fsynced and renamed, so `kill -9` never leaves
//! a partial file under a final name; a rerun resumes and the finished set is byte-identical to
//! one written in a single run (no timestamps, fixed key order).
//!
//! A **code set** holds a dictionary's sparse codes for every row, as CSR, one shard per
//! activation shard (see [`codes`]).
//!
//! ```no_run
//! use plmscope_store::*;
//! # fn main() -> Result<(), StoreError> {
//! let header = SetHeader {
//!     model: ModelRef { id: "facebook/esm2_t6_8M_UR50D".into(), arch: "esm2_t6_8M".into(),
//!                       weights_sha256: "ab12...".into() },
//!     layer: 4, site: Site::ResidPost, level: Level::Residue, d_model: 320,
//!     dtype: StorageDtype::F16, proteins_per_shard: 1000, total_proteins: 1,
//!     extra: serde_json::json!({}),
//! };
//! let dir = std::path::Path::new("acts/l4");
//! let mut writer = ActivationSetWriter::create_or_resume(dir, header)?;
//! if !writer.is_shard_complete(0) {
//!     let proteins = [ProteinEntry { id: "P1".into(), length: 2 }];
//!     writer.write_shard(0, &proteins, &vec![0.0; 2 * 320])?;
//! }
//! writer.finish(serde_json::json!({ "skipped": [] }))?;
//!
//! let set = ActivationSet::open(dir)?;
//! let (train, _validation) = split_by_protein(set.proteins().len(), 0.1, 42);
//! let config = ShuffleConfig { batch_size: 4096, buffer_rows: 1 << 18, seed: 42 };
//! let mut stream = ShuffledRows::new(vec![&set], train, config)?;
//! let batch = stream.next_batch()?; // batch.data[0] is [rows, 320] f32
//! # let _ = batch; Ok(()) }
//! ```

mod activations;
pub mod codes;
mod convert;
mod error;
mod fsio;
mod header;
mod shardset;
mod shuffle;
mod split;
mod st;

pub use activations::{
    shard_file_name, ActivationManifest, ActivationSet, ActivationSetWriter, ProteinEntry,
    ProteinRecord, ShardRecord, ACTIVATIONS_FORMAT, ACTIVATIONS_VERSION, MANIFEST_FILE,
    PROTEINS_FILE, PROTEINS_TSV_HEADER,
};
pub use codes::{CodeSet, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef};
pub use error::StoreError;
pub use header::{Level, ModelRef, SetHeader, Site, StorageDtype};
pub use shuffle::{Batch, ShuffleConfig, ShuffleState, ShuffledRows};
pub use split::split_by_protein;

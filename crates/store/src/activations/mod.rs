//! Activation sets: a directory of safetensors shards plus `manifest.json` and `proteins.tsv`.

mod manifest;
mod reader;
mod table;
mod writer;

pub use manifest::{
    shard_file_name, ActivationManifest, ProteinEntry, ShardRecord, ACTIVATIONS_FORMAT,
    ACTIVATIONS_VERSION, MANIFEST_FILE, PROTEINS_FILE,
};
pub use reader::ActivationSet;
pub use table::{ProteinRecord, PROTEINS_TSV_HEADER};
pub use writer::ActivationSetWriter;

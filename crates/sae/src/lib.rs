//! Sparse dictionaries (SAEs and transcoders) for protein language model activations:
//! architectures (TopK, BatchTopK, ReLU-L1, JumpReLU), training with a sparse backward,
//! evaluation metrics, and checkpoint exchange with SAELens, sparsify, InterProt, InterPLM
//! (`ae.pt`) and the seed paper's Lightning `.ckpt`.
//!
//! ```no_run
//! use plmscope_sae::{io, metrics, trainer::{InMemoryBatches, TrainConfig, Trainer}};
//! # fn main() -> plmscope_sae::Result<()> {
//! # let rows: Vec<f32> = vec![0.0; 320 * 8192];
//! let mut batches = InMemoryBatches::new(rows.clone(), 320, None, 4096, 0)?;
//! let mut trainer = Trainer::new(TrainConfig::topk(320, 10240, 32))?;
//! trainer.train(&mut batches, 100, |_, _| {})?;
//! let dictionary = trainer.to_dictionary();
//! io::save(&dictionary, std::path::Path::new("sae-l6"))?;
//! let loaded = io::load(std::path::Path::new("sae-l6"))?;
//! metrics::check_fvu(&loaded, &rows[..320 * 512], None)?; // refuses a wrong layer
//! let codes = loaded.encode(&rows[..320 * 4])?;            // CSR: row_ptr, feature, value
//! # Ok(()) }
//! ```

pub mod architecture;
pub mod checkpoint_group;
pub mod code_sets;
mod csr;
pub mod dictionary;
mod error;
pub mod io;
mod kernels;
pub mod metrics;
pub mod record;
pub mod store_source;
pub mod trainer;

pub use architecture::{Architecture, Kind, REGISTRY};
pub use dictionary::{
    Dictionary, DictionaryMeta, InputNorm, RecordedMetrics, RowNorm, SiteRef, SparseCodes,
};
pub use error::{check_rows, Result, SaeError};
pub use record::{EvaluationSummary, SetIdentity, TrainingRecord, ValidationSplit};

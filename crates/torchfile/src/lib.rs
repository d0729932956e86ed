//! A safe reader for PyTorch's zip checkpoints (`torch.save` since torch 1.6: HF
//! `pytorch_model.bin`, fair-esm `.pt`, bare `state_dict`s such as InterPLM's `ae.pt`,
//! Lightning `.ckpt`). This crate owns the format, and nothing about what the tensors mean: it
//! is shared by the model crate (ESM2 weights) and the sae crate (foreign dictionaries).
//!
//! It runs just enough of the pickle machine to rebuild nested dicts, lists, tuples, scalars
//! (int, float, bool, str) and tensors (`_rebuild_tensor_v2` over persistent storages); any
//! other object becomes a [`Value::Object`] that keeps only its class name and the dict items or
//! state it was given. Nothing is imported or executed, so an untrusted checkpoint cannot run
//! code, and every size it claims (string lengths, nesting, memo copies, tensor shapes, strides
//! and offsets) is checked against the file before anything is allocated: any byte string
//! gives `Ok` or `Err`, never a panic.
//!
//! ```no_run
//! use plmscope_torchfile::read_torch_zip;
//! let bytes = std::fs::read("ae.pt").unwrap();
//! let ckpt = read_torch_zip(&bytes).unwrap();
//! let k = ckpt.tensor("k").and_then(|t| t.scalar_i64());
//! let hp = ckpt.root.get("hyper_parameters").and_then(|h| h.get("k")).and_then(|v| v.as_i64());
//! # let _ = (k, hp);
//! ```
//!
//! [`index_torch_zip`] reads only the structure, so that a memory-mapped archive can be read
//! one tensor at a time ([`TorchIndex::read`], [`gather`]).

mod archive;
mod value;
pub mod vm;

pub use archive::{
    check_view, gather, index_torch_zip, read_torch_zip, StorageData, TorchIndex,
    MAX_BROADCAST_ELEMENTS, MAX_INFLATED_STORAGE, MAX_NAME_BYTES, MAX_PICKLE_BYTES,
};
pub use value::{StorageKind, Tensor, TensorData, TensorRef, TorchCheckpoint, Value};

/// An error reading a torch checkpoint: the archive, the pickle program or a storage is
/// malformed. The message names the tensor or archive entry involved; the caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PickleError(pub String);

/// Runs a bare pickle program (no zip around it) and returns its top object; for fuzzing the
/// machine alone.
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    vm::unpickle(data).map_err(PickleError)
}

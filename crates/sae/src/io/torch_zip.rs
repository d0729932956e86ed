//! Torch zip checkpoints (`torch.save`): recognised by content, read with plmscope-torchfile's
//! no-execution unpickler, and handed to the InterPLM or Lightning reader by the keys inside.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use plmscope_torchfile::{read_torch_zip, StorageKind, Tensor, TorchCheckpoint, Value};

use super::{interplm, lightning};
use crate::dictionary::Dictionary;
use crate::error::{Result, SaeError};

/// What the first bytes of a file say it is.
pub(crate) enum FileKind {
    /// A zip archive: `torch.save` since torch 1.6 (`data.pkl` + `data/<storage>`).
    TorchZip,
    /// The pre-1.6 format (`_use_new_zipfile_serialization=False`): a bare pickle stream that
    /// opens with torch's magic number (PROTO 2, LONG1 of 10 bytes).
    LegacyPickle,
    /// Anything else (safetensors starts with its little-endian header length).
    Other,
}

pub(crate) fn sniff(path: &Path) -> Result<FileKind> {
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| SaeError::io(path, e))?;
    let n = file.read(&mut head).map_err(|e| SaeError::io(path, e))?;
    Ok(match &head[..n] {
        [b'P', b'K', 3, 4] => FileKind::TorchZip,
        [0x80, 2, 0x8a, 10] => FileKind::LegacyPickle,
        _ => FileKind::Other,
    })
}

/// Reads a torch zip checkpoint and picks the reader from its keys: a root with `state_dict`
/// is a Lightning checkpoint, a root holding `encoder.weight` an InterPLM/dictionary_learning
/// `ae.pt`. Anything else is refused with the keys found.
pub(crate) fn load(path: &Path) -> Result<Dictionary> {
    let ckpt = read(path)?;
    if ckpt.root.get("state_dict").is_some() {
        return lightning::from_checkpoint(path, &ckpt);
    }
    if ckpt.tensor("encoder.weight").is_some() {
        return interplm::from_state_dict(
            StateDict::new(path, &ckpt, ""),
            &interplm::InterplmOptions::default(),
        );
    }
    Err(unknown_torch_layout(path, &ckpt.root))
}

pub(crate) fn read(path: &Path) -> Result<TorchCheckpoint> {
    let bytes = std::fs::read(path).map_err(|e| SaeError::io(path, e))?;
    read_torch_zip(&bytes)
        .map_err(|e| SaeError::tensors(path, format!("unreadable torch checkpoint: {e}")))
}

pub(crate) fn unknown_torch_layout(path: &Path, root: &Value) -> SaeError {
    let found = match root {
        Value::Object { module, name, .. } => format!(
            "a pickled {module}.{name} object with fields {}; save its state_dict() instead",
            root.keys().join(", ")
        ),
        _ => format!("keys found: {}", root.keys().join(", ")),
    };
    SaeError::UnsupportedFormat {
        path: path.to_path_buf(),
        message: format!(
            "unknown torch checkpoint layout; {found}. Known: InterPLM ae.pt (encoder.weight, \
             decoder.weight with bias | b_dec + k | decoder.bias + threshold), Rep Lightning \
             .ckpt (state_dict with model.weights.0..3, hyper_parameters.k)"
        ),
    }
}

/// The tensors of one `state_dict` inside a checkpoint, by key, with shape-checked access.
pub(crate) struct StateDict {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    /// Every key of the dict, tensors or not, sorted, for error messages.
    pub keys: Vec<String>,
}

impl StateDict {
    /// The tensors whose dotted name starts with `prefix` (e.g. `state_dict.`), prefix removed.
    pub fn new(path: &Path, ckpt: &TorchCheckpoint, prefix: &str) -> Self {
        let tensors: HashMap<String, Tensor> = ckpt
            .tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(prefix).map(|n| (n.to_string(), t.clone())))
            .collect();
        let dict = match prefix.strip_suffix('.') {
            Some(p) if !p.is_empty() => ckpt.root.get(p),
            _ => Some(&ckpt.root),
        };
        let mut keys: Vec<String> = dict
            .map(|d| d.keys().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        keys.sort();
        StateDict {
            path: path.to_path_buf(),
            tensors,
            keys,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn key_list(&self) -> String {
        self.keys.join(", ")
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| {
            SaeError::tensors(
                &self.path,
                format!("missing tensor {name}; keys found: {}", self.key_list()),
            )
        })
    }

    /// Tensor `name` as f32, checking its shape.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(SaeError::tensors(
                &self.path,
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape),
            ));
        }
        Ok(t.to_f32())
    }

    /// Tensor `name` [rows, cols] (nn.Linear's [out, in]) transposed to row-major [cols, rows].
    pub fn f32_transposed(&self, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>> {
        let src = self.f32(name, &[rows, cols])?;
        let mut out = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                out[c * rows + r] = src[r * cols + c];
            }
        }
        Ok(out)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// A one-element tensor's value; `what` says which kind of value was expected.
    pub fn scalar<T>(&self, name: &str, what: &str, read: fn(&Tensor) -> Option<T>) -> Result<T> {
        let t = self.get(name)?;
        read(t).ok_or_else(|| {
            SaeError::tensors(
                &self.path,
                format!(
                    "tensor {name} should be a one-element {what} tensor, found {:?} of shape {:?}",
                    t.dtype, t.shape
                ),
            )
        })
    }

    /// The file's storage type of `name`, for the record (`float32`, `bfloat16`...).
    pub fn dtype_name(&self, name: &str) -> &'static str {
        match self.tensors.get(name).map(|t| t.dtype) {
            Some(StorageKind::F16) => "float16",
            Some(StorageKind::BF16) => "bfloat16",
            Some(StorageKind::F64) => "float64",
            _ => "float32",
        }
    }
}

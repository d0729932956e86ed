//! Reading and writing named tensors in safetensors files, with dtype conversion to f32.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Result, SaeError};

/// A tensor read as f32, with its shape and the dtype it had in the file.
pub(crate) struct LoadedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// All tensors of a safetensors file, converted to f32 (from f32, f16, bf16 or f64).
pub(crate) struct TensorFile {
    pub path: std::path::PathBuf,
    pub tensors: HashMap<String, LoadedTensor>,
    /// dtype of the first floating tensor, as the file has it (e.g. "BF16").
    pub dtype: String,
    /// Integer tensors kept as u64 (e.g. dead-latent counters).
    pub integers: HashMap<String, Vec<u64>>,
}

impl TensorFile {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| SaeError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| SaeError::tensors(path, format!("not a safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        let mut integers = HashMap::new();
        let mut dtype = String::from("float32");
        let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
        names.sort();
        for name in &names {
            let view = st
                .tensor(name)
                .map_err(|e| SaeError::tensors(path, format!("tensor {name}: {e}")))?;
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
                Dtype::U64 | Dtype::I64 => {
                    let v = raw
                        .chunks_exact(8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                        .collect();
                    integers.insert(name.clone(), v);
                    continue;
                }
                other => {
                    return Err(SaeError::tensors(
                        path,
                        format!("tensor {name} has unsupported dtype {other:?}"),
                    ))
                }
            };
            if tensors.is_empty() {
                dtype = dtype_name(view.dtype()).to_string();
            }
            tensors.insert(
                name.clone(),
                LoadedTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(TensorFile {
            path: path.to_path_buf(),
            tensors,
            dtype,
            integers,
        })
    }

    /// Names found, sorted, for error messages.
    pub fn names(&self) -> String {
        let mut n: Vec<&str> = self
            .tensors
            .keys()
            .chain(self.integers.keys())
            .map(|s| s.as_str())
            .collect();
        n.sort();
        n.join(", ")
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Removes and returns tensor `name`, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let names = self.names();
        let t = self.tensors.remove(name).ok_or_else(|| {
            SaeError::tensors(&self.path, format!("missing tensor {name}; found: {names}"))
        })?;
        if t.shape != shape {
            return Err(SaeError::tensors(
                &self.path,
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape),
            ));
        }
        Ok(t.data)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        Dtype::F64 => "float64",
        _ => "float32",
    }
}

/// A tensor to write: f32 or u64 data with a shape.
pub(crate) enum OutTensor<'a> {
    F32(&'a [f32], Vec<usize>),
    U64(&'a [u64], Vec<usize>),
}

/// Writes tensors to `path` atomically (temporary file, then rename).
pub(crate) fn write_tensors(
    path: &Path,
    tensors: Vec<(String, OutTensor)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, t)| match t {
            OutTensor::F32(d, s) => (
                name,
                Dtype::F32,
                s,
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            OutTensor::U64(d, s) => (
                name,
                Dtype::U64,
                s,
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (name, dtype, shape, data) in &bytes {
        let view = TensorView::new(*dtype, shape.clone(), data)
            .map_err(|e| SaeError::tensors(path, format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let out = safetensors::serialize(views, metadata)
        .map_err(|e| SaeError::tensors(path, e.to_string()))?;
    write_atomic(path, &out)
}

/// Writes `bytes` to a temporary sibling of `path`, fsyncs and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    plmscope_fsutil::write_atomic(path, bytes).map_err(|e| SaeError::io(e.path, e.source))
}

//! Safetensors files written as a stream and read through a memory map.
//!
//! The header is built with safetensors' own `Metadata` (same tensor order as
//! `safetensors::serialize`: larger dtypes first, then by name), and the tensor bytes are then
//! streamed from the caller's `f32` slices, so writing a shard never holds a second copy of it.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

use crate::fsio::write_atomic;
use crate::StoreError;

/// Bytes of the little-endian header length that opens every safetensors file.
const LEN_BYTES: usize = 8;

/// Writes exactly a tensor's bytes.
pub(crate) type EmitBytes<'a> = Box<dyn Fn(&mut dyn Write) -> std::io::Result<()> + 'a>;

/// One tensor to write: its description and a closure that writes exactly its bytes.
pub(crate) struct TensorSpec<'a> {
    pub name: &'static str,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub emit: EmitBytes<'a>,
}

impl TensorSpec<'_> {
    fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.bitsize() / 8
    }
}

/// Counts bytes so a closure that writes the wrong amount is caught before the rename.
struct CountingWriter<'w> {
    inner: &'w mut dyn Write,
    written: usize,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a safetensors file atomically and returns its sha256 (hex). `metadata` becomes the
/// `__metadata__` map; at most one entry keeps the bytes deterministic (it is a hash map).
pub(crate) fn write_safetensors(
    path: &Path,
    mut tensors: Vec<TensorSpec<'_>>,
    metadata: Option<(String, String)>,
) -> Result<String, StoreError> {
    tensors.sort_by(|a, b| b.dtype.cmp(&a.dtype).then(a.name.cmp(b.name)));
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for tensor in &tensors {
        let len = tensor.byte_len();
        infos.push((
            tensor.name.to_string(),
            TensorInfo {
                dtype: tensor.dtype,
                shape: tensor.shape.clone(),
                data_offsets: (offset, offset + len),
            },
        ));
        offset += len;
    }
    let metadata_map = metadata.map(|(k, v)| HashMap::from([(k, v)]));
    let header = Metadata::new(metadata_map, infos)
        .map_err(|e| StoreError::Safetensors {
            path: path.to_path_buf(),
            source: e,
        })
        .and_then(|m| serde_json::to_vec(&m).map_err(|e| StoreError::shard(path, e.to_string())))?;
    let mut header = header;
    // Same padding as safetensors::serialize: data starts 8-byte aligned.
    header.resize(header.len().next_multiple_of(LEN_BYTES), b' ');

    write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        for tensor in &tensors {
            let mut counter = CountingWriter {
                inner: w,
                written: 0,
            };
            (tensor.emit)(&mut counter)?;
            if counter.written != tensor.byte_len() {
                return Err(std::io::Error::other(format!(
                    "tensor {} wrote {} bytes, expected {}",
                    tensor.name,
                    counter.written,
                    tensor.byte_len()
                )));
            }
        }
        Ok(())
    })
}

/// The parsed header of a safetensors file held in memory (usually a memory map).
pub(crate) struct ParsedHeader {
    data_start: usize,
    metadata: Metadata,
}

impl ParsedHeader {
    /// Parses and validates the header; fails when the file is shorter or longer than the header
    /// says (a truncated shard).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, StoreError> {
        let (n, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
            StoreError::Safetensors {
                path: path.to_path_buf(),
                source: e,
            }
        })?;
        Ok(ParsedHeader {
            data_start: LEN_BYTES + n,
            metadata,
        })
    }

    /// Byte range of tensor `name` in the file, after checking its dtype and shape.
    pub fn tensor(
        &self,
        path: &Path,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
    ) -> Result<Range<usize>, StoreError> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| StoreError::shard(path, format!("no tensor named {name:?}")))?;
        if info.dtype != dtype || info.shape != shape {
            return Err(StoreError::shard(
                path,
                format!(
                    "tensor {name:?} is {:?} {:?}, expected {dtype:?} {shape:?}",
                    info.dtype, info.shape
                ),
            ));
        }
        let (start, end) = info.data_offsets;
        Ok(self.data_start + start..self.data_start + end)
    }

    /// Shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata.info(name).map(|i| i.shape.as_slice())
    }

    /// A `__metadata__` entry.
    pub fn metadata_entry(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }
}

/// Memory-maps a file read-only.
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap, StoreError> {
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    // SAFETY: the set's files are written once under a temporary name and renamed into place;
    // nothing in plmscope modifies a final file in place, so the mapped bytes do not change.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| StoreError::io(path, e))
}

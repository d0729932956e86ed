//! The zip side of a torch checkpoint: find `data.pkl` and the storages under `data/`, check
//! every tensor view against the bytes its storage really has, and read views out.

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use crate::value::{StorageKind, Tensor, TensorData, TensorRef, TorchCheckpoint, Value};
use crate::vm::unpickle;
use crate::PickleError;

/// Largest `data.pkl` read when it is compressed (torch stores it uncompressed; real ones are
/// kilobytes to a few megabytes).
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;
/// Largest storage inflated when an archive compresses one (torch never does).
pub const MAX_INFLATED_STORAGE: u64 = 4 << 30;
/// A view may repeat storage elements (stride 0, as `expand` makes) up to this many elements in
/// all; past that it may not have more elements than its storage.
pub const MAX_BROADCAST_ELEMENTS: usize = 1 << 24;
/// Longest dotted tensor name accepted.
pub const MAX_NAME_BYTES: usize = 4096;

/// Where a storage's bytes are.
#[derive(Debug, Clone)]
pub enum StorageData {
    /// This byte range of the archive (a stored, uncompressed entry: what `torch.save` writes).
    InArchive(Range<usize>),
    /// A compressed entry, inflated.
    Inflated(Arc<[u8]>),
}

/// A checkpoint's structure without its tensor values: the root object, every tensor view
/// (checked to lie inside its storage) and where each storage's bytes are. Reading values is
/// left to the caller, so a memory-mapped archive can be read one tensor at a time.
#[derive(Debug, Clone)]
pub struct TorchIndex {
    pub root: Value,
    /// Dotted names (as in [`TorchCheckpoint::tensors`]) in pickle order; storages this reader
    /// cannot convert (complex, quantized) are left out.
    pub tensors: Vec<(String, TensorRef)>,
    pub storages: HashMap<String, StorageData>,
}

impl TorchIndex {
    /// The bytes of storage `key`, given the archive this index was made from.
    pub fn storage<'a>(&'a self, archive: &'a [u8], key: &str) -> Option<&'a [u8]> {
        match self.storages.get(key)? {
            StorageData::InArchive(range) => archive.get(range.clone()),
            StorageData::Inflated(bytes) => Some(bytes),
        }
    }

    /// Tensor `t` (one of [`TorchIndex::tensors`]) read out of `archive`.
    pub fn read(&self, archive: &[u8], name: &str, t: &TensorRef) -> Result<Tensor, String> {
        let raw = self
            .storage(archive, &t.key)
            .ok_or_else(|| format!("tensor {name}: storage {} is not in the archive", t.key))?;
        let data = gather(raw, t).map_err(|e| format!("tensor {name}: {e}"))?;
        Ok(Tensor {
            dtype: t.dtype,
            shape: t.shape.clone(),
            data,
        })
    }
}

/// Reads a zip-format torch checkpoint held in memory: its root object and every tensor under
/// nested dicts. Any byte string gives `Ok` or `Err`, never a panic, and allocates at most a
/// small multiple of its length (see the limits in this module and [`crate::vm`]).
pub fn read_torch_zip(bytes: &[u8]) -> Result<TorchCheckpoint, PickleError> {
    let index = index_torch_zip(bytes)?;
    // Many names may view one storage (tied weights, or a crafted file repeating one tensor
    // through the memo); the total materialised stays within a multiple of the file.
    let budget = bytes
        .len()
        .saturating_mul(4)
        .saturating_add(MAX_BROADCAST_ELEMENTS);
    let mut total = 0usize;
    let mut tensors = Vec::with_capacity(index.tensors.len());
    for (name, t) in &index.tensors {
        total = total.saturating_add(t.shape.iter().product());
        if total > budget {
            return Err(PickleError(format!(
                "tensor {name}: the tensors hold over {budget} elements in all, more than \
                 a {}-byte archive can describe",
                bytes.len()
            )));
        }
        tensors.push((
            name.clone(),
            index.read(bytes, name, t).map_err(PickleError)?,
        ));
    }
    Ok(TorchCheckpoint {
        root: index.root,
        tensors,
    })
}

/// Unpickles a torch zip checkpoint's `data.pkl` and locates and checks its storages, without
/// reading tensor values.
pub fn index_torch_zip(bytes: &[u8]) -> Result<TorchIndex, PickleError> {
    build_index(bytes).map_err(PickleError)
}

fn build_index(bytes: &[u8]) -> Result<TorchIndex, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
        format!("not a zip-format torch checkpoint ({e}); re-save it with torch>=1.6 `torch.save`")
    })?;
    let pkl_name = archive
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or("no data.pkl inside the archive (is this a torch.save file?)")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let pkl = entry(&mut archive, bytes, &pkl_name, MAX_PICKLE_BYTES)?;
    let pkl_bytes = match &pkl {
        StorageData::InArchive(r) => &bytes[r.clone()],
        StorageData::Inflated(b) => b,
    };
    let root = unpickle(pkl_bytes).map_err(|e| format!("{pkl_name}: {e}"))?;
    let mut found = Vec::new();
    collect_tensors(&root, String::new(), &mut found)?;
    let mut storages: HashMap<String, StorageData> = HashMap::new();
    let mut tensors = Vec::with_capacity(found.len());
    for (name, t) in found {
        if t.dtype == StorageKind::Other {
            continue;
        }
        if !storages.contains_key(&t.key) {
            let file = format!("{prefix}data/{}", t.key);
            let data = entry(&mut archive, bytes, &file, MAX_INFLATED_STORAGE)
                .map_err(|e| format!("tensor {name}: storage {}: {e}", t.key))?;
            storages.insert(t.key.clone(), data);
        }
        let len = match &storages[&t.key] {
            StorageData::InArchive(r) => r.len(),
            StorageData::Inflated(b) => b.len(),
        };
        check_view(&t, len).map_err(|e| format!("tensor {name}: {e}"))?;
        tensors.push((name, t));
    }
    Ok(TorchIndex {
        root,
        tensors,
        storages,
    })
}

/// Where entry `name`'s bytes are: a range of `bytes` when stored, else inflated (at most
/// `limit` bytes).
fn entry(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    bytes: &[u8],
    name: &str,
    limit: u64,
) -> Result<StorageData, String> {
    let mut file = archive
        .by_name(name)
        .map_err(|e| format!("{name} in the archive: {e}"))?;
    if file.compression() == zip::CompressionMethod::Stored {
        let start = usize::try_from(file.data_start()).ok();
        let len = usize::try_from(file.compressed_size()).ok();
        let range = start
            .zip(len)
            .and_then(|(s, l)| Some(s..s.checked_add(l)?))
            .filter(|r| r.end <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "{name}: {} bytes from byte {} run past the end of the {}-byte archive",
                    file.compressed_size(),
                    file.data_start(),
                    bytes.len()
                )
            })?;
        return Ok(StorageData::InArchive(range));
    }
    if file.size() > limit {
        return Err(format!(
            "{name} inflates to {} bytes, over the {limit}-byte limit",
            file.size()
        ));
    }
    let mut out = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("{name} inflates past the {limit}-byte limit"));
    }
    Ok(StorageData::Inflated(out.into()))
}

fn collect_tensors(
    v: &Value,
    path: String,
    out: &mut Vec<(String, TensorRef)>,
) -> Result<(), String> {
    match v {
        Value::Tensor(t) => out.push((path, t.clone())),
        Value::Dict(items) => {
            for (k, val) in items {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                if p.len() > MAX_NAME_BYTES {
                    return Err(format!(
                        "a tensor name is longer than {MAX_NAME_BYTES} bytes ({}...)",
                        p.chars().take(60).collect::<String>()
                    ));
                }
                collect_tensors(val, p, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks that view `t` lies inside a storage of `storage_len` bytes, with checked arithmetic,
/// and returns its element count.
pub fn check_view(t: &TensorRef, storage_len: usize) -> Result<usize, String> {
    if t.stride.len() != t.shape.len() {
        return Err(format!(
            "shape {:?} and stride {:?} differ in rank",
            t.shape, t.stride
        ));
    }
    let held = storage_len / t.dtype.size();
    let describe = || {
        format!(
            "shape {:?} with stride {:?} at offset {} over storage {}, which holds {held} \
             {:?} elements ({storage_len} bytes)",
            t.shape, t.stride, t.offset, t.key, t.dtype
        )
    };
    let numel = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("{}: the element count overflows", describe()))?;
    if numel == 0 {
        return Ok(0);
    }
    t.shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &s)| {
            a.checked_add((d - 1).checked_mul(s)?)
        })
        .filter(|&last| last < held)
        .ok_or_else(|| format!("{}: the view reaches past the storage's end", describe()))?;
    if numel > held && numel > MAX_BROADCAST_ELEMENTS {
        return Err(format!(
            "{}: {numel} elements repeat a smaller storage (over {MAX_BROADCAST_ELEMENTS})",
            describe()
        ));
    }
    Ok(numel)
}

/// Materialises a strided tensor view as contiguous values of its family, after
/// [`check_view`].
pub fn gather(raw: &[u8], t: &TensorRef) -> Result<TensorData, String> {
    let numel = check_view(t, raw.len())?;
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&b[..N]);
        out
    }
    let f = |conv: fn(&[u8]) -> f32| TensorData::Float(collect(raw, t, numel, conv));
    let i = |conv: fn(&[u8]) -> i64| TensorData::Int(collect(raw, t, numel, conv));
    Ok(match t.dtype {
        StorageKind::F32 => f(|b| f32::from_le_bytes(arr(b))),
        StorageKind::F16 => f(|b| half::f16::from_le_bytes(arr(b)).to_f32()),
        StorageKind::BF16 => f(|b| half::bf16::from_le_bytes(arr(b)).to_f32()),
        StorageKind::F64 => f(|b| f64::from_le_bytes(arr(b)) as f32),
        StorageKind::I64 => i(|b| i64::from_le_bytes(arr(b))),
        StorageKind::I32 => i(|b| i32::from_le_bytes(arr(b)) as i64),
        StorageKind::I16 => i(|b| i16::from_le_bytes(arr(b)) as i64),
        StorageKind::I8 => i(|b| b[0] as i8 as i64),
        StorageKind::U8 => i(|b| b[0] as i64),
        StorageKind::Bool => TensorData::Bool(collect(raw, t, numel, |b| b[0] != 0)),
        StorageKind::Other => return Err("unsupported storage type".into()),
    })
}

/// The view's elements in row-major order; `t` must have passed [`check_view`] for `raw`.
fn collect<T>(raw: &[u8], t: &TensorRef, numel: usize, conv: impl Fn(&[u8]) -> T) -> Vec<T> {
    let size = t.dtype.size();
    // Row-major contiguous (dimensions of size 1 may carry any stride): one slice, no index
    // arithmetic per element. Every parameter `torch.save` writes is this case.
    let mut expect = 1usize;
    let contiguous = t.shape.iter().zip(&t.stride).rev().all(|(&d, &s)| {
        let ok = d == 1 || s == expect;
        expect = expect.saturating_mul(d);
        ok
    });
    if contiguous {
        let start = t.offset * size;
        return raw[start..start + numel * size]
            .chunks_exact(size)
            .map(conv)
            .collect();
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let off = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.push(conv(&raw[off * size..(off + 1) * size]));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(shape: &[usize], stride: &[usize], offset: usize) -> TensorRef {
        TensorRef {
            dtype: StorageKind::F32,
            key: "0".into(),
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    fn floats(raw: &[u8], t: &TensorRef) -> Vec<f32> {
        match gather(raw, t).unwrap() {
            TensorData::Float(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strided_and_contiguous_views_read_the_right_elements() {
        let raw: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
        // [3, 4] row-major, a transpose of it, and a column at offset 1.
        assert_eq!(floats(&raw, &view(&[3, 4], &[4, 1], 0))[5], 5.0);
        assert_eq!(
            floats(&raw, &view(&[4, 3], &[1, 4], 0))[..4],
            [0.0, 4.0, 8.0, 1.0]
        );
        assert_eq!(floats(&raw, &view(&[3], &[4], 1)), [1.0, 5.0, 9.0]);
        assert_eq!(floats(&raw, &view(&[2, 1], &[1, 99], 10)), [10.0, 11.0]);
    }

    #[test]
    fn views_outside_their_storage_are_refused() {
        let raw = [0u8; 48];
        let huge = 1usize << 30;
        let err = gather(&raw, &view(&[huge, huge], &[huge, 1], 0)).unwrap_err();
        assert!(
            err.contains("[1073741824, 1073741824]") && err.contains("past"),
            "{err}"
        );
        let err = gather(&raw, &view(&[huge, huge], &[0, 0], 0)).unwrap_err();
        assert!(err.contains("repeat a smaller storage"), "{err}");
        // Elements 4, 8 and 12 of a 12-element storage: the last is past the end.
        assert!(gather(&raw, &view(&[3], &[4], 1)).is_ok());
        assert!(gather(&raw, &view(&[3], &[4], 4)).is_err());
        assert!(gather(&raw, &view(&[usize::MAX, 2], &[1, 1], 0)).is_err());
        assert!(gather(&raw, &view(&[2], &[usize::MAX], 0)).is_err());
        assert!(gather(&raw, &view(&[2], &[1], usize::MAX)).is_err());
    }
}

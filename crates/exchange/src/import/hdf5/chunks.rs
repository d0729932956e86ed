//! Chunked data: the chunk index (v1 B-tree, single chunk, implicit) and each chunk's
//! filters (deflate, shuffle), copied into row-major order.

use std::io::Read;

use super::messages::{btree_v1, ChunkIndex, Chunked, DatasetInfo, Filter};
use super::parse::{slice, Cursor, Sizes, UNDEFINED};

/// Reads a chunked dataset into `bytes` bytes of row-major data.
pub fn read_chunked(
    map: &[u8],
    sizes: Sizes,
    d: &DatasetInfo,
    chunked: &Chunked,
    bytes: usize,
) -> Result<Vec<u8>, String> {
    let element = d.dtype.size();
    let chunk_elems = chunked
        .dims
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or("chunk too large")?;
    let chunk_bytes = chunk_elems.checked_mul(element).ok_or("chunk too large")?;
    let mut out = vec![0u8; bytes];
    let rank = d.shape.len();
    let mut place = |offsets: &[usize], stored: &[u8], mask: u32| -> Result<(), String> {
        let raw = unfilter(stored, &d.filters, mask, chunk_bytes)?;
        if raw.len() < chunk_bytes {
            return Err(format!(
                "a chunk holds {} bytes, {chunk_bytes} expected",
                raw.len()
            ));
        }
        copy_chunk(&mut out, &d.shape, &chunked.dims, offsets, &raw, element);
        Ok(())
    };
    match chunked.index {
        ChunkIndex::BTreeV1(address) => {
            if address == UNDEFINED {
                return Ok(out);
            }
            let key_size = 8 + 8 * (rank + 1);
            let mut chunks = Vec::new();
            btree_v1(map, sizes, address, 1, key_size, &mut |key, child| {
                chunks.push((key.to_vec(), child));
                Ok(())
            })?;
            for (key, child) in chunks {
                let mut k = Cursor::new(&key, 0);
                let size = k.u32()? as usize;
                let mask = k.u32()?;
                let offsets = (0..rank)
                    .map(|_| k.uint(8).map(|o| o as usize))
                    .collect::<Result<Vec<_>, _>>()?;
                place(&offsets, slice(map, child, size)?, mask)?;
            }
        }
        ChunkIndex::Single(address, stored, mask) => {
            if address != UNDEFINED {
                let size = stored.map_or(chunk_bytes, |s| s as usize);
                place(&vec![0; rank], slice(map, address, size)?, mask)?;
            }
        }
        ChunkIndex::Implicit(address) => {
            if address != UNDEFINED {
                let grid: Vec<usize> = d
                    .shape
                    .iter()
                    .zip(&chunked.dims)
                    .map(|(s, c)| s.div_ceil(*c))
                    .collect();
                let total: usize = grid.iter().product();
                for index in 0..total {
                    let mut rest = index;
                    let mut offsets = vec![0; rank];
                    for axis in (0..rank).rev() {
                        offsets[axis] = (rest % grid[axis]) * chunked.dims[axis];
                        rest /= grid[axis];
                    }
                    let at = address + (index * chunk_bytes) as u64;
                    place(&offsets, slice(map, at, chunk_bytes)?, 0)?;
                }
            }
        }
    }
    Ok(out)
}

/// Undoes the filters (in reverse order), skipping those whose bit is set in `mask`.
fn unfilter(
    stored: &[u8],
    filters: &[Filter],
    mask: u32,
    expected: usize,
) -> Result<Vec<u8>, String> {
    let mut data = stored.to_vec();
    for (i, f) in filters.iter().enumerate().rev() {
        if mask & (1 << i) != 0 {
            continue;
        }
        data = match f.id {
            1 => {
                let mut out = Vec::with_capacity(expected);
                flate2::read::ZlibDecoder::new(data.as_slice())
                    .take(expected as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("inflating a gzip chunk: {e}"))?;
                out
            }
            2 => {
                let size = f.values.first().copied().unwrap_or(1).max(1) as usize;
                unshuffle(&data, size)
            }
            3 => {
                let keep = data.len().saturating_sub(4);
                data.truncate(keep);
                data
            }
            id => {
                let known = match id {
                    4 => " (SZIP)",
                    32000 => " (LZF, h5py's compression=\"lzf\")",
                    32001 => " (Blosc)",
                    _ => "",
                };
                return Err(format!(
                    "filter {id} {:?}{known} is not supported (gzip, shuffle and fletcher32 are); \
                     rewrite the file with compression=\"gzip\" or none",
                    f.name
                ));
            }
        };
    }
    Ok(data)
}

/// HDF5's shuffle filter, undone: byte `b` of every element was stored together.
fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len() / size;
    let mut out = vec![0u8; data.len()];
    for b in 0..size {
        for i in 0..n {
            out[i * size + b] = data[b * n + i];
        }
    }
    out[n * size..].copy_from_slice(&data[n * size..]);
    out
}

/// Copies a whole chunk (row-major, `dims` elements) at `offsets` into `out` (`shape`), dropping
/// the parts past the dataset's edge.
fn copy_chunk(
    out: &mut [u8],
    shape: &[usize],
    dims: &[usize],
    offsets: &[usize],
    raw: &[u8],
    element: usize,
) {
    let rank = shape.len();
    if rank == 0 {
        let n = out.len().min(raw.len());
        out[..n].copy_from_slice(&raw[..n]);
        return;
    }
    if offsets.iter().zip(shape).any(|(o, s)| o >= s) {
        return;
    }
    // Rows along the last axis are contiguous in both; walk the others.
    let last = rank - 1;
    let run = dims[last].min(shape[last] - offsets[last]) * element;
    let outer: usize = dims[..last].iter().product();
    let mut index = vec![0usize; last];
    for r in 0..outer {
        let mut rest = r;
        for axis in (0..last).rev() {
            index[axis] = rest % dims[axis];
            rest /= dims[axis];
        }
        if index
            .iter()
            .enumerate()
            .any(|(a, &i)| offsets[a] + i >= shape[a])
        {
            continue;
        }
        let mut target = 0usize;
        for axis in 0..last {
            target = target * shape[axis] + offsets[axis] + index[axis];
        }
        let target = (target * shape[last] + offsets[last]) * element;
        let source = r * dims[last] * element;
        out[target..target + run].copy_from_slice(&raw[source..source + run]);
    }
}

//! Conversion between `f32` rows in memory and the little-endian bytes of a storage dtype.

use std::io::Write;

use half::{bf16, f16};

use crate::StorageDtype;

/// Values converted per write call: bounds the scratch buffer while keeping writes large.
const CHUNK: usize = 1 << 16;

/// Writes `values` in `dtype` (f16/bf16 round to nearest even).
pub(crate) fn write_f32_as(
    dtype: StorageDtype,
    values: &[f32],
    w: &mut dyn Write,
) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(CHUNK.min(values.len()) * dtype.size());
    for chunk in values.chunks(CHUNK) {
        bytes.clear();
        match dtype {
            StorageDtype::F32 => {
                for v in chunk {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            StorageDtype::F16 => {
                for v in chunk {
                    bytes.extend_from_slice(&f16::from_f32(*v).to_bits().to_le_bytes());
                }
            }
            StorageDtype::Bf16 => {
                for v in chunk {
                    bytes.extend_from_slice(&bf16::from_f32(*v).to_bits().to_le_bytes());
                }
            }
        }
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// Writes `values` as little-endian u32.
pub(crate) fn write_u32(values: &[u32], w: &mut dyn Write) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(CHUNK.min(values.len()) * 4);
    for chunk in values.chunks(CHUNK) {
        bytes.clear();
        for v in chunk {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// Writes `values` as little-endian u64.
pub(crate) fn write_u64(values: &[u64], w: &mut dyn Write) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(CHUNK.min(values.len()) * 8);
    for chunk in values.chunks(CHUNK) {
        bytes.clear();
        for v in chunk {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// Decodes `bytes` stored as `dtype` into `out` (length `bytes.len() / dtype.size()`).
pub(crate) fn decode_into(dtype: StorageDtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        StorageDtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        StorageDtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        StorageDtype::Bf16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
    }
}

/// Reads the little-endian u32 at element `index` of `bytes`.
pub(crate) fn u32_at(bytes: &[u8], index: usize) -> u32 {
    let b = &bytes[index * 4..index * 4 + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads the little-endian u64 at element `index` of `bytes`.
pub(crate) fn u64_at(bytes: &[u8], index: usize) -> u64 {
    let b = &bytes[index * 8..index * 8 + 8];
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

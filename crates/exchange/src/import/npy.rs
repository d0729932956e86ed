//! NumPy `.npy` arrays (format versions 1-3, numpy.org/neps/nep-0001-npy-format.html):
//! little-endian float16/32/64, C or Fortran order, one or two dimensions.

use std::path::Path;

use crate::error::{ExchangeError, Result};

/// A float array read from a `.npy` file, as f32, row-major.
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads `path`.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(ExchangeError::io(path, "reading"))?;
    parse(&bytes).map_err(|m| ExchangeError::format(path, m))
}

fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.get(..6) != Some(b"\x93NUMPY".as_slice()) {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let major = *bytes.get(6).ok_or("truncated header")?;
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated header")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(format!(".npy format version {v} (1-3 are supported)")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = field(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = field(header, "fortran_order").ok_or("header has no 'fortran_order'")? == "True";
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("header has no 'shape'")?;
    let shape = shape_text
        .trim()
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry {s:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let size = match descr {
        "<f2" => 2,
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(format!(
            "dtype {other:?} is not supported (little-endian float16/32/64: '<f2', '<f4', '<f8')"
        ))
        }
    };
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or("shape overflows")?;
    let data = bytes.get(start + header_len..).unwrap_or(&[]);
    if data.len() < count * size {
        return Err(format!(
            "{} data bytes for shape {shape:?} of {descr}, {} needed",
            data.len(),
            count * size
        ));
    }
    let data = &data[..count * size];
    let mut values: Vec<f32> = match size {
        2 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        4 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
    };
    if fortran && shape.len() == 2 {
        let (rows, cols) = (shape[0], shape[1]);
        let mut c_order = vec![0.0; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                c_order[r * cols + c] = values[c * rows + r];
            }
        }
        values = c_order;
    } else if fortran && shape.len() > 2 {
        return Err("Fortran-ordered arrays of more than 2 dimensions are not supported".into());
    }
    Ok(NpyArray { shape, values })
}

/// The text of a key's value in the header dict (up to the next comma outside brackets).
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let rest = header.split(&format!("'{key}':")).nth(1)?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

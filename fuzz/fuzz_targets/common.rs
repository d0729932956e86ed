//! Shared by the fuzz targets: feeding bytes to the bio readers the way `open` does (gzip told
//! apart by its magic bytes), and splitting one input into the files of a directory.

#![allow(dead_code)]

use std::io::{BufRead, Cursor};
use std::path::Path;

/// The input as `open` would present it: decompressed when it starts with the gzip magic.
pub fn text_input(data: &[u8]) -> Option<Box<dyn BufRead + Send>> {
    plmscope_bio::input::maybe_gunzip(Cursor::new(data.to_vec()), Path::new("fuzz")).ok()
}

/// Drains an iterator of results, stopping after more items than the input could hold lines
/// (a reader that stops consuming input would otherwise loop forever: that is a finding).
pub fn drain<T, E>(items: impl Iterator<Item = Result<T, E>>, input_len: usize) {
    let cap = input_len.saturating_mul(1100).saturating_add(2);
    for (count, _) in items.enumerate() {
        assert!(
            count <= cap,
            "reader yielded more items than its input has lines"
        );
    }
}

/// Splits `data` into `names.len()` files: each but the last is preceded by its length as a
/// little-endian u32 (clamped to what is left), the last takes the rest. Writes them into a new
/// temporary directory.
pub fn write_files(data: &[u8], names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rest = data;
    for (i, name) in names.iter().enumerate() {
        let part = if i + 1 == names.len() {
            rest
        } else {
            let (len, tail) = match rest.split_first_chunk::<4>() {
                Some((len, tail)) => (u32::from_le_bytes(*len) as usize, tail),
                None => (0, &[][..]),
            };
            let (part, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            part
        };
        std::fs::write(dir.path().join(name), part).expect("write fuzz file");
    }
    dir
}

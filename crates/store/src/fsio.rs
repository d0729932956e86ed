//! Crash-safe file writing through `plmscope-fsutil` (temporary name, fsync, rename, fsync the
//! directory), plus hashing and the set directories' housekeeping. After `kill -9` a final name
//! holds either nothing or a complete file; only `*.tmp` leftovers can be partial.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::StoreError;

/// Suffix of every temporary file this crate writes.
pub(crate) const TMP_SUFFIX: &str = plmscope_fsutil::TMP_SUFFIX;

impl From<plmscope_fsutil::Error> for StoreError {
    fn from(e: plmscope_fsutil::Error) -> Self {
        StoreError::io(e.path, e.source)
    }
}

/// Passes bytes through to `inner` and hashes them on the way.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `path` atomically through `fill` and returns the sha256 (hex) of the bytes written.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<String, StoreError> {
    let mut writer = HashingWriter {
        inner: plmscope_fsutil::AtomicFile::create(path)?,
        hasher: Sha256::new(),
    };
    // On error the AtomicFile is dropped, which removes the temporary file.
    fill(&mut writer).map_err(|e| StoreError::io(writer.inner.tmp_path(), e))?;
    let sha = hex(&writer.hasher.finalize());
    writer.inner.commit()?;
    Ok(sha)
}

/// Removes leftovers of interrupted writes: files named `PREFIX*.tmp` for one of `prefixes`.
pub(crate) fn remove_stray_tmp(dir: &Path, prefixes: &[&str]) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) && prefixes.iter().any(|p| name.starts_with(p)) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                // Another job finishing the same set may have removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(path, e)),
            }
        }
    }
    Ok(())
}

/// True when `dir` holds nothing but leftovers of interrupted writes.
pub(crate) fn is_empty_but_tmp(dir: &Path) -> Result<bool, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.ends_with(TMP_SUFFIX)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// sha256 (hex) of a whole file.
pub(crate) fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and parses a JSON file, naming the file in errors.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `value` as pretty JSON (keys in struct order, then sorted) atomically.
pub(crate) fn write_json_atomic<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), StoreError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push(b'\n');
    write_atomic(path, |w| w.write_all(&text)).map(|_| ())
}

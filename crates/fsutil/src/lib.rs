//! Crash-safe file writing, shared by every crate that writes files.
//!
//! A file is written to a temporary sibling (`<name>.<pid>.tmp`), fsynced, renamed over its
//! final name, and then the directory is fsynced so the rename itself survives a power cut.
//! After `kill -9` a final name therefore holds either the old content or the complete new
//! content; only `*.tmp` leftovers can be partial. The process id in the temporary name keeps
//! two processes that write the same file (parallel jobs finishing one set) from interleaving.
//!
//! ```no_run
//! use std::io::Write;
//! # fn main() -> Result<(), plmscope_fsutil::Error> {
//! plmscope_fsutil::write_atomic("out/config.json", b"{}\n")?;
//!
//! let mut file = plmscope_fsutil::AtomicFile::create("out/big.bin")?;
//! file.write_all(&[0u8; 1024]).map_err(|e| file.error("writing", e))?;
//! file.commit()?; // dropped without commit: no final file, no temporary left
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Suffix of every temporary file written through this crate.
pub const TMP_SUFFIX: &str = ".tmp";

/// An operating-system call on `path` failed while doing `action`.
#[derive(Debug)]
pub struct Error {
    /// The file or directory the call was about.
    pub path: PathBuf,
    /// What was being done (`creating`, `renaming into place`, `syncing the directory`...).
    pub action: &'static str,
    /// The operating-system error.
    pub source: std::io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.action,
            self.source
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Error {
    fn new(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error {
            path: path.into(),
            action,
            source,
        }
    }
}

/// The temporary sibling `<name>.<pid>.tmp` of `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}{TMP_SUFFIX}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically (see the crate docs).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| file.error("writing", e))?;
    file.commit()
}

/// A file being written under its temporary name. [`AtomicFile::commit`] moves it into place;
/// dropping it uncommitted deletes the temporary file and leaves the final name untouched.
///
/// Writes are buffered (1 MiB), so many small writes cost no system calls.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
    committed: bool,
}

impl AtomicFile {
    /// Creates (or truncates) the temporary sibling of `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if path.file_name().is_none() {
            return Err(Error::new(
                path,
                "creating",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
            ));
        }
        let tmp = tmp_path(&path);
        let file = File::create(&tmp).map_err(|e| Error::new(&tmp, "creating", e))?;
        Ok(AtomicFile {
            path,
            tmp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            committed: false,
        })
    }

    /// The final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary name being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// An [`Error`] about the temporary file, for failures of the caller's own writes.
    pub fn error(&self, action: &'static str, source: std::io::Error) -> Error {
        Error::new(&self.tmp, action, source)
    }

    /// Flushes and fsyncs the temporary file, renames it to the final name and fsyncs the
    /// directory. On failure the temporary file is removed.
    pub fn commit(mut self) -> Result<(), Error> {
        let writer = self.writer.take().expect("present until commit or drop");
        let file = writer
            .into_inner()
            .map_err(|e| Error::new(&self.tmp, "writing", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::new(&self.tmp, "syncing", e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::new(&self.path, "renaming the finished file into place", e))?;
        self.committed = true;
        sync_parent(&self.path)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer
            .as_mut()
            .expect("present until commit or drop")
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer
            .as_mut()
            .expect("present until commit or drop")
            .flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Not committed (an error, or the caller gave up): the partial file must not linger.
        // A failed removal cannot be reported from a destructor; a leftover *.tmp is harmless.
        if !self.committed {
            drop(self.writer.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Renames a finished file `from` (already complete on disk) to `to` durably: fsyncs `from`,
/// renames, fsyncs the directory of `to`. For files written by other means (SQLite, a staging
/// directory) that still need the atomic move.
pub fn persist(from: &Path, to: &Path) -> Result<(), Error> {
    File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::new(from, "syncing", e))?;
    std::fs::rename(from, to)
        .map_err(|e| Error::new(to, "renaming the finished file into place", e))?;
    sync_parent(to)
}

/// Fsyncs a directory: on Linux a new or renamed entry survives a power cut only once its
/// directory is synced.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::new(dir, "syncing the directory", e))
}

fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

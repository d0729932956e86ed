//! What a stage's output depends on, as one hash: the stage's own settings, the content of its
//! input files, and the hashes of the stages before it. A stage is up to date when its record
//! holds the same hash and says complete.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// sha256 of a file's content, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("reading {} (an input of the study)", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A cheap identity of a model checkpoint folder or file: names, sizes and modification
/// times of its files (hashing gigabytes of weights on every plan would take minutes; the
/// embed stage records the weights' sha256 in every set it writes).
pub fn checkpoint_identity(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut entries = Vec::new();
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
        {
            let entry = entry?;
            entries.push(entry.path());
        }
        entries.sort();
    } else {
        entries.push(path.to_path_buf());
    }
    for p in entries {
        let meta = std::fs::metadata(&p).with_context(|| format!("reading {}", p.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hasher.update(format!("{}\t{}\t{modified}\n", p.display(), meta.len()).as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// Hash of a stage: its kind, its settings (canonical JSON) and its named inputs.
pub fn stage_hash(kind: &str, settings: &serde_json::Value, inputs: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    // serde_json's Value keeps object keys sorted (no preserve_order feature): canonical.
    hasher.update(settings.to_string().as_bytes());
    for (name, value) in inputs {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([1]);
        hasher.update(value.as_bytes());
    }
    hex(&hasher.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

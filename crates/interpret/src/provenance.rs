//! Provenance of an analysis: which input files it read, as `meta.inputs` in the atlas.
//!
//! [`describe_file`] gives a file's size, sha256 and version line; the caller (the pipeline)
//! describes every file it read and passes the list in
//! [`crate::AnalysisOptions::inputs`], and [`crate::analyze`] writes it as a JSON array.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{AnalysisError, AnalysisResult};

/// One input file of an analysis.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputFile {
    /// As the caller named it (not canonicalised: the atlas should not leak home folders
    /// the caller did not give).
    pub path: String,
    /// What the file was used for (`go`, `annotations`, `fasta`, `codes` ...), free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// An OBO's `data-version:` line, a GAF's `!gaf-version:` line, or the first `!`/`#`
    /// comment line of another annotation file; `None` when the file has none.
    pub version: Option<String>,
}

/// Lines read at most when looking for a version line (an OBO header is ~10 lines).
const VERSION_SCAN_LINES: usize = 64;

/// Size, sha256 and version line of the file at `path`.
pub fn describe_file(path: &Path) -> AnalysisResult<InputFile> {
    let file = std::fs::File::open(path).map_err(AnalysisError::io(path, "opening"))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(AnalysisError::io(path, "reading for sha256"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = std::fs::File::open(path).map_err(AnalysisError::io(path, "opening"))?;
    let version = sniff_version(BufReader::new(file));
    Ok(InputFile {
        path: path.display().to_string(),
        role: None,
        size,
        sha256,
        version,
    })
}

/// The version line of a text file (see [`InputFile::version`]). Unreadable or binary content
/// gives `None`: the version is a courtesy, the sha256 is the identity.
pub fn sniff_version(reader: impl BufRead) -> Option<String> {
    let mut first_comment = None;
    for (i, line) in reader.lines().take(VERSION_SCAN_LINES).enumerate() {
        let line = line.ok()?;
        let line = line.trim();
        // OBO 1.2 header tag (GO's release, e.g. `releases/2021-12-15`).
        if line.starts_with("data-version:") || line.starts_with("!gaf-version:") {
            return Some(line.to_string());
        }
        if line.starts_with("[Term]") {
            break;
        }
        if first_comment.is_none() && (line.starts_with('!') || line.starts_with('#')) {
            first_comment = Some(line.to_string());
        } else if i == 0 && !line.starts_with("format-version:") {
            // A table whose first line is a column header has no version line.
            return None;
        }
    }
    first_comment
}

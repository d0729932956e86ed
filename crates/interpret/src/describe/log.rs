//! The call log: every prompt and reply as one JSON line beside the atlas (as the seed saves
//! every prompt and prediction), appended and flushed right after each call. It doubles as the
//! cache: a rerun, or a run after `kill -9`, answers a prompt already answered (same provider,
//! model, base URL, parameters and prompt) from the log and spends nothing on it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::{DescribeError, DescribeResult};
use super::provider::Reply;

/// One call as logged.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    pub unit: u32,
    pub kind: String,
    pub protocol: String,
    pub provider: String,
    pub model: String,
    pub step: String,
    pub cache_key: String,
    pub prompt_sha256: String,
    pub prompt: String,
    pub reply: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Answered from the log, not the API.
    pub cached: bool,
    pub error: Option<String>,
    /// The reply's yes/no probabilities (see [`Reply::probabilities`]), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<f64>>,
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSONL log with its replies indexed by cache key.
pub struct CallLog {
    path: PathBuf,
    file: Mutex<File>,
    cache: Mutex<HashMap<String, Reply>>,
}

impl CallLog {
    /// Opens (or creates) the log and indexes its replies. A torn last line (a crash mid-write)
    /// is ignored and terminated, so the next record starts on a line of its own.
    pub fn open(path: &Path) -> DescribeResult<CallLog> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(DescribeError::io(path, "opening the describe log"))?;
        let mut cache = HashMap::new();
        for line in BufReader::new(&mut file).lines() {
            let line = line.map_err(DescribeError::io(path, "reading the describe log"))?;
            let Ok(record) = serde_json::from_str::<LogRecord>(&line) else {
                continue;
            };
            if let (Some(text), None) = (record.reply, record.error) {
                cache.insert(
                    record.cache_key,
                    Reply {
                        text,
                        input_tokens: record.input_tokens,
                        output_tokens: record.output_tokens,
                        probabilities: record.probabilities,
                    },
                );
            }
        }
        let length = file
            .seek(SeekFrom::End(0))
            .map_err(DescribeError::io(path, "seeking the describe log"))?;
        if length > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(length - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(DescribeError::io(path, "reading the describe log"))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(DescribeError::io(path, "repairing the describe log"))?;
            }
        }
        Ok(CallLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            cache: Mutex::new(cache),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A logged reply for this cache key.
    pub fn cached(&self, cache_key: &str) -> Option<Reply> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(cache_key).cloned()
    }

    /// Appends one record and flushes it to the file before returning.
    pub fn append(&self, record: &LogRecord) -> DescribeResult<()> {
        let mut line = serde_json::to_string(record).map_err(|e| {
            DescribeError::input(format!("unserialisable log record: {e}"), "report a bug")
        })?;
        line.push('\n');
        {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(line.as_bytes())
                .and_then(|_| file.flush())
                .map_err(DescribeError::io(
                    &self.path,
                    "appending to the describe log",
                ))?;
        }
        if let (Some(text), None) = (&record.reply, &record.error) {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(
                record.cache_key.clone(),
                Reply {
                    text: text.clone(),
                    input_tokens: record.input_tokens,
                    output_tokens: record.output_tokens,
                    probabilities: record.probabilities.clone(),
                },
            );
        }
        Ok(())
    }
}

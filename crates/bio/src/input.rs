//! Opening text inputs (plain or gzip, told apart by the magic bytes, not the file name) and
//! reading them line by line with a 1-based line counter that error messages can quote.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::error::{BioError, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path` for buffered reading, decompressing on the fly when it starts with the gzip
/// magic bytes.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|source| BioError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    maybe_gunzip(BufReader::new(file), path)
}

/// Wraps an already open reader, decompressing it when it starts with the gzip magic bytes.
/// `name` is only used in error messages.
pub fn maybe_gunzip<R: BufRead + Send + 'static>(
    mut reader: R,
    name: &Path,
) -> Result<Box<dyn BufRead + Send>> {
    let head = reader.fill_buf().map_err(|source| BioError::Io {
        file: name.to_path_buf(),
        source,
    })?;
    if head.starts_with(&GZIP_MAGIC) {
        // MultiGzDecoder: bgzip and concatenated gzip members are common for biological files.
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// Longest line accepted, in bytes. The longest real lines are UniProt TSV rows with a
/// titin-sized sequence (~35 k residues) and its features, far below this; the cap keeps a
/// corrupt or decompression-bomb input from growing one line without bound.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Line reader that strips the line ending (`\n` or `\r\n`) and counts lines from 1.
pub struct Lines<R> {
    reader: R,
    file: PathBuf,
    line_number: usize,
    bytes: Vec<u8>,
    buffer: String,
    /// A read failed; the stream ends there, or a caller that skips errors would get the same
    /// error forever (found by `tests/mutation.rs` on a corrupt gzip stream).
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, file: PathBuf) -> Self {
        Lines {
            reader,
            file,
            line_number: 0,
            bytes: Vec::new(),
            buffer: String::new(),
            failed: false,
        }
    }

    /// The name used in error messages.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based number of the line last returned by [`Lines::next_line`] (0 before the first).
    pub fn line_number(&self) -> usize {
        self.line_number
    }

    /// Moves to the next line; `false` at end of input. The line is then [`Lines::text`].
    pub fn advance(&mut self) -> Result<bool> {
        self.buffer.clear();
        self.bytes.clear();
        if self.failed {
            return Ok(false);
        }
        let next = self.line_number + 1;
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.bytes)
            .map_err(|source| {
                self.failed = true;
                // Opening succeeded, so a failure here is the content (a corrupt or cut gzip
                // stream, most often): name the line it stopped at.
                BioError::malformed(
                    &self.file,
                    next,
                    format!("reading stopped: {source}"),
                    "the file looks corrupt or truncated; download or decompress it again",
                )
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line_number = next;
        if read > MAX_LINE_BYTES {
            return Err(BioError::malformed(
                &self.file,
                next,
                format!("line is longer than {MAX_LINE_BYTES} bytes"),
                "check that this is the right kind of text file and not corrupt",
            ));
        }
        let content_len = self
            .bytes
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(0, |last| last + 1);
        let content = std::str::from_utf8(&self.bytes[..content_len]).map_err(|_| {
            BioError::malformed(
                &self.file,
                next,
                "line is not valid UTF-8",
                "convert the file to UTF-8 text",
            )
        })?;
        self.buffer.push_str(content);
        Ok(true)
    }

    /// The current line without its line ending (empty before the first line and at the end).
    pub fn text(&self) -> &str {
        &self.buffer
    }

    /// Next line without its line ending, or `None` at end of input.
    pub fn next_line(&mut self) -> Result<Option<&str>> {
        Ok(if self.advance()? {
            Some(self.text())
        } else {
            None
        })
    }

    /// Error at the current line.
    pub fn malformed(&self, problem: impl Into<String>, fix: impl Into<String>) -> BioError {
        BioError::malformed(&self.file, self.line_number, problem, fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Caught by tests/mutation.rs on a corrupt gzip stream: every call after the failure
    /// failed again, so a caller that skips bad records never finished.
    #[test]
    fn a_failed_read_ends_the_stream_and_names_the_line() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b">a\nMKV\n>b\nMKV\n").unwrap();
        let mut gz = encoder.finish().unwrap();
        let cut = gz.len() - 9; // into the deflate data: the stream ends early
        gz.truncate(cut);
        let name = Path::new("cut.fa.gz");
        let reader = maybe_gunzip(std::io::Cursor::new(gz), name).unwrap();
        let mut lines = Lines::new(reader, name.to_path_buf());
        let mut seen = 0;
        let error = loop {
            match lines.advance() {
                Ok(true) => seen += 1,
                Ok(false) => panic!("a cut gzip stream read as complete after {seen} lines"),
                Err(error) => break error.to_string(),
            }
        };
        assert!(
            error.starts_with(&format!("cut.fa.gz:{}:", seen + 1)),
            "{error}"
        );
        assert!(!lines.advance().unwrap());
    }
}

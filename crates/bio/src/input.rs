//! Opening text inputs (plain or gzip, told apart by the magic bytes, not the file name) and
//! reading them line by line with a 1-based line counter that error messages can quote.

use std::fs::File;
use std::io::{BufRead, BufReader};
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

/// Line reader that strips the line ending (`\n` or `\r\n`) and counts lines from 1.
pub struct Lines<R> {
    reader: R,
    file: PathBuf,
    line_number: usize,
    buffer: String,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, file: PathBuf) -> Self {
        Lines {
            reader,
            file,
            line_number: 0,
            buffer: String::new(),
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
        let read =
            self.reader
                .read_line(&mut self.buffer)
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::InvalidData => BioError::malformed(
                        &self.file,
                        self.line_number + 1,
                        "line is not valid UTF-8",
                        "convert the file to UTF-8 text",
                    ),
                    _ => BioError::Io {
                        file: self.file.clone(),
                        source,
                    },
                })?;
        if read == 0 {
            self.buffer.clear();
            return Ok(false);
        }
        self.line_number += 1;
        let content_len = self.buffer.trim_end_matches(['\n', '\r']).len();
        self.buffer.truncate(content_len);
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

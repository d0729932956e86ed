//! Every atlas table as a TSV file with a header line, for tools that do not read SQLite.
//! NULL is written as an empty field; tabs, line breaks and backslashes in text are escaped as
//! `\t`, `\n`, `\r`, `\\`; reals are written so they read back to the same `f64`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::{AnalysisError, AnalysisResult};

/// Writes `<dir>/<table>.tsv` for every table of the atlas; returns the files written.
pub fn export_tsv(atlas: &Path, dir: &Path) -> AnalysisResult<Vec<PathBuf>> {
    let connection = Connection::open_with_flags(atlas, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(AnalysisError::sqlite(atlas, "opening read-only"))?;
    std::fs::create_dir_all(dir).map_err(AnalysisError::io(dir, "creating the export folder"))?;
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(AnalysisError::sqlite(atlas, "listing tables"))?;
    let mut written = Vec::new();
    for table in tables.iter().filter(|t| !t.starts_with("sqlite_")) {
        let path = dir.join(format!("{table}.tsv"));
        export_table(&connection, atlas, table, &path)?;
        written.push(path);
    }
    Ok(written)
}

fn export_table(
    connection: &Connection,
    atlas: &Path,
    table: &str,
    path: &Path,
) -> AnalysisResult<()> {
    let action = format!("reading table {table}");
    let mut statement = connection
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .map_err(AnalysisError::sqlite(atlas, &action))?;
    let columns: Vec<String> = statement
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let file = std::fs::File::create(path).map_err(AnalysisError::io(path, "creating"))?;
    let mut out = std::io::BufWriter::new(file);
    let io_error = AnalysisError::io(path, "writing");
    let mut line = columns.join("\t");
    line.push('\n');
    let mut rows = statement
        .query([])
        .map_err(AnalysisError::sqlite(atlas, &action))?;
    let mut result = out.write_all(line.as_bytes());
    while let Some(row) = rows.next().map_err(AnalysisError::sqlite(atlas, &action))? {
        line.clear();
        for i in 0..columns.len() {
            if i > 0 {
                line.push('\t');
            }
            let value = row
                .get_ref(i)
                .map_err(AnalysisError::sqlite(atlas, &action))?;
            push_field(&mut line, value);
        }
        line.push('\n');
        result = result.and_then(|()| out.write_all(line.as_bytes()));
    }
    result.and_then(|()| out.flush()).map_err(io_error)
}

fn push_field(line: &mut String, value: ValueRef) {
    match value {
        ValueRef::Null => {}
        ValueRef::Integer(i) => line.push_str(&i.to_string()),
        ValueRef::Real(x) => line.push_str(&format_real(x)),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            for c in String::from_utf8_lossy(bytes).chars() {
                match c {
                    '\t' => line.push_str("\\t"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    '\\' => line.push_str("\\\\"),
                    c => line.push(c),
                }
            }
        }
    }
}

/// Shortest round-trip text; exponent notation for very small or large magnitudes (Rust's plain
/// `Display` would write 1e-300 as 300 zeros).
fn format_real(x: f64) -> String {
    if x == 0.0 || (1e-4..1e15).contains(&x.abs()) || !x.is_finite() {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

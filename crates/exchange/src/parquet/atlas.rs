//! Every atlas table → one Parquet file, column types from SQLite's declared types.
//!
//! Types follow SQLite's affinity rules (sqlite.org/datatype3.html, "Determination Of Column
//! Affinity"): a declared type containing `INT` → INT64; `CHAR`, `CLOB` or `TEXT` → UTF-8
//! string; `BLOB` or no type → bytes; `REAL`, `FLOA` or `DOUB` → DOUBLE; anything else
//! (NUMERIC) → DOUBLE. A column is REQUIRED when declared `NOT NULL` or when it is the
//! `INTEGER PRIMARY KEY` (the rowid), OPTIONAL otherwise. Rows keep SQLite's scan order.

use std::path::{Path, PathBuf};

use parquet::data_type::ByteArray;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{ColumnChunk, ColumnKind, Field, TableWriter};
use crate::error::{ExchangeError, Result};

/// Footer key holding the table's name.
pub const ATLAS_TABLE_KEY: &str = "plmscope.atlas_table";

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Writes `<dir>/<table>.parquet` for every table of the atlas; returns the files written.
pub fn export_atlas(atlas: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let connection = Connection::open_with_flags(atlas, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(ExchangeError::sqlite(atlas, "opening read-only"))?;
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(ExchangeError::sqlite(atlas, "listing tables"))?;
    if tables.is_empty() {
        return Err(ExchangeError::format(
            atlas,
            "holds no tables (is it an atlas written by `plmscope analyze`?)",
        ));
    }
    std::fs::create_dir_all(dir).map_err(ExchangeError::io(dir, "creating the export folder"))?;
    let mut written = Vec::new();
    for table in tables.iter().filter(|t| !t.starts_with("sqlite_")) {
        let path = dir.join(format!("{table}.parquet"));
        export_table(&connection, atlas, table, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// The Parquet type of a declared SQLite type, by affinity.
pub fn column_kind(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        ColumnKind::Int64
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        ColumnKind::Utf8
    } else if t.contains("BLOB") || t.is_empty() {
        ColumnKind::Bytes
    } else {
        ColumnKind::Double
    }
}

fn table_fields(connection: &Connection, atlas: &Path, table: &str) -> Result<Vec<Field>> {
    let sql = format!("PRAGMA table_info({})", quote(table));
    let columns: Vec<(String, String, bool, i64)> = connection
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map([], |row| {
                Ok((
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? != 0,
                    row.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(ExchangeError::sqlite(
            atlas,
            format!("reading the columns of {table}"),
        ))?;
    let primary_keys = columns.iter().filter(|c| c.3 > 0).count();
    Ok(columns
        .into_iter()
        .map(|(name, declared, not_null, pk)| {
            let kind = column_kind(&declared);
            let rowid = pk > 0 && primary_keys == 1 && declared.eq_ignore_ascii_case("INTEGER");
            Field::new(&name, kind, !(not_null || rowid))
        })
        .collect())
}

fn export_table(connection: &Connection, atlas: &Path, table: &str, path: &Path) -> Result<()> {
    let fields = table_fields(connection, atlas, table)?;
    let metadata = vec![(ATLAS_TABLE_KEY.to_string(), table.to_string())];
    let mut writer = TableWriter::create(path, fields.clone(), metadata)?;
    let sql = format!("SELECT * FROM {}", quote(table));
    let mut statement = connection
        .prepare(&sql)
        .map_err(ExchangeError::sqlite(atlas, format!("reading {table}")))?;
    let mut rows = statement
        .query([])
        .map_err(ExchangeError::sqlite(atlas, format!("reading {table}")))?;
    let mut chunks = vec![ColumnChunk::default(); fields.len()];
    let mut buffered = 0;
    let mut row_number = 0usize;
    let mut any_group = false;
    while let Some(row) = rows
        .next()
        .map_err(ExchangeError::sqlite(atlas, format!("reading {table}")))?
    {
        row_number += 1;
        for (c, field) in fields.iter().enumerate() {
            let value = row
                .get_ref(c)
                .map_err(ExchangeError::sqlite(atlas, format!("reading {table}")))?;
            push_value(&mut chunks[c], field, value).map_err(|message| {
                ExchangeError::format(
                    atlas,
                    format!(
                        "table {table}, row {row_number}, column {}: {message}",
                        field.name
                    ),
                )
            })?;
        }
        buffered += 1;
        if buffered == ROW_GROUP_ROWS {
            writer.write_row_group(&chunks)?;
            chunks.iter_mut().for_each(ColumnChunk::clear);
            buffered = 0;
            any_group = true;
        }
    }
    // An empty table still gets one (empty) row group, so every reader sees its schema.
    if buffered > 0 || !any_group {
        writer.write_row_group(&chunks)?;
    }
    writer.finish()?;
    Ok(())
}

/// Appends one SQLite value to a column, converting as the column's affinity would.
fn push_value(chunk: &mut ColumnChunk, field: &Field, value: ValueRef<'_>) -> Result<(), String> {
    if let ValueRef::Null = value {
        if !field.nullable {
            return Err("NULL in a NOT NULL column".to_string());
        }
        chunk.defined.push(0);
        return Ok(());
    }
    if field.nullable {
        chunk.defined.push(1);
    }
    match (field.kind, value) {
        (ColumnKind::Int64, ValueRef::Integer(i)) => chunk.ints64.push(i),
        (ColumnKind::Double, ValueRef::Real(f)) => chunk.doubles.push(f),
        (ColumnKind::Double, ValueRef::Integer(i)) => chunk.doubles.push(i as f64),
        (ColumnKind::Utf8, ValueRef::Text(t)) => {
            std::str::from_utf8(t).map_err(|e| format!("text is not UTF-8: {e}"))?;
            chunk.bytes.push(ByteArray::from(t.to_vec()))
        }
        (ColumnKind::Bytes, ValueRef::Blob(b) | ValueRef::Text(b)) => {
            chunk.bytes.push(ByteArray::from(b.to_vec()))
        }
        (kind, other) => {
            return Err(format!(
                "a {:?} value in a column exported as {kind:?}",
                other.data_type()
            ))
        }
    }
    Ok(())
}

/// `name` as an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

//! The atlas tables `describe` adds and reads. They are created with `CREATE TABLE IF NOT
//! EXISTS` on an existing atlas, and `descriptions` (created by `analyze` with fewer columns) is
//! migrated by adding the missing columns, so atlases written before `describe` existed work.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::error::{DescribeError, DescribeResult};

const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS descriptions (
    unit          INTEGER NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    text          TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    pearson       REAL,
    spearman      REAL,
    auroc         REAL
);
CREATE TABLE IF NOT EXISTS protein_info (
    accession TEXT PRIMARY KEY,
    name      TEXT,
    gene      TEXT,
    organism  TEXT,
    go_bp     TEXT,
    go_mf     TEXT,
    go_cc     TEXT,
    sequence  TEXT
);
CREATE TABLE IF NOT EXISTS protein_activations (
    unit        INTEGER PRIMARY KEY,
    pooling     TEXT NOT NULL,
    proteins    BLOB NOT NULL,
    activations BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS describe_log (
    unit          INTEGER NOT NULL,
    protocol      TEXT NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    step          TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    reply         TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost_usd      REAL,
    cached        INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS describe_log_unit ON describe_log (unit);
"#;

/// Columns `describe` adds to `analyze`'s `descriptions`.
const DESCRIPTION_COLUMNS: [(&str, &str); 8] = [
    ("protocol", "TEXT NOT NULL DEFAULT 'gujral2025'"),
    ("pearson_p", "REAL"),
    ("n_held_out", "INTEGER"),
    ("cost_usd", "REAL"),
    ("status", "TEXT NOT NULL DEFAULT 'ok'"),
    ("error", "TEXT"),
    ("raw_reply", "TEXT"),
    // Protocol-specific scores as JSON (delphi: detection and fuzzing metrics).
    ("scores", "TEXT"),
];

/// Opens an existing atlas (never creates one) and brings its describe tables up to date.
pub fn open_atlas(path: &Path) -> DescribeResult<Connection> {
    if !path.is_file() {
        return Err(DescribeError::input(
            format!("no atlas at {}", path.display()),
            "run `plmscope analyze` first, or pass the atlas it wrote",
        ));
    }
    let connection = Connection::open(path).map_err(DescribeError::sqlite(path, "opening"))?;
    // Workers never share this connection; a second process on the same atlas waits, not fails.
    connection
        .busy_timeout(std::time::Duration::from_secs(30))
        .map_err(DescribeError::sqlite(path, "setting the busy timeout"))?;
    ensure_tables(&connection, path)?;
    Ok(connection)
}

/// Creates the describe tables and migrates `descriptions`.
pub fn ensure_tables(connection: &Connection, path: &Path) -> DescribeResult<()> {
    connection
        .execute_batch(TABLES)
        .map_err(DescribeError::sqlite(path, "creating the describe tables"))?;
    let existing = columns(connection, "descriptions", path)?;
    for (name, declaration) in DESCRIPTION_COLUMNS {
        if !existing.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            connection
                .execute_batch(&format!(
                    "ALTER TABLE descriptions ADD COLUMN {name} {declaration}"
                ))
                .map_err(DescribeError::sqlite(
                    path,
                    format!("adding descriptions.{name}"),
                ))?;
        }
    }
    Ok(())
}

fn columns(connection: &Connection, table: &str, path: &Path) -> DescribeResult<Vec<String>> {
    let action = format!("reading the columns of {table}");
    let mut statement = connection
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(DescribeError::sqlite(path, &action))?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(1))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(path, &action))?;
    Ok(names)
}

/// A unit of the atlas as `describe` needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AtlasUnit {
    pub unit: u32,
    pub kind: String,
    pub index: u32,
    pub dead: bool,
}

/// Units of one kind (`feature` or `neuron`), by unit id.
pub fn units_of_kind(
    connection: &Connection,
    kind: &str,
    path: &Path,
) -> DescribeResult<Vec<AtlasUnit>> {
    let action = format!("reading the {kind} units");
    let mut statement = connection
        .prepare("SELECT unit, kind, \"index\", dead FROM units WHERE kind = ?1 ORDER BY unit")
        .map_err(DescribeError::sqlite(path, &action))?;
    let rows = statement
        .query_map([kind], |row| {
            Ok(AtlasUnit {
                unit: row.get(0)?,
                kind: row.get(1)?,
                index: row.get(2)?,
                dead: row.get(3)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(path, &action))?;
    Ok(rows)
}

/// Number of proteins in the atlas.
pub fn protein_count(connection: &Connection, path: &Path) -> DescribeResult<u32> {
    connection
        .query_row("SELECT COUNT(*) FROM proteins", [], |row| row.get(0))
        .map_err(DescribeError::sqlite(path, "counting proteins"))
}

/// One unit's pooled activation over every protein (zeros where none is stored), or `None` when
/// the atlas has no per-protein activations for it.
pub fn unit_activations(
    connection: &Connection,
    unit: u32,
    n_proteins: u32,
    path: &Path,
) -> DescribeResult<Option<Vec<f32>>> {
    let action = format!("reading the protein activations of unit {unit}");
    let row: Option<(Vec<u8>, Vec<u8>)> = connection
        .query_row(
            "SELECT proteins, activations FROM protein_activations WHERE unit = ?1",
            [unit],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(DescribeError::sqlite(path, &action))?;
    let Some((proteins, values)) = row else {
        return Ok(None);
    };
    if proteins.len() != values.len() || proteins.len() % 4 != 0 {
        return Err(DescribeError::input(
            format!("{}: protein_activations of unit {unit} is corrupt ({} protein bytes, {} value bytes)", path.display(), proteins.len(), values.len()),
            "rewrite it with write_protein_activations",
        ));
    }
    let mut dense = vec![0.0f32; n_proteins as usize];
    for (p, v) in proteins.chunks_exact(4).zip(values.chunks_exact(4)) {
        let p = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
        let slot = dense.get_mut(p).ok_or_else(|| {
            DescribeError::input(
                format!(
                    "{}: unit {unit} names protein {p} of {n_proteins}",
                    path.display()
                ),
                "the protein activations do not belong to this atlas; rewrite them",
            )
        })?;
        *slot = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    }
    Ok(Some(dense))
}

/// Writes one unit's nonzero pooled activations (proteins ascending) as two little-endian blobs.
pub(crate) fn insert_unit_activations(
    statement: &mut rusqlite::Statement,
    unit: u32,
    pooling: &str,
    entries: &[(u32, f32)],
) -> rusqlite::Result<usize> {
    let proteins: Vec<u8> = entries.iter().flat_map(|e| e.0.to_le_bytes()).collect();
    let values: Vec<u8> = entries.iter().flat_map(|e| e.1.to_le_bytes()).collect();
    statement.execute(params![unit, pooling, proteins, values])
}

/// What is already in `descriptions` for one unit, protocol, provider and model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    None,
    Described,
    Failed,
}

pub fn existing_description(
    connection: &Connection,
    unit: u32,
    key: &RunKey,
    path: &Path,
) -> DescribeResult<Existing> {
    let status: Option<String> = connection
        .query_row(
            "SELECT status FROM descriptions WHERE unit = ?1 AND protocol = ?2 AND provider = ?3 \
             AND model = ?4 ORDER BY status = 'ok' DESC LIMIT 1",
            params![unit, key.protocol, key.provider, key.model],
            |row| row.get(0),
        )
        .optional()
        .map_err(DescribeError::sqlite(path, "reading existing descriptions"))?;
    Ok(match status.as_deref() {
        None => Existing::None,
        Some("ok") => Existing::Described,
        Some(_) => Existing::Failed,
    })
}

/// What identifies one run's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    pub protocol: String,
    pub provider: String,
    pub model: String,
}

/// Appends one call to `describe_log`, under `step` (the record's own step, or `rescore`).
pub(crate) fn insert_log_call(
    connection: &Connection,
    call: &super::log::LogRecord,
    step: &str,
) -> rusqlite::Result<usize> {
    connection.execute(
        "INSERT INTO describe_log (unit, protocol, provider, model, step, prompt_sha256, prompt, \
         reply, input_tokens, output_tokens, cost_usd, cached, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            call.unit,
            call.protocol,
            call.provider,
            call.model,
            step,
            call.prompt_sha256,
            call.prompt,
            call.reply,
            call.input_tokens,
            call.output_tokens,
            call.cost_usd,
            call.cached,
            call.error
        ],
    )
}

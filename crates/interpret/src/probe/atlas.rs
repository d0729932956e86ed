//! Probe results in the atlas: `probes` (one row per probed set and label) and `probe_units`
//! (its largest coefficients and best single units). Units are named by `kind` and `"index"`,
//! as in `units`, so `JOIN units USING (kind, "index")` finds their GO terms. Rerunning a probe
//! with the same set and labels replaces its rows.

use std::path::Path;

use rusqlite::{params, Connection};

use super::{ProbeOptions, ProbeReport};
use crate::error::{AnalysisError, AnalysisResult};

/// Tables, created when missing.
pub const CREATE_PROBE_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS probes (
    probe          INTEGER PRIMARY KEY,
    set_name       TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('feature', 'neuron')),
    labels         TEXT NOT NULL,
    level          TEXT NOT NULL,
    units          INTEGER NOT NULL,
    c              REAL NOT NULL,
    auroc          REAL NOT NULL,
    f1             REAL NOT NULL,
    nonzero        INTEGER NOT NULL,
    best_auroc     REAL NOT NULL,
    units_for_95   INTEGER NOT NULL,
    train_rows     INTEGER NOT NULL,
    test_rows      INTEGER NOT NULL,
    train_proteins INTEGER NOT NULL,
    test_proteins  INTEGER NOT NULL,
    test_positives INTEGER NOT NULL,
    seed           INTEGER NOT NULL,
    test_fraction  REAL NOT NULL,
    path           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_units (
    probe   INTEGER NOT NULL,
    source  TEXT NOT NULL CHECK (source IN ('coefficient', 'single')),
    rank    INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    value   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS probe_units_probe ON probe_units (probe);
"#;

/// Writes `reports` (probes of `labels` at `level`) into the atlas at `path`.
pub fn write_probes(
    path: &Path,
    labels: &str,
    level: &str,
    options: &ProbeOptions,
    reports: &[ProbeReport],
) -> AnalysisResult<()> {
    let mut db = Connection::open(path).map_err(AnalysisError::sqlite(path, "open"))?;
    let tx = db
        .transaction()
        .map_err(AnalysisError::sqlite(path, "begin"))?;
    tx.execute_batch(CREATE_PROBE_TABLES)
        .map_err(AnalysisError::sqlite(path, "create the probe tables"))?;
    for report in reports {
        let write = |tx: &rusqlite::Transaction| -> rusqlite::Result<()> {
            tx.execute(
                "DELETE FROM probe_units WHERE probe IN (SELECT probe FROM probes WHERE \
                 set_name = ?1 AND labels = ?2 AND level = ?3)",
                params![report.name, labels, level],
            )?;
            tx.execute(
                "DELETE FROM probes WHERE set_name = ?1 AND labels = ?2 AND level = ?3",
                params![report.name, labels, level],
            )?;
            tx.execute(
                "INSERT INTO probes (set_name, kind, labels, level, units, c, auroc, f1, \
                 nonzero, best_auroc, units_for_95, train_rows, test_rows, train_proteins, \
                 test_proteins, test_positives, seed, test_fraction, path) VALUES (?1, ?2, ?3, \
                 ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                params![
                    report.name,
                    report.kind.as_str(),
                    labels,
                    level,
                    report.units as i64,
                    report.c,
                    report.auroc,
                    report.f1,
                    report.nonzero as i64,
                    report.best_auroc,
                    report.units_for_95 as i64,
                    report.train_rows as i64,
                    report.test_rows as i64,
                    report.train_proteins as i64,
                    report.test_proteins as i64,
                    report.test_positives as i64,
                    options.seed as i64,
                    options.test_fraction,
                    serde_json::to_string(&report.path).unwrap_or_default(),
                ],
            )?;
            let probe = tx.last_insert_rowid();
            let mut insert = tx.prepare(
                "INSERT INTO probe_units (probe, source, rank, kind, \"index\", value) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (rank, (unit, coef)) in report.coefficients.iter().enumerate() {
                insert.execute(params![
                    probe,
                    "coefficient",
                    rank as i64,
                    report.kind.as_str(),
                    *unit as i64,
                    coef
                ])?;
            }
            for (rank, single) in report.single_units.iter().enumerate() {
                insert.execute(params![
                    probe,
                    "single",
                    rank as i64,
                    report.kind.as_str(),
                    single.unit as i64,
                    single.test_auroc
                ])?;
            }
            Ok(())
        };
        write(&tx).map_err(AnalysisError::sqlite(path, "write the probe rows"))?;
    }
    tx.commit().map_err(AnalysisError::sqlite(path, "commit"))
}

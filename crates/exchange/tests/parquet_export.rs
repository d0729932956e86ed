//! Parquet exports read back with DuckDB (Python package `duckdb`) equal their sources exactly:
//! every atlas table equals what sqlite3 reads, and the long-form set tables equal the rows the
//! store's readers give. Without python3 + duckdb + numpy the Python side is skipped with a
//! notice, except under CI (env `CI`), where the test fails.

mod common;

use std::path::Path;

use common::{python_has, repo_root, run_python, write_codes, write_set};
use plmscope_exchange::{export_atlas, export_set, SetExport};
use plmscope_store::{ActivationSet, CodeSet, Level, StorageDtype};

fn check_script() -> std::path::PathBuf {
    repo_root().join("crates/exchange/tests/python/check_parquet.py")
}

/// An atlas with the real schema and awkward values: NULLs in nullable columns, integers in
/// REAL columns, NaN-free extremes, non-ASCII and tab-holding text, an empty table.
fn write_atlas(path: &Path) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(plmscope_interpret::atlas::schema::CREATE_TABLES)
        .unwrap();
    db.execute_batch(
        r#"
        INSERT INTO meta VALUES ('options', '{"alpha":0.05}'), ('note', 'tab	and ünïcode ✓');
        INSERT INTO proteins VALUES (0, 'P12345', 120, 'E. coli', 'PF00001;PF00002', 1),
                                    (1, 'Q99999', NULL, NULL, NULL, 0);
        INSERT INTO units VALUES (0, 'feature', 0, 0.25, 3.5, 0.125, 0, 12, 40),
                                 (1, 'neuron', 7, 1e-300, 1.7976931348623157e308, -0.0, 1, 0, 0);
        INSERT INTO enrichment VALUES (0, 'go', 'GO:0008150', 3, 12, 40, 500, 3.125,
                                       1.2345678901234567e-12, 0.001, -27.42, -6.9),
                                      (1, 'pfam', 'PF00001', 1, 2, 3, 4, 5, 0.5, 1, -0.69, 0);
        INSERT INTO coherence VALUES (0, 'biological_process', 3, 2.5, NULL, NULL, 4.25, 0.5,
                                      NULL, 1000);
        INSERT INTO unit_patterns VALUES (0, 'point', 12, 0.01, 1, 1, 1, 0, NULL),
                                         (1, 'periodic', 3, 0.2, 4, 3, 2, 0.5, 7);
        "#,
    )
    .unwrap();
}

#[test]
fn atlas_tables_read_back_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let atlas = tmp.path().join("atlas.sqlite");
    write_atlas(&atlas);
    let out = tmp.path().join("parquet");
    let written = export_atlas(&atlas, &out).unwrap();
    assert!(written.iter().any(|p| p.ends_with("enrichment.parquet")));
    assert!(
        written.iter().any(|p| p.ends_with("descriptions.parquet")),
        "empty tables too"
    );
    if python_has(&["duckdb", "numpy"]) {
        let stdout = run_python(&check_script(), &[Path::new("atlas"), &atlas, &out]);
        assert!(stdout.starts_with("ok"), "{stdout}");
    }
}

/// The quick start's atlases, when this checkout has run it (`runs/` is not committed).
#[test]
fn quickstart_atlases_read_back_equal_when_present() {
    let dir = repo_root().join("runs/quickstart/t6/atlas");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "notice: {} absent; run scripts/quickstart.sh to include it",
            dir.display()
        );
        return;
    };
    if !python_has(&["duckdb", "numpy"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for entry in entries
        .flatten()
        .filter(|e| e.path().extension() == Some("sqlite".as_ref()))
    {
        let out = tmp.path().join(entry.file_name());
        export_atlas(&entry.path(), &out).unwrap();
        let stdout = run_python(&check_script(), &[Path::new("atlas"), &entry.path(), &out]);
        assert!(stdout.starts_with("ok"), "{stdout}");
    }
}

fn read_i32(path: &Path) -> Vec<i32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// (protein, position or -1, unit, value) for every entry a set's long form must hold.
type LongRow = (i32, i32, i32, f32);

fn dumped_rows(dump: &Path) -> Vec<LongRow> {
    let protein = read_i32(&dump.join("protein.i32"));
    let position = read_i32(&dump.join("position.i32"));
    let unit = read_i32(&dump.join("unit.i32"));
    let value = read_f32(&dump.join("value.f32"));
    (0..value.len())
        .map(|i| (protein[i], position[i], unit[i], value[i]))
        .collect()
}

fn expected_activation_rows(set: &ActivationSet) -> Vec<LongRow> {
    let mut rows = Vec::new();
    let mut buffer = Vec::new();
    for p in set.proteins() {
        set.read_rows(p.global_first_row, p.rows, &mut buffer)
            .unwrap();
        for (r, row) in buffer.chunks_exact(set.d_model()).enumerate() {
            let position = match set.level() {
                Level::Residue => r as i32,
                Level::Protein => -1,
            };
            for (u, &v) in row.iter().enumerate() {
                rows.push((p.index as i32, position, u as i32, v));
            }
        }
    }
    rows
}

fn check_proteins(dump: &Path, set: &ActivationSet) {
    let text = std::fs::read_to_string(dump.join("proteins.json")).unwrap();
    let got: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let expected: Vec<serde_json::Value> = set
        .proteins()
        .iter()
        .map(|p| serde_json::json!([p.index, p.id, p.length, p.global_first_row, p.rows]))
        .collect();
    assert_eq!(got, expected);
}

fn assert_bitwise_equal(got: &[LongRow], expected: &[LongRow]) {
    assert_eq!(got.len(), expected.len(), "row count");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            g.0 == e.0 && g.1 == e.1 && g.2 == e.2 && g.3.to_bits() == e.3.to_bits(),
            "row {i}: parquet {g:?} != store {e:?}"
        );
    }
}

#[test]
fn activation_sets_read_back_equal_at_both_levels() {
    let tmp = tempfile::tempdir().unwrap();
    let lengths = [3, 5, 1, 4, 2];
    for (level, dtype) in [
        (Level::Residue, StorageDtype::F16),
        (Level::Protein, StorageDtype::F32),
    ] {
        let dir = tmp.path().join(format!("set-{level}"));
        write_set(&dir, level, dtype, &lengths, 6);
        let out = tmp.path().join(format!("parquet-{level}"));
        let (kind, files) = export_set(&dir, None, &out).unwrap();
        assert_eq!(kind, SetExport::Activations);
        assert_eq!(files.len(), 2);
        if !python_has(&["duckdb", "numpy"]) {
            continue;
        }
        let dump = tmp.path().join(format!("dump-{level}"));
        run_python(&check_script(), &[Path::new("set"), &out, &dump]);
        let set = ActivationSet::open(&dir).unwrap();
        assert_bitwise_equal(&dumped_rows(&dump), &expected_activation_rows(&set));
        check_proteins(&dump, &set);
    }
}

#[test]
fn code_sets_read_back_equal_and_need_their_proteins() {
    let tmp = tempfile::tempdir().unwrap();
    let acts = tmp.path().join("acts");
    write_set(&acts, Level::Residue, StorageDtype::F32, &[4, 2, 7], 5);
    let set = ActivationSet::open(&acts).unwrap();
    let codes_dir = tmp.path().join("codes");
    write_codes(&codes_dir, &set, 40);
    let out = tmp.path().join("parquet");
    let err = export_set(&codes_dir, None, &out).unwrap_err().to_string();
    assert!(err.contains("--proteins-from"), "{err}");
    let (kind, _) = export_set(&codes_dir, Some(&acts), &out).unwrap();
    assert_eq!(kind, SetExport::Codes);
    if !python_has(&["duckdb", "numpy"]) {
        return;
    }
    let dump = tmp.path().join("dump");
    run_python(&check_script(), &[Path::new("set"), &out, &dump]);
    let codes = CodeSet::open(&codes_dir).unwrap();
    let mut expected = Vec::new();
    for p in set.proteins() {
        for r in 0..p.rows {
            for (f, v) in codes.row_pairs(p.global_first_row + r) {
                expected.push((p.index as i32, r as i32, f as i32, v));
            }
        }
    }
    assert!(!expected.is_empty());
    assert_bitwise_equal(&dumped_rows(&dump), &expected);
    check_proteins(&dump, &set);
}

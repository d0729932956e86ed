//! workflow/Snakefile end to end with `snakemake --cores 2` on 100 real E. coli proteins and a
//! random-weight t6_8M: 2 embed shards → merge → a protein-level and a residue-level dictionary
//! → 2 encode shards each → merge → 2 analyze shards each → merge. Each atlas must hold the same rows in every table
//! as the atlas `plmscope run` writes for the same settings (the paths in `meta` aside),
//! every job must leave its log under logs/, and a second call must run nothing.
//!
//! Needs snakemake (`pip install snakemake`); skipped without it, except under CI (CI set),
//! where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::{ok, plmscope, s, BIN};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> String {
    let p = repo().join("../shared/data").join(rel);
    assert!(p.exists(), "test data missing: {}", p.display());
    p.canonicalize().unwrap().display().to_string()
}

fn snakemake(dir: &Path, config: &Path) -> Output {
    Command::new("snakemake")
        .arg("--snakefile")
        .arg(repo().join("workflow/Snakefile"))
        .arg("--configfile")
        .arg(config)
        .args(["--cores", "2", "--directory"])
        .arg(dir)
        .output()
        .expect("run snakemake")
}

fn snakemake_available() -> bool {
    let found = Command::new("snakemake")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "snakemake is not installed (CI: pip install snakemake, as .ci/run does)"
        );
        eprintln!("skipped: snakemake is not installed (pip install snakemake)");
    }
    found
}

/// Every table's rows, sorted, as text; `meta` without the rows that name input paths.
/// SQLite's `sqlite_stat4` is left out: its index samples carry rowids, which follow the order
/// rows were inserted in (a merge of analyze parts inserts in another order), not the atlas's
/// content. `sqlite_stat1` (row counts per index) is compared.
fn tables(atlas: &Path) -> Vec<(String, Vec<String>)> {
    let db = rusqlite::Connection::open(atlas).unwrap();
    let names: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_stat4' \
             ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names
        .into_iter()
        .map(|name| {
            let mut stmt = db.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
            let columns = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let cells: Vec<String> =
                        (0..columns).map(|i| cell(r.get_ref(i).unwrap())).collect();
                    Ok(cells.join("\t"))
                })
                .unwrap()
                .map(Result::unwrap)
                .filter(|row| {
                    name != "meta" || !(row.starts_with("inputs\t") || row.starts_with("summary\t"))
                })
                .map(|row| {
                    if name == "meta" {
                        without_paths(&row)
                    } else {
                        row
                    }
                })
                .collect();
            rows.sort();
            (name, rows)
        })
        .collect()
}

/// A `meta` row with the paths in its JSON value left out (the two runs lay out their
/// folders differently: `dictionaries/p` against `t6/dictionaries/p/layer2...`).
fn without_paths(row: &str) -> String {
    let Some((key, value)) = row.split_once('\t') else {
        return row.to_string();
    };
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.retain(|_, v| !v.as_str().is_some_and(|s| s.contains('/')));
            format!("{key}\t{}", serde_json::Value::Object(map))
        }
        _ => row.to_string(),
    }
}

fn cell(v: rusqlite::types::ValueRef) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        // Bits, so that equal means equal.
        ValueRef::Real(x) => format!("{x:e}/{:x}", x.to_bits()),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("{b:?}"),
    }
}

#[test]
fn snakefile_runs_end_to_end_equals_plmscope_run_and_reruns_nothing() {
    if !snakemake_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The first 100 proteins of the E. coli proteome.
    let fasta_text =
        std::fs::read_to_string(data("ecoli_k12/UP000000625_83333_tpp_solver.fasta")).unwrap();
    let mut records = 0;
    let mut kept = String::new();
    for line in fasta_text.lines() {
        if line.starts_with('>') {
            records += 1;
        }
        if records > 100 {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    let fasta = dir.join("proteins.fasta");
    std::fs::write(&fasta, kept).unwrap();
    let (go, go_csv, meta) = (
        data("go-basic.obo"),
        data("ecoli_k12/UP000000625_83333_go.csv"),
        data("ecoli_k12/Ecoli_metadata.txt"),
    );
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
plmscope: "{BIN}"
out: snake
threads: 1
fasta: "{fasta}"
model: {{name: t6, init: {{arch: esm2_t6_8M, seed: 0}}}}
embed: {{layers: [2], levels: [protein, residue], proteins_per_shard: 16, shards: 2}}
encode: {{shards: 2}}
dictionaries:
  p: {{layer: 2, level: protein, train: "--arch topk --k 8 --expansion 2 --steps 60 --batch 32 --seed 0"}}
  r: {{layer: 2, level: residue, train: "--arch topk --k 8 --expansion 2 --steps 40 --batch 512 --seed 0"}}
analyze:
  shards: 2
  go: "{go}"
  annotations: ["{go_csv}", "{meta}"]
"#,
            fasta = s(&fasta),
        ),
    )
    .unwrap();

    let started = Instant::now();
    let first = snakemake(dir, &config);
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        first.status.success(),
        "snakemake failed:\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = dir.join("snake");
    for log in [
        "logs/model_init.log",
        "logs/embed/part-0.log",
        "logs/embed/part-1.log",
        "logs/embed/merge.log",
        "logs/train/p.log",
        "logs/encode/r/part-1.log",
        "logs/encode/r/merge.log",
        "logs/analyze/p/part-0.log",
        "logs/analyze/p/part-1.log",
        "logs/analyze/p/merge.log",
    ] {
        assert!(out.join(log).exists(), "no {log}");
    }

    // The same settings as a study, through plmscope run.
    let study = dir.join("study.toml");
    std::fs::write(
        &study,
        format!(
            r#"
name = "same"
out = "run"
[[proteins]]
fasta = "{fasta}"
[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}
[embed]
layers = [2]
levels = ["protein", "residue"]
proteins_per_shard = 16
[[dictionaries]]
name = "p"
level = "protein"
k = 8
expansion = 2
steps = 60
batch = 32
[[dictionaries]]
name = "r"
level = "residue"
k = 8
expansion = 2
steps = 40
batch = 512
[analyze]
go = "{go}"
annotations = ["{go_csv}", "{meta}"]
"#,
            fasta = s(&fasta),
        ),
    )
    .unwrap();
    ok(&plmscope(&["run", s(&study)]));
    for (name, set) in [
        ("p", "layer2.resid_post.protein"),
        ("r", "layer2.resid_post.residue"),
    ] {
        let snake = tables(&out.join(format!("atlas/{name}.sqlite")));
        let run = tables(&dir.join(format!("run/t6/atlas/{name}.{set}.sqlite")));
        let names: Vec<&str> = snake.iter().map(|(n, _)| n.as_str()).collect();
        for expected in ["units", "enrichment", "proteins", "go_terms", "meta"] {
            assert!(names.contains(&expected), "{name}: no table {expected}");
        }
        assert_eq!(
            names,
            run.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
        );
        for ((table, a), (_, b)) in snake.iter().zip(&run) {
            assert_eq!(a.len(), b.len(), "{name}: table {table} row count");
            let first = a.iter().zip(b).find(|(x, y)| x != y);
            assert!(
                a == b,
                "{name}: table {table} differs from plmscope run's, first at {first:?}"
            );
        }
        assert!(snake
            .iter()
            .any(|(t, rows)| t == "units" && !rows.is_empty()));
    }

    // Everything is up to date: a second call runs nothing.
    let second = snakemake(dir, &config);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(second.status.success(), "{text}");
    assert!(text.contains("Nothing to be done"), "{text}");
    eprintln!("snakemake --cores 2, first call: {seconds:.1}s");
}

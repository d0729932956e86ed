//! `plmscope run`: a small study on the real data in ../shared/data, killed with SIGKILL during
//! embed, training, encode and analyze and rerun, must give atlases whose tables equal an
//! uninterrupted run's; a finished study reruns nothing; a change to [analyze] reruns only
//! the analyze stages; `--plan` says what and why.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{data, ok, plmscope, s, BIN};

fn write_study(dir: &Path, alpha: f64) -> PathBuf {
    let study = format!(
        r#"
name = "small"
out = "out"

[[proteins]]
fasta = "{ecoli}"
max = 120

[[proteins]]
fasta = "{tmbed}"
format = "tmbed"
max = 30

[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}

[embed]
layers = [2, 4]
levels = ["protein", "residue"]
proteins_per_shard = 16

[[dictionaries]]
name = "p"
level = "protein"
k = 8
expansion = 2
steps = 60
batch = 32
checkpoint_every = 5

[[dictionaries]]
name = "r"
level = "residue"
layers = [4]
k = 8
expansion = 4
steps = 80
batch = 512
checkpoint_every = 5

[analyze]
go = "{go}"
annotations = ["{go_csv}", "{meta}"]
residue_labels = ["tmbed={tmbed}"]
alpha = {alpha}
"#,
        ecoli = data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
        tmbed = data("tmbed/alpha.fasta"),
        go = data("go-basic.obo"),
        go_csv = data("ecoli_k12/UP000000625_83333_go.csv"),
        meta = data("ecoli_k12/Ecoli_metadata.txt"),
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, study).unwrap();
    path
}

/// Every atlas of the study: file name → every table's rows as text, in a stable order.
fn atlas_tables(out: &Path) -> Vec<(String, Vec<String>)> {
    let mut result = Vec::new();
    let dir = out.join("t6/atlas");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in files {
        let db = rusqlite::Connection::open(&f).unwrap();
        let mut tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        tables.sort();
        let mut rows = Vec::new();
        for t in tables {
            let mut stmt = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = stmt.column_count();
            let mut table_rows: Vec<String> = stmt
                .query_map([], |r| {
                    let mut line = t.clone();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!("\t{v:?}"));
                    }
                    Ok(line)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            table_rows.sort();
            rows.extend(table_rows);
        }
        result.push((f.file_name().unwrap().to_string_lossy().into_owned(), rows));
    }
    result
}

fn record_incomplete(out: &Path, stage_prefix: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(out.join(".plmscope/stages")) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with(stage_prefix)
            && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"complete\": false"))
    })
}

/// Starts the study, waits until a stage whose record starts with `stage_prefix` is under
/// way, lets it work `delay`, then SIGKILLs the process. Returns whether it was killed while
/// still running (rather than having finished first).
fn kill_during(study: &Path, out: &Path, stage_prefix: &str, delay: Duration) -> bool {
    let mut child = Command::new(BIN)
        .args(["--threads", "2", "run", s(study)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !record_incomplete(out, stage_prefix) {
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(300) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(delay);
    let alive = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    alive
}

#[test]
fn killed_study_resumes_to_the_same_atlases_and_reruns_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let study = write_study(tmp.path(), 0.05);
    let out = tmp.path().join("out");

    // Reference: one uninterrupted run.
    let stdout = ok(&plmscope(&["run", s(&study)]));
    assert!(stdout.contains("stages run"), "{stdout}");
    let reference = atlas_tables(&out);
    assert!(reference
        .iter()
        .all(|(_, rows)| rows.iter().any(|r| r.starts_with("units\t"))));
    std::fs::remove_dir_all(&out).unwrap();

    // The same study killed in each kind of stage, then finished.
    let mut killed = Vec::new();
    for (prefix, delay) in [
        ("embed__", 150),
        ("train__t6__r__", 400),
        ("encode__t6__r__", 30),
        ("analyze__t6__r__", 300),
    ] {
        if kill_during(&study, &out, prefix, Duration::from_millis(delay)) {
            killed.push(prefix);
        }
    }
    assert!(killed.len() >= 3, "killed only during {killed:?}");
    ok(&plmscope(&["run", s(&study)]));
    let resumed = atlas_tables(&out);
    assert_eq!(reference.len(), resumed.len());
    for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
        assert_eq!(a.len(), b.len(), "{name}: row counts differ");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{name}: rows differ after kill -9 and resume");
        }
    }

    // Finished: nothing to do, and the plan says why.
    let again = ok(&plmscope(&["run", s(&study)]));
    assert!(again.contains("nothing to run"), "{again}");
    let plan = ok(&plmscope(&["run", s(&study), "--plan"]));
    assert!(plan.contains("everything is up to date"), "{plan}");

    // Only the analysis settings change: only the analyze stages run again.
    write_study(tmp.path(), 0.01);
    let plan = ok(&plmscope(&["run", s(&study), "--plan"]));
    let to_run: Vec<&str> = plan
        .lines()
        .filter(|l| !l.starts_with("up to date"))
        .collect();
    assert_eq!(to_run.len(), 4, "{plan}"); // 3 analyze stages + the count line
    for line in &to_run[..3] {
        assert!(
            line.starts_with("redo") && line.contains("analyze/") && line.contains("alpha"),
            "{plan}"
        );
    }
    let rerun = ok(&plmscope(&["run", s(&study)]));
    assert!(rerun.contains("3 stages run"), "{rerun}");
}

#[test]
fn bad_study_files_are_refused_with_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[[proteins]]\nfasta = \"p.fa\"\nmaxx = 3\n",
    )
    .unwrap();
    let o = plmscope(&["run", s(&path)]);
    let err = common::fails(&o);
    assert!(err.contains("bad.toml") && err.contains("maxx"), "{err}");
}

#[test]
fn every_example_study_reads_and_plans() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = tmp.path().join(path.file_stem().unwrap());
        let plan = ok(&plmscope(&["run", s(&path), "--plan", "--out", s(&out)]));
        assert!(
            plan.contains("stages to run") && plan.contains("analyze/"),
            "{}: {plan}",
            path.display()
        );
        assert!(!out.exists(), "--plan must write nothing");
        n += 1;
    }
    assert!(
        n >= 6,
        "examples for the quick start and each preset; found {n}"
    );
}

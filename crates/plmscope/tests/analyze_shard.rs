//! `plmscope analyze --shard i/N` and `plmscope merge` of analyze parts, through the real binary,
//! on 150 real E. coli proteins embedded by a random-weight ESM2-8M, a small TopK SAE on the
//! residue activations, and the real GO (go-basic.obo + the E. coli GO list CSV), Pfam (UniProt
//! metadata) and TMbed labels: three parts merged equal a single-process atlas table by table (every table in
//! `sqlite_master`, rows ordered by every column); q-values are recomputed over all parts; a
//! missing part and a damaged part are named and leave no atlas; rerunning the damaged part
//! alone completes the merge.

mod common;

use common::{embed_both_levels, fails, ok, plmscope, random_t6, s};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use rusqlite::Connection;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn data(path: &str) -> String {
    format!("{DATA}/{path}")
}

/// 150 proteins of at most 300 residues, embedded at layer 2 (protein and residue level), an
/// SAE of 640 latents trained on the residue set, and its residue-level code set.
fn build_inputs(root: &Path) {
    let text =
        std::fs::read_to_string(data("ecoli_k12/UP000000625_83333_tpp_solver.fasta")).unwrap();
    let mut fasta = String::new();
    let mut n = 0;
    for record in text.split('>').skip(1) {
        let (header, seq) = record.split_once('\n').unwrap();
        let seq: String = seq.split_whitespace().collect();
        if seq.len() <= 300 && n < 150 {
            fasta.push_str(&format!(">{header}\n{seq}\n"));
            n += 1;
        }
    }
    std::fs::write(root.join("proteins.fasta"), fasta).unwrap();
    let model = root.join("model");
    random_t6(&model);
    embed_both_levels(&model, &root.join("proteins.fasta"), 2, &root.join("acts"));
    let residue = root.join("acts/layer2.resid_post.residue");
    ok(&plmscope(&[
        "train",
        "--activations",
        s(&residue),
        "--k",
        "8",
        "--expansion",
        "2",
        "--epochs",
        "1",
        "--batch",
        "1024",
        "--seed",
        "1",
        "--out",
        s(&root.join("sae")),
    ]));
    ok(&plmscope(&[
        "encode",
        "--sae",
        s(&root.join("sae")),
        "--activations",
        s(&residue),
        "--out",
        s(&root.join("codes")),
    ]));
}

/// The analyze command line (features: residue codes; neurons: protein level), writing `out`,
/// with `--shard` when given.
fn analyze(root: &Path, out: &Path, shard: Option<&str>) -> std::process::Output {
    let codes = root.join("codes");
    let neurons = root.join("acts/layer2.resid_post.protein");
    let fasta = root.join("proteins.fasta");
    let tmbed = format!("tmbed={}", data("tmbed/alpha.fasta"));
    let (go, csv) = (
        data("go-basic.obo"),
        data("ecoli_k12/UP000000625_83333_go.csv"),
    );
    let pfam = data("ecoli_k12/Ecoli_metadata.txt");
    let mut args = vec![
        "analyze",
        "--codes",
        s(&codes),
        "--neurons",
        s(&neurons),
        "--annotations",
        &csv,
        "--annotations",
        &pfam,
        "--go",
        &go,
        "--residue-labels",
        &tmbed,
        "--fasta",
        s(&fasta),
        "--residue-windows",
        // Study sets of 15 proteins and alpha 0.25: a random-weight model's units then have
        // significant GO terms (and coherence tests), so the merged q decides rows and counts.
        "--foreground",
        "top:15",
        "--alpha",
        "0.25",
        "--out",
        s(out),
    ];
    if let Some(spec) = shard {
        args.extend(["--shard", spec]);
    }
    plmscope(&args)
}

fn merge(parts: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(|p| s(p)));
    args.extend(["--out", s(out)]);
    plmscope(&args)
}

/// Every table and index of an atlas (`sqlite_master` less SQLite's own `sqlite_*` statistics),
/// each table with its rows sorted by every column.
type Tables = BTreeMap<String, (String, Vec<Vec<Value>>)>;

fn tables(atlas: &Path) -> Tables {
    let db = Connection::open(atlas).unwrap();
    let schema: Vec<(String, String, Option<String>)> = db
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
             ORDER BY type, name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Tables::new();
    for (kind, name, sql) in schema {
        let sql = sql.unwrap_or_default();
        if kind != "table" {
            out.insert(format!("{kind} {name}"), (sql, Vec::new()));
            continue;
        }
        let columns: Vec<String> = db
            .prepare(&format!("PRAGMA table_info(\"{name}\")"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let order: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let mut statement = db
            .prepare(&format!(
                "SELECT * FROM \"{name}\" ORDER BY {}",
                order.join(", ")
            ))
            .unwrap();
        let n = columns.len();
        let rows: Vec<Vec<Value>> = statement
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.insert(name, (sql, rows));
    }
    out
}

/// `meta.summary` names the atlas path it was written under (`<out>.staging`): the one value
/// that describes the run rather than the analysis; replaced by a placeholder.
fn normalise_meta(tables: &mut Tables) {
    let rows = &mut tables.get_mut("meta").expect("meta table").1;
    for row in rows.iter_mut() {
        if row[0] == Value::Text("summary".into()) {
            let Value::Text(text) = &row[1] else {
                panic!("meta summary is not text")
            };
            let mut json: serde_json::Value = serde_json::from_str(text).unwrap();
            json["atlas"] = serde_json::Value::String("<atlas>".into());
            row[1] = Value::Text(json.to_string());
        }
    }
}

fn assert_same_atlas(single: &Path, merged: &Path) {
    let (mut a, mut b) = (tables(single), tables(merged));
    normalise_meta(&mut a);
    normalise_meta(&mut b);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "tables and indices"
    );
    for (name, (sql, rows)) in &a {
        let (sql_b, rows_b) = &b[name];
        assert_eq!(sql, sql_b, "schema of {name}");
        assert_eq!(rows.len(), rows_b.len(), "rows of {name}");
        for (i, (x, y)) in rows.iter().zip(rows_b).enumerate() {
            assert_eq!(x, y, "{name}: sorted row {i} differs");
        }
    }
}

fn count(atlas: &Path, sql: &str) -> i64 {
    Connection::open(atlas)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn analyze_parts_merge_into_the_single_process_atlas() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_shard");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    build_inputs(&root);

    let single = root.join("single/atlas.sqlite");
    ok(&analyze(&root, &single, None));
    let parts: Vec<PathBuf> = (0..3).map(|i| root.join(format!("parts/p{i}"))).collect();
    for (i, part) in parts.iter().enumerate() {
        ok(&analyze(&root, part, Some(&format!("{i}/3"))));
        assert!(part.join("part.json").is_file());
        assert!(part.join("atlas.sqlite").is_file());
    }
    // 640 features and 320 neurons: part 0 features 0..320, part 1 features 320..640, part 2
    // the neurons (whose study sets need the median over all features).
    let unit_range = |p: &Path| {
        let atlas = p.join("atlas.sqlite");
        (
            count(&atlas, "SELECT MIN(unit) FROM units"),
            count(&atlas, "SELECT MAX(unit) FROM units"),
        )
    };
    assert_eq!(unit_range(&parts[0]), (0, 319));
    assert_eq!(unit_range(&parts[1]), (320, 639));
    assert_eq!(unit_range(&parts[2]), (640, 959));

    let refs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    let merged = root.join("merged/atlas.sqlite");
    let stderr = String::from_utf8_lossy(&ok_output(merge(&refs, &merged))).into_owned();
    assert!(stderr.contains("merged 3 analyze parts"), "{stderr}");
    assert_same_atlas(&single, &merged);

    // The run exercised GO enrichment, coherence, concepts and describe tables.
    for (table, at_least) in [
        ("enrichment", 1),
        ("coherence", 1),
        ("concepts", 1),
        ("family_specificity", 1),
        ("unit_patterns", 640),
        ("similar_units", 1),
        ("protein_activations", 960),
        ("residue_windows", 1),
        ("examples", 1),
    ] {
        let n = count(&merged, &format!("SELECT COUNT(*) FROM \"{table}\""));
        assert!(n >= at_least, "{table}: {n} rows");
    }
    let significant = count(
        &merged,
        "SELECT COUNT(*) FROM enrichment e JOIN units u ON u.unit = e.unit \
         WHERE u.kind = 'feature' AND e.q < 0.25",
    );
    assert!(significant > 0, "no significant feature test");
    // BH over all parts: some GO test's q differs from what its part alone computed (the part
    // keeps every materialised test with its own q), and m is the sum of the parts'.
    let db = Connection::open(&merged).unwrap();
    let merged_q: BTreeMap<(i64, String), f64> = db
        .prepare("SELECT unit, term, ln_q FROM enrichment WHERE annotation = 'go'")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut differs = 0;
    let mut total_tests = 0u64;
    for part in &parts {
        let pdb = Connection::open(part.join("atlas.sqlite")).unwrap();
        total_tests += pdb
            .query_row(
                "SELECT value FROM meta WHERE key = 'feature_go_total_tests'",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let mut st = pdb
            .prepare("SELECT unit, term, ln_q FROM enrichment WHERE annotation = 'go'")
            .unwrap();
        let rows = st
            .query_map([], |r| {
                Ok((
                    (r.get::<_, i64>(0)?, r.get::<_, String>(1)?),
                    r.get::<_, f64>(2)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (key, part_q) = row.unwrap();
            if merged_q.get(&key).is_some_and(|&q| q != part_q) {
                differs += 1;
            }
        }
    }
    assert!(differs > 0, "no q-value changed by merging");
    let merged_m: u64 = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'feature_go_total_tests'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(merged_m, total_tests);
    drop(db);

    // A missing part: named with the --shard to rerun; nothing written.
    let missing = root.join("missing/atlas.sqlite");
    let err = fails(&merge(&[refs[0], refs[2]], &missing));
    assert!(err.contains("--shard 1/3"), "{err}");
    assert!(!missing.exists());
    assert!(!root.join("missing").join("atlas.sqlite.staging").exists());

    // A damaged part: one flipped byte in part 1's atlas is named; nothing written.
    let atlas1 = parts[1].join("atlas.sqlite");
    let mut bytes = std::fs::read(&atlas1).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&atlas1, &bytes).unwrap();
    let damaged = root.join("damaged/atlas.sqlite");
    let err = fails(&merge(&refs, &damaged));
    assert!(err.contains("part 1/3"), "{err}");
    assert!(err.contains(s(&atlas1)), "{err}");
    assert!(err.contains("--shard 1/3"), "{err}");
    assert!(!damaged.exists());

    // Rerunning that part alone completes the merge, equal to the single-process atlas.
    ok(&analyze(&root, &parts[1], Some("1/3")));
    ok_output(merge(&refs, &damaged));
    assert_same_atlas(&single, &damaged);

    // Parts of other inputs or another N do not merge.
    let other = root.join("parts/other");
    ok(&analyze(&root, &other, Some("1/2")));
    let err = fails(&merge(&[refs[0], other.as_path(), refs[2]], &missing));
    assert!(err.contains("differ"), "{err}");
    assert!(!missing.exists());
}

/// Asserts success; returns stderr (merge reports there).
fn ok_output(o: std::process::Output) -> Vec<u8> {
    assert!(
        o.status.success(),
        "plmscope failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stderr
}

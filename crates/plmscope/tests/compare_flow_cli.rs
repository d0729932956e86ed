//! `plmscope compare` and `plmscope flow` through the real binary, on atlases and dictionaries
//! that `plmscope run` builds from real E. coli proteins (GO and Pfam) with a random-weight
//! ESM2-8M at layers 2 and 4: compare's TSV equals independent queries of each atlas and the
//! dictionaries' own training records, its HTML plots every metric; flow matches a dictionary
//! with itself feature for feature, writes the links it prints into the atlas, and links two
//! real layers; bad inputs are named and leave nothing written.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{data, fails, ok, plmscope, s};
use rusqlite::Connection;

struct Study {
    out: PathBuf,
}

impl Study {
    fn atlas(&self, layer: u32) -> PathBuf {
        let dir = self.out.join("t6/atlas");
        let found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.ends_with(".sqlite") && name.contains(&format!("layer{layer}."))
            })
            .collect();
        assert_eq!(found.len(), 1, "one layer-{layer} atlas in {found:?}");
        found[0].clone()
    }

    fn dictionary(&self, layer: u32) -> PathBuf {
        let dir = self.out.join("t6/dictionaries/p");
        let found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.join("cfg.json").exists()
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&format!("layer{layer}."))
            })
            .collect();
        assert_eq!(found.len(), 1, "one layer-{layer} dictionary in {found:?}");
        found[0].clone()
    }
}

/// 80 E. coli proteins, protein-level TopK dictionaries at layers 2 and 4, GO + Pfam analysis
/// with neurons; run once through the binary.
fn study() -> &'static Study {
    static STUDY: OnceLock<Study> = OnceLock::new();
    STUDY.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare_flow_cli");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let toml = format!(
            r#"
name = "compare"
out = "out"

[[proteins]]
fasta = "{ecoli}"
max = 80

[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}

[embed]
layers = [2, 4]
levels = ["protein"]

[[dictionaries]]
name = "p"
level = "protein"
k = 8
expansion = 2
steps = 60
batch = 32

[analyze]
go = "{go}"
annotations = ["{go_csv}", "{meta}"]
neurons = true
alpha = 0.25
"#,
            ecoli = data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
            go = data("go-basic.obo"),
            go_csv = data("ecoli_k12/UP000000625_83333_go.csv"),
            meta = data("ecoli_k12/Ecoli_metadata.txt"),
        );
        let path = root.join("study.toml");
        std::fs::write(&path, toml).unwrap();
        ok(&plmscope(&["run", s(&path)]));
        Study {
            out: root.join("out"),
        }
    })
}

fn scalar(db: &Connection, sql: &str) -> f64 {
    db.query_row(sql, [], |r| r.get::<_, Option<f64>>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(0.0)
}

/// Parses a number cell the way `compare` writes it (integers bare, others to 6 decimals).
fn cell(row: &[&str], header: &[&str], name: &str) -> f64 {
    let at = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    row[at]
        .parse()
        .unwrap_or_else(|_| panic!("{name} = {:?}", row[at]))
}

#[test]
fn compare_tsv_equals_the_atlas_tables_and_html_plots_each_metric() {
    let study = study();
    let (a2, a4) = (study.atlas(2), study.atlas(4));
    let dir = tempfile::tempdir().unwrap();
    let (tsv, html) = (dir.path().join("c.tsv"), dir.path().join("c.html"));
    ok(&plmscope(&[
        "compare",
        s(&a4),
        s(&a2),
        "--tsv",
        s(&tsv),
        "--html",
        s(&html),
    ]));
    let text = std::fs::read_to_string(&tsv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one row per atlas:\n{text}");
    let header: Vec<&str> = lines[0].split('\t').collect();
    for (line, atlas, layer) in [(lines[1], &a4, 4.0), (lines[2], &a2, 2.0)] {
        let row: Vec<&str> = line.split('\t').collect();
        assert_eq!(row.len(), header.len());
        assert_eq!(row[0], s(atlas), "rows in the order given");
        assert_eq!(cell(&row, &header, "layer"), layer);
        let db =
            Connection::open_with_flags(atlas, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        for kind in ["feature", "neuron"] {
            let q = |sql: &str| scalar(&db, &sql.replace("KIND", kind));
            let units = q("SELECT count(*) FROM units WHERE kind = 'KIND'");
            assert!(units > 0.0, "{kind}s analysed");
            assert_eq!(cell(&row, &header, &format!("{kind}_units")), units);
            let dead = q("SELECT avg(dead) FROM units WHERE kind = 'KIND'");
            assert!((cell(&row, &header, &format!("{kind}_dead_fraction")) - dead).abs() < 1e-6);
            // Significant GO: q below the atlas's alpha (0.25 here, recorded in meta).
            let go_units = q(
                "SELECT count(DISTINCT e.unit) FROM enrichment e JOIN units u \
                 ON u.unit = e.unit WHERE u.kind = 'KIND' AND e.annotation = 'go' AND e.q < 0.25",
            );
            let go_terms = q(
                "SELECT count(DISTINCT e.term) FROM enrichment e JOIN units u \
                 ON u.unit = e.unit WHERE u.kind = 'KIND' AND e.annotation = 'go' AND e.q < 0.25",
            );
            assert_eq!(cell(&row, &header, &format!("{kind}_go_units")), go_units);
            assert_eq!(
                cell(&row, &header, &format!("{kind}_go_distinct_terms")),
                go_terms
            );
            assert!(
                (cell(&row, &header, &format!("{kind}_go_share")) - go_units / units).abs() < 1e-6
            );
        }
        // FVE and d_sae from the dictionary's own training record.
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(study.dictionary(layer as u32).join("cfg.json")).unwrap(),
        )
        .unwrap();
        let d_sae = cfg["d_sae"].as_f64().expect("cfg.json d_sae");
        assert_eq!(cell(&row, &header, "d_sae"), d_sae);
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") || page.starts_with("<!doctype html>"));
    for metric in ["go_share", "go_mean_depth", "dead_fraction"] {
        assert!(page.contains(metric), "the page shows {metric}");
    }
    assert!(page.matches("<svg").count() >= 3, "plots across layers");

    // Without --tsv/--html the table goes to stdout, equal to the file.
    let stdout = ok(&plmscope(&["compare", s(&a4), s(&a2)]));
    assert_eq!(stdout, text);
}

#[test]
fn compare_names_a_file_that_is_not_an_atlas() {
    let study = study();
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.sqlite");
    std::fs::write(&bogus, "not a database at all, just text").unwrap();
    let tsv = dir.path().join("c.tsv");
    let err = fails(&plmscope(&[
        "compare",
        s(&study.atlas(2)),
        s(&bogus),
        "--tsv",
        s(&tsv),
    ]));
    assert!(err.contains("notes.sqlite"), "{err}");
    assert!(!tsv.exists(), "nothing written on failure");
}

/// The links stored for the pair (`source`, `target`) of atlas names.
fn flow_links(
    atlas: &Path,
    source: &str,
    target: &str,
) -> Vec<(i64, i64, f64, Option<f64>, String)> {
    let db = Connection::open(atlas).unwrap();
    let mut st = db
        .prepare(
            "SELECT source_unit, target_unit, weight, p, kind FROM flow_links \
             WHERE source_atlas = ?1 AND target_atlas = ?2 ORDER BY target_unit, source_unit",
        )
        .unwrap();
    st.query_map([source, target], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn flow_matches_a_dictionary_with_itself_and_links_two_layers() {
    let study = study();
    let dir = tempfile::tempdir().unwrap();
    let d2 = study.dictionary(2);
    let d4 = study.dictionary(4);
    let atlas = dir.path().join("a4.sqlite");
    std::fs::copy(study.atlas(4), &atlas).unwrap();

    // The same dictionary on both sides: each feature's best match is itself, cosine 1.
    let printed = ok(&plmscope(&[
        "flow",
        "--source",
        s(&d2),
        "--target",
        s(&d2),
        "--atlas",
        s(&atlas),
        "--source-atlas",
        "l2",
        "--target-atlas",
        "l2",
        "--max-p",
        "1",
    ]));
    let links = flow_links(&atlas, "l2", "l2");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d2.join("cfg.json")).unwrap()).unwrap();
    let d_sae = cfg["d_sae"].as_u64().unwrap() as usize;
    assert_eq!(links.len(), d_sae, "one best match per target feature");
    for (source, target, weight, _, kind) in &links {
        // Catches: matching by rank instead of direction, unnormalised rows, a transpose.
        assert_eq!(source, target);
        assert!((weight - 1.0).abs() < 1e-4, "{weight}");
        assert_eq!(kind, "decoder_cosine");
    }
    // The report: the count written, and the ten strongest links, each one stored.
    assert!(
        printed.contains(&format!("{d_sae} links written to")),
        "{printed}"
    );
    let shown: Vec<(i64, i64)> = printed
        .lines()
        .filter(|l| l.split('\t').count() == 5 && !l.starts_with("source"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    assert_eq!(shown.len(), 10, "{printed}");
    assert!(shown
        .iter()
        .all(|(a, b)| links.iter().any(|l| (l.0, l.1) == (*a, *b))));

    // Two real layers, run twice: the second run replaces the first's links of that pair.
    for _ in 0..2 {
        ok(&plmscope(&[
            "flow",
            "--source",
            s(&d2),
            "--target",
            s(&d4),
            "--atlas",
            s(&atlas),
            "--source-atlas",
            "l2",
            "--target-atlas",
            "l4",
            "--max-p",
            "1",
        ]));
    }
    let links = flow_links(&atlas, "l2", "l4");
    assert_eq!(links.len(), d_sae);
    assert_eq!(
        flow_links(&atlas, "l2", "l2").len(),
        d_sae,
        "other pairs kept"
    );
    // Both dictionaries start from the same seeded initialisation and train briefly, so
    // feature t mostly continues feature t; but training moved them: not all cosines are 1.
    assert!(
        links.iter().any(|l| l.2 < 0.999),
        "layer 4's dictionary is not layer 2's"
    );
    assert!(links
        .iter()
        .all(|l| (l.0 as usize) < d_sae && l.2.abs() <= 1.0 + 1e-6 && l.3.is_some()));

    // A missing dictionary is named; the atlas keeps its links.
    let missing = dir.path().join("no-such-dictionary");
    let err = fails(&plmscope(&[
        "flow",
        "--source",
        s(&missing),
        "--target",
        s(&d4),
        "--atlas",
        s(&atlas),
    ]));
    assert!(err.contains("no-such-dictionary"), "{err}");
    assert_eq!(flow_links(&atlas, "l2", "l4").len(), d_sae);
}

#[test]
fn compare_lists_the_probes_written_into_an_atlas() {
    let study = study();
    let dir = tempfile::tempdir().unwrap();
    let atlas = dir.path().join("a2.sqlite");
    std::fs::copy(study.atlas(2), &atlas).unwrap();
    // Protein labels: every third protein of the study's FASTA is class a.
    let fasta = std::fs::read_to_string(study.out.join("proteins.fasta")).unwrap();
    let mut tsv = String::new();
    for (i, header) in fasta.lines().filter(|l| l.starts_with('>')).enumerate() {
        // `>sp|ACC|NAME ...`: the sets name proteins by accession.
        let id = header.split('|').nth(1).unwrap();
        let class = if i % 3 == 0 { "a" } else { "b" };
        tsv.push_str(&format!("{id}\t{class}\n"));
    }
    let labels = dir.path().join("labels.tsv");
    std::fs::write(&labels, tsv).unwrap();
    let set = study.out.join("t6/activations/layer2.resid_post.protein");
    let json = dir.path().join("probe.json");
    ok(&plmscope(&[
        "probe",
        "--activations",
        s(&set),
        "--labels",
        s(&labels),
        "--atlas",
        s(&atlas),
        "--json",
        s(&json),
    ]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let auroc = report[0]["auroc"].as_f64().unwrap();
    let out = dir.path().join("probes.tsv");
    ok(&plmscope(&[
        "compare",
        s(&atlas),
        s(&study.atlas(4)),
        "--probes-tsv",
        s(&out),
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        lines.len(),
        2,
        "one probe, in the layer-2 atlas only:\n{text}"
    );
    let col = |name: &str| lines[0].iter().position(|h| *h == name).unwrap();
    assert_eq!(lines[1][col("kind")], "neuron");
    assert_eq!(lines[1][col("layer")], "2");
    assert_eq!(lines[1][col("atlas")], s(&atlas));
    let stored: f64 = lines[1][col("auroc")].parse().unwrap();
    assert!((stored - auroc).abs() < 1e-6, "{stored} vs {auroc}");

    // Labels under ids the set does not use are named as such, not as an empty split.
    let wrong = dir.path().join("wrong.tsv");
    std::fs::write(&wrong, "sp|P0A7V0|RS2_ECOLI\ta\nsp|P0A7V3|RS3_ECOLI\tb\n").unwrap();
    let err = fails(&plmscope(&[
        "probe",
        "--activations",
        s(&set),
        "--labels",
        s(&wrong),
    ]));
    assert!(
        err.contains("wrong.tsv") && err.contains("none of the 2 labelled proteins"),
        "{err}"
    );
}

//! `plmscope analyze` end to end through the real binary, on 300 real E. coli proteins embedded
//! by a random-weight ESM2-8M, with the real GO, GO list CSV and UniProt metadata (Pfam): the
//! atlas's tables and row counts against the printed summary, unmatched counts against an
//! independent reading of the files, residue-level codes (max over residues, positions kept)
//! against the code set itself, residue concepts, and clean refusals that leave no atlas.

mod common;

use common::{embed_both_levels, fails, ok, plmscope, random_t6, s};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plmscope_store::{ActivationSet, CodeSet};
use rusqlite::Connection;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

/// ln of the default alpha, 0.05; SQL gets it as text, which reads back to the same f64.
fn ln_alpha() -> f64 {
    0.05f64.ln()
}

fn data(path: &str) -> String {
    format!("{DATA}/{path}")
}

fn go_obo() -> String {
    data("go-basic.obo")
}

fn go_csv() -> String {
    data("ecoli_k12/UP000000625_83333_go.csv")
}

fn metadata() -> String {
    data("ecoli_k12/Ecoli_metadata.txt")
}

struct Fixture {
    root: PathBuf,
    /// Accessions of the embedded proteins, in order.
    accessions: Vec<String>,
}

impl Fixture {
    fn set(&self, level: &str) -> PathBuf {
        self.root.join(format!("acts/layer2.resid_post.{level}"))
    }

    /// A fresh folder for one test.
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// 300 E. coli proteins of at most 400 residues, embedded at layer 2 (protein and residue
/// level), made once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_cli");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let text =
            std::fs::read_to_string(data("ecoli_k12/UP000000625_83333_tpp_solver.fasta")).unwrap();
        let mut fasta = String::new();
        let mut accessions = Vec::new();
        for record in text.split('>').skip(1) {
            let (header, seq) = record.split_once('\n').unwrap();
            let seq: String = seq.split_whitespace().collect();
            if seq.len() <= 400 && accessions.len() < 300 {
                fasta.push_str(&format!(">{header}\n{seq}\n"));
                accessions.push(header.split('|').nth(1).unwrap().to_string());
            }
        }
        std::fs::write(root.join("proteins.fasta"), fasta).unwrap();
        let model = root.join("model");
        random_t6(&model);
        embed_both_levels(&model, &root.join("proteins.fasta"), 2, &root.join("acts"));
        Fixture { root, accessions }
    })
}

/// The features and neurons cells of a summary row (`None` for `-`), or `None` without the row.
fn printed_row(stdout: &str, label: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = stdout
        .lines()
        .find(|l| l.len() > 48 && l[..48].trim_end() == label)?;
    let cells: Vec<Option<u64>> = line[48..]
        .split_whitespace()
        .map(|c| c.parse().ok())
        .collect();
    assert_eq!(cells.len(), 2, "{line}");
    Some((cells[0], cells[1]))
}

fn printed(stdout: &str, label: &str) -> (Option<u64>, Option<u64>) {
    printed_row(stdout, label).unwrap_or_else(|| panic!("no summary row '{label}' in:\n{stdout}"))
}

fn count(db: &Connection, sql: &str) -> u64 {
    db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

/// Per kind: units with a significant test and distinct significant terms of one source, from
/// the atlas rows (significance on ln q, as the summary counts it).
fn significant(db: &Connection, annotation: &str, kind: &str) -> (u64, u64) {
    let from = format!(
        "FROM enrichment e JOIN units u ON u.unit = e.unit WHERE e.annotation = '{annotation}' \
         AND u.kind = '{kind}' AND e.ln_q < {}",
        ln_alpha()
    );
    (
        count(db, &format!("SELECT COUNT(DISTINCT e.unit) {from}")),
        count(db, &format!("SELECT COUNT(DISTINCT e.term) {from}")),
    )
}

/// Every summary count that the atlas also holds, checked against it; `units` are the
/// features and neurons expected (0: that kind was not given and prints `-`).
fn check_summary_against_atlas(stdout: &str, db: &Connection, units: (u64, u64)) {
    let given = |n: u64| (n > 0).then_some(n);
    assert_eq!(
        printed(stdout, "units analysed"),
        (given(units.0), given(units.1))
    );
    for (kind, column, n) in [("feature", 0, units.0), ("neuron", 1, units.1)] {
        let kind_count = |sql: &str| count(db, &sql.replace("KIND", kind));
        assert_eq!(
            kind_count("SELECT COUNT(*) FROM units WHERE kind = 'KIND'"),
            n
        );
        // What the summary should print for a count the atlas gives: `-` for an absent kind.
        let expect = |atlas: u64| (n > 0).then_some(atlas);
        let cell =
            |label: &str| printed_row(stdout, label).map(|(f, n)| if column == 0 { f } else { n });
        let dead = kind_count("SELECT COUNT(*) FROM units WHERE kind = 'KIND' AND dead = 1");
        assert_eq!(cell("dead units"), Some(expect(dead)), "{kind}");
        for (source, annotation) in [("GO", "go"), ("Pfam", "pfam")] {
            let Some(printed_units) = cell(&format!("{source} units with a term at q < 0.05"))
            else {
                continue;
            };
            if printed_units.is_none() && n > 0 {
                continue; // the source was not given
            }
            let (units_sig, terms_sig) = significant(db, annotation, kind);
            assert_eq!(printed_units, expect(units_sig), "{source} {kind}");
            assert_eq!(
                cell(&format!("{source} distinct significant terms")),
                Some(expect(terms_sig)),
                "{source} {kind}"
            );
        }
        for ns in ["BP", "MF", "CC"] {
            let label = format!("GO distinct significant terms {ns}");
            let Some(printed_terms) = cell(&label) else {
                continue; // namespace not tested
            };
            if printed_terms.is_none() && n > 0 {
                continue; // GO not tested
            }
            let in_ns = kind_count(&format!(
                "SELECT COUNT(DISTINCT e.term) FROM enrichment e JOIN units u ON u.unit = \
                 e.unit JOIN go_terms g ON g.id = e.term WHERE e.annotation = 'go' AND \
                 u.kind = 'KIND' AND e.ln_q < {} AND g.namespace = '{ns}'",
                ln_alpha()
            ));
            assert_eq!(printed_terms, expect(in_ns), "{label}");
        }
    }
}

fn open_atlas(path: &Path) -> Connection {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Accessions of a GO list CSV (first field) or a UniProt TSV (first column), header skipped.
fn listed_accessions(path: &str, separator: char) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(separator).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn protein_level_atlas_holds_what_the_summary_prints() {
    let f = fixture();
    let dir = f.dir("protein_level");
    let atlas = dir.join("atlas.sqlite");
    let tsv = dir.join("tsvdir");
    let set = f.set("protein");
    let out = ok(&plmscope(&[
        "analyze",
        "--activations",
        s(&set),
        "--neurons",
        s(&set),
        "--annotations",
        &go_csv(),
        "--annotations",
        &metadata(),
        "--go",
        &go_obo(),
        "--out",
        s(&atlas),
        "--tsv",
        s(&tsv),
    ]));
    assert!(atlas.exists() && !dir.join("atlas.sqlite.tmp").exists());
    let db = open_atlas(&atlas);
    let tables: BTreeSet<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in [
        "meta",
        "proteins",
        "units",
        "examples",
        "go_terms",
        "enrichment",
        "concepts",
        "descriptions",
        "coherence",
    ] {
        assert!(tables.contains(table), "{table} missing: {tables:?}");
    }
    assert!(out.contains("proteins analysed: 300"), "{out}");
    let accessions: Vec<String> = db
        .prepare("SELECT accession FROM proteins ORDER BY protein")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(accessions, f.accessions);

    // Unmatched proteins, counted independently from the annotation files.
    let unmatched =
        |listed: &BTreeSet<String>| f.accessions.iter().filter(|a| !listed.contains(*a)).count();
    let go_unmatched = unmatched(&listed_accessions(&go_csv(), ','));
    let pfam_unmatched = unmatched(&listed_accessions(&metadata(), '\t'));
    assert!(
        pfam_unmatched > 0,
        "the 2020 metadata lacks some 2024 proteins"
    );
    assert!(out.contains(&format!(
        "GO records: {} matched, {go_unmatched} unmatched",
        300 - go_unmatched
    )));
    assert!(out.contains(&format!(
        "Pfam records: {} matched, {pfam_unmatched} unmatched",
        300 - pfam_unmatched
    )));
    let meta = |key: &str| -> String {
        db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(meta("pfam_unmatched_proteins"), pfam_unmatched.to_string());

    check_summary_against_atlas(&out, &db, (320, 320));
    // Dense features default to their top 1% (3 of 300 proteins); the neurons are matched to
    // that size, so both kinds see the same study sets from the same set: the same tests.
    assert_eq!(printed(&out, "median study-set size"), (Some(3), Some(3)));
    assert!(meta("feature_foreground_rule_text").contains("3 highest"));
    let tests = |kind: &str| -> Vec<(i64, String, i64, f64)> {
        db.prepare(&format!(
            "SELECT u.\"index\", e.term, e.study_count, e.ln_p FROM enrichment e JOIN units u \
             ON u.unit = e.unit WHERE u.kind = '{kind}' ORDER BY 1, 2, e.annotation"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let feature_tests = tests("feature");
    assert!(!feature_tests.is_empty());
    assert_eq!(feature_tests, tests("neuron"));

    // The TSV export: every table, one line per row plus the header.
    for (table, rows) in [
        ("units", 640),
        ("proteins", 300),
        (
            "enrichment",
            count(&db, "SELECT COUNT(*) FROM enrichment") as usize,
        ),
    ] {
        let text = std::fs::read_to_string(tsv.join(format!("{table}.tsv"))).unwrap();
        assert_eq!(text.lines().count(), rows + 1, "{table}.tsv");
    }
    assert!(
        out.contains(&format!(
            "exported {} tables",
            tables.iter().filter(|t| !t.starts_with("sqlite_")).count()
        )),
        "{out}"
    );
}

#[test]
fn larger_study_sets_find_terms_and_the_atlas_agrees() {
    let f = fixture();
    let dir = f.dir("top30");
    let atlas = dir.join("atlas.sqlite");
    let set = f.set("protein");
    let out = ok(&plmscope(&[
        "analyze",
        "--activations",
        s(&set),
        "--neurons",
        s(&set),
        "--annotations",
        &go_csv(),
        "--annotations",
        &metadata(),
        "--go",
        &go_obo(),
        "--foreground",
        "top:30",
        "--namespace",
        "BP,MF,CC",
        "--out",
        s(&atlas),
    ]));
    let db = open_atlas(&atlas);
    check_summary_against_atlas(&out, &db, (320, 320));
    let (units_go, _) = printed(&out, "GO units with a term at q < 0.05");
    assert!(units_go.unwrap() > 0, "{out}");
    // Every feature's study set holds its 30 highest proteins.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM units WHERE kind = 'feature' AND study_size != 30"
        ),
        0
    );
}

/// `similar_units` (written by `analyze` from the code set's dictionary) against a brute-force
/// decoder cosine in f64: each listed neighbour's cosine, ranks in order, and no unlisted
/// feature closer than the last one listed.
fn check_similar_units_against_decoder(db: &Connection, sae: &Path) {
    let dictionary = plmscope_sae::io::load(sae).unwrap();
    let (n, d) = (dictionary.d_sae, dictionary.w_dec.len() / dictionary.d_sae);
    let row = |i: usize| &dictionary.w_dec[i * d..(i + 1) * d];
    let norm = |i: usize| {
        row(i)
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let cosine = |i: usize, j: usize| {
        let dot: f64 = row(i)
            .iter()
            .zip(row(j))
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        dot / (norm(i) * norm(j))
    };
    let mut listed: BTreeMap<i64, Vec<(i64, i64, f64)>> = BTreeMap::new();
    let mut st = db
        .prepare("SELECT unit, rank, other, cosine FROM similar_units ORDER BY unit, rank")
        .unwrap();
    for r in st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
    {
        let (unit, rank, other, c): (i64, i64, i64, f64) = r.unwrap();
        listed.entry(unit).or_default().push((rank, other, c));
    }
    let live: Vec<usize> = (0..n).filter(|&i| norm(i) > 0.0).collect();
    assert_eq!(
        listed.len(),
        live.len(),
        "one neighbour list per non-zero decoder row"
    );
    // Spot-check every 37th feature exhaustively (all pairs would be 1280² cosines in debug).
    for &i in live.iter().step_by(37) {
        let list = &listed[&(i as i64)];
        assert_eq!(list.len(), 10);
        for (k, &(rank, other, c)) in list.iter().enumerate() {
            assert_eq!(rank, k as i64);
            assert_ne!(other, i as i64);
            assert!(
                (c - cosine(i, other as usize)).abs() < 1e-4,
                "unit {i} rank {k}"
            );
        }
        let last = list[9].2;
        let named: BTreeSet<i64> = list.iter().map(|t| t.1).collect();
        let closer = live
            .iter()
            .filter(|&&j| j != i && !named.contains(&(j as i64)) && cosine(i, j) > last + 1e-4)
            .count();
        assert_eq!(
            closer, 0,
            "unit {i}: an unlisted feature is closer than rank 9"
        );
    }
}

#[test]
fn residue_codes_take_the_max_over_residues_and_score_concepts() {
    let f = fixture();
    let dir = f.dir("codes");
    let residue = f.set("residue");
    let sae = dir.join("sae");
    ok(&plmscope(&[
        "train",
        "--activations",
        s(&residue),
        "--k",
        "8",
        "--expansion",
        "4",
        "--epochs",
        "1",
        "--batch",
        "1024",
        "--seed",
        "1",
        "--out",
        s(&sae),
    ]));
    let codes = dir.join("codes");
    ok(&plmscope(&[
        "encode",
        "--sae",
        s(&sae),
        "--activations",
        s(&residue),
        "--out",
        s(&codes),
    ]));
    let atlas = dir.join("atlas.sqlite");
    let out = ok(&plmscope(&[
        "analyze",
        "--codes",
        s(&codes),
        "--neurons",
        s(&f.set("protein")),
        "--annotations",
        &go_csv(),
        "--go",
        &go_obo(),
        "--residue-labels",
        &format!("tmbed={}", data("tmbed/alpha.fasta")),
        "--residue-labels",
        &format!(
            "binding={}",
            data("bindembed21/development_set/binding_residues_2.5_metal.txt")
        ),
        "--out",
        s(&atlas),
    ]));
    let db = open_atlas(&atlas);
    check_summary_against_atlas(&out, &db, (1280, 320));
    check_similar_units_against_decoder(&db, &sae);
    let meta = |key: &str| -> String {
        db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(meta("feature_level"), "residue");
    assert_eq!(meta("neuron_level"), "protein");

    // Top examples: the protein-level value is the max of the feature's codes over the
    // protein's residues, at the residue the atlas names.
    let code_set = CodeSet::open(&codes).unwrap();
    let set = ActivationSet::open(&residue).unwrap();
    let examples: Vec<(i64, i64, f64, i64)> = db
        .prepare(
            "SELECT x.unit, x.protein, x.activation, x.position FROM examples x JOIN units u \
             ON u.unit = x.unit WHERE u.kind = 'feature' AND x.kind = 'top' AND x.rank = 0",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!examples.is_empty());
    for &(unit, protein, activation, position) in &examples {
        let rows = set.protein_rows(protein as usize);
        let (best_row, best) = rows
            .clone()
            .filter_map(|r| {
                code_set
                    .row_pairs(r)
                    .find(|&(f, _)| f as i64 == unit)
                    .map(|(_, v)| (r, v))
            })
            .fold((usize::MAX, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
        assert_eq!(activation as f32, best, "unit {unit} protein {protein}");
        assert_eq!(position as usize, best_row - rows.start);
    }

    // Concepts: residue-level features only, from both label files.
    let concepts: BTreeMap<String, u64> = db
        .prepare("SELECT concept, COUNT(DISTINCT unit) FROM concepts GROUP BY concept")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(concepts.contains_key("tmbed:tm_helix"), "{concepts:?}");
    assert!(concepts.contains_key("binding:metal"), "{concepts:?}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM concepts c JOIN units u ON u.unit = c.unit \
             WHERE u.kind != 'feature'"
        ),
        0
    );
    let good_units = count(
        &db,
        "SELECT COUNT(DISTINCT unit) FROM concepts WHERE f1 >= 0.5",
    );
    assert_eq!(
        printed(&out, "concept units with F1 >= 0.5"),
        (Some(good_units), None)
    );
}

#[test]
fn gaf_and_uniprot_tsv_records_count_matched_proteins() {
    let f = fixture();
    let dir = f.dir("gaf");
    let gaf = data("ecoli_k12/gene_association.ecocyc");
    let set = f.set("protein");
    let out = ok(&plmscope(&[
        "analyze",
        "--neurons",
        s(&set),
        "--annotations",
        &metadata(),
        "--gaf",
        &gaf,
        "--namespace",
        "BP",
        "--correction",
        "bonferroni",
        "--out",
        s(&dir.join("atlas.sqlite")),
        "--go",
        &go_obo(),
    ]));
    // GO records: the metadata's rows (it has a GO BP column) and the GAF's accessions, NOT
    // lines aside; Pfam records: the metadata's rows.
    let text = std::fs::read_to_string(&gaf).unwrap();
    let mut go = listed_accessions(&metadata(), '\t');
    go.extend(
        text.lines()
            .filter(|l| !l.starts_with('!'))
            .filter_map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (!c[3].contains("NOT")).then(|| c[1].to_string())
            }),
    );
    let matched = f.accessions.iter().filter(|a| go.contains(*a)).count();
    assert!(
        out.contains(&format!(
            "GO records: {matched} matched, {} unmatched",
            300 - matched
        )),
        "{out}"
    );
    let db = open_atlas(&dir.join("atlas.sqlite"));
    check_summary_against_atlas(&out, &db, (0, 320));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM go_terms WHERE namespace != 'BP'"),
        0
    );
    let method: String = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'correction_method'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(method.contains("Bonferroni"), "{method}");
}

/// Runs a failing analysis of the protein-level set in a fresh folder (with `--go GO` when
/// given); returns stderr after checking that no atlas (or temporary atlas) was left behind.
fn refused_with(name: &str, annotations: &[&str], go: Option<&str>) -> String {
    let f = fixture();
    let dir = f.dir(name);
    let atlas = dir.join("atlas.sqlite");
    let set = f.set("protein");
    let mut args = vec!["analyze", "--neurons", s(&set), "--out", s(&atlas)];
    if let Some(go) = go {
        args.extend(["--go", go]);
    }
    for a in annotations {
        args.extend(["--annotations", a]);
    }
    let err = fails(&plmscope(&args));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    err
}

fn refused(name: &str, annotations: &[&str], go: &str) -> String {
    refused_with(name, annotations, Some(go))
}

/// The metadata's Entry and Pfam columns only: a Pfam source that carries no GO.
fn pfam_only_tsv(path: &Path) {
    let text = std::fs::read_to_string(metadata()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        out.push_str(&format!("{}\t{}\n", cells[0], cells[6]));
    }
    assert!(out.starts_with("Entry\tCross-reference (Pfam)\n"));
    std::fs::write(path, out).unwrap();
}

#[test]
fn pfam_alone_runs_without_an_ontology() {
    let f = fixture();
    let dir = f.dir("pfam_only");
    let pfam = dir.join("pfam.tsv");
    pfam_only_tsv(&pfam);
    let atlas = dir.join("atlas.sqlite");
    let set = f.set("protein");
    let out = ok(&plmscope(&[
        "analyze",
        "--neurons",
        s(&set),
        "--annotations",
        s(&pfam),
        "--neuron-foreground",
        "top:30",
        "--out",
        s(&atlas),
    ]));
    assert!(out.contains("GO records: -"), "{out}");
    let listed = listed_accessions(&metadata(), '\t');
    let matched = f.accessions.iter().filter(|a| listed.contains(*a)).count();
    assert!(
        out.contains(&format!(
            "Pfam records: {matched} matched, {} unmatched",
            300 - matched
        )),
        "{out}"
    );
    let db = open_atlas(&atlas);
    check_summary_against_atlas(&out, &db, (0, 320));
    assert_eq!(
        printed(&out, "GO units with a term at q < 0.05"),
        (None, None)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM go_terms"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM enrichment WHERE annotation != 'pfam'"
        ),
        0
    );
    assert!(count(&db, "SELECT COUNT(*) FROM enrichment") > 0, "{out}");
}

#[test]
fn go_annotations_and_the_ontology_are_given_together() {
    // GO annotations without --go would go untested: refused, naming the file and the flag.
    let err = refused_with("go_without_obo", &[&go_csv()], None);
    assert!(err.contains(&go_csv()) && err.contains("--go"), "{err}");
    // So is the metadata: it carries a GO column beside Pfam.
    let err = refused_with("metadata_without_obo", &[&metadata()], None);
    assert!(err.contains(&metadata()) && err.contains("--go"), "{err}");
    // An ontology with no GO annotation to test.
    let pfam = fixture().root.join("pfam_for_obo.tsv");
    pfam_only_tsv(&pfam);
    let err = refused("obo_without_go", &[s(&pfam)], &go_obo());
    assert!(
        err.contains(&go_obo()) && err.contains("none of the annotation files carries GO"),
        "{err}"
    );
    // Nothing to test at all.
    let err = refused_with("no_annotations", &[], None);
    assert!(err.contains("nothing to test"), "{err}");
}

#[test]
fn bad_inputs_are_named_and_leave_no_atlas() {
    let root = fixture().dir("bad_inputs");
    let missing_go = root.join("no-such-go.obo");
    let err = refused("missing_go", &[&go_csv()], s(&missing_go));
    assert!(err.contains(s(&missing_go)), "{err}");

    let no_entry = root.join("no_entry.tsv");
    std::fs::write(
        &no_entry,
        "Accession\tCross-reference (Pfam)\nP00350\tPF00393;\n",
    )
    .unwrap();
    let err = refused("no_entry", &[&go_csv(), s(&no_entry)], &go_obo());
    assert!(
        err.contains(s(&no_entry)) && err.contains("'Entry'"),
        "{err}"
    );

    let useless = root.join("useless.tsv");
    std::fs::write(&useless, "Entry\tGene names\nP00350\tgnd\n").unwrap();
    let err = refused("useless", &[&go_csv(), s(&useless)], &go_obo());
    assert!(err.contains(s(&useless)) && err.contains("Pfam"), "{err}");

    let bad_id = root.join("bad_go.csv");
    std::fs::write(
        &bad_id,
        "Protein ID,GO ID,Function,Link\nP00350,GO:0009051,x,y\nP00351,GO:12x,x,y\n",
    )
    .unwrap();
    let err = refused("bad_id", &[s(&bad_id)], &go_obo());
    assert!(err.contains(&format!("{}:3", s(&bad_id))), "{err}");

    let unknown = root.join("notes.txt");
    std::fs::write(&unknown, "some free text\n").unwrap();
    let err = refused("unknown", &[s(&unknown)], &go_obo());
    assert!(
        err.contains(s(&unknown)) && err.contains("unknown annotation format"),
        "{err}"
    );
}

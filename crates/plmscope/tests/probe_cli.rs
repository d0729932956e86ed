//! `plmscope probe` end to end through the real binary, on real TMbed proteins (alpha-helical
//! membrane proteins from `alpha.fasta` plus globular SignalP proteins without a signal peptide
//! from `cv_00_a.fasta`) embedded by a random-weight ESM2-8M: residue-level TM-helix labels
//! (counts against an independent reading of the TMbed file, held-out AUROC well above chance,
//! the atlas tables), protein-level TSV labels (rarer class positive), and bad label files named
//! with their path and line.

mod common;

use common::{embed_both_levels, fails, ok, plmscope, random_t6, s};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::Connection;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
// Sizes: 20 membrane proteins (2,025 labelled residues) keep the embedding step short in a
// debug build; the probe itself handles the quick-start's 19,306 rows in about a minute
// (BENCHMARKS.md).
const MAX_LEN: usize = 250;
const MEMBRANE: usize = 20;
const GLOBULAR: usize = 12;

fn alpha() -> String {
    format!("{DATA}/tmbed/alpha.fasta")
}

/// One TMbed record: header (without `>`), sequence, label string.
struct Record {
    header: String,
    sequence: String,
    labels: String,
}

impl Record {
    /// The UniProt accession: 2nd field of `pdbid_chain|ACC|NAME`, 1st of `ACC|KINGDOM|...`.
    fn accession(&self) -> &str {
        let fields: Vec<&str> = self.header.split('|').collect();
        if fields.len() == 3 {
            fields[1]
        } else {
            fields[0]
        }
    }
}

/// The first `n` records of a TMbed file with at most `MAX_LEN` residues, only the 20 standard
/// amino acids, and a header passing `keep`.
fn tmbed_records(path: &str, n: usize, keep: impl Fn(&str) -> bool) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .chunks(3)
        .map(|c| Record {
            header: c[0].strip_prefix('>').unwrap().trim().to_string(),
            sequence: c[1].trim().to_string(),
            labels: c[2].trim().to_string(),
        })
        .filter(|r| {
            r.sequence.len() <= MAX_LEN
                && r.sequence
                    .bytes()
                    .all(|b| b"ACDEFGHIKLMNPQRSTVWY".contains(&b))
                && keep(&r.header)
        })
        .take(n)
        .collect()
}

struct Fixture {
    root: PathBuf,
    membrane: Vec<Record>,
    globular: Vec<Record>,
}

impl Fixture {
    fn set(&self, level: &str) -> String {
        s(&self.root.join(format!("acts/layer3.resid_post.{level}"))).to_string()
    }

    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// The proteins embedded once at layer 3, residue and protein level.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("probe_cli");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let membrane = tmbed_records(&alpha(), MEMBRANE, |_| true);
        let globular = tmbed_records(&format!("{DATA}/tmbed/cv_00_a.fasta"), GLOBULAR, |h| {
            h.contains("|NO_SP|")
        });
        assert_eq!((membrane.len(), globular.len()), (MEMBRANE, GLOBULAR));
        assert!(
            globular
                .iter()
                .all(|g| membrane.iter().all(|m| m.accession() != g.accession())),
            "the two groups share no accession"
        );
        let mut fasta = String::new();
        for r in membrane.iter().chain(&globular) {
            fasta.push_str(&format!(">{}\n{}\n", r.header, r.sequence));
        }
        std::fs::write(root.join("proteins.fasta"), fasta).unwrap();
        let model = root.join("model");
        random_t6(&model);
        embed_both_levels(&model, &root.join("proteins.fasta"), 3, &root.join("acts"));
        Fixture {
            root,
            membrane,
            globular,
        }
    })
}

/// `R rows of P labelled proteins (K positive)` from stderr.
fn counts(stderr: &str) -> (usize, usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("labelled proteins"))
        .unwrap_or_else(|| panic!("no counts line in:\n{stderr}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    (numbers[0], numbers[1], numbers[2])
}

fn reports(path: &Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json.as_array().unwrap().clone()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

#[test]
fn residue_tm_helix_probe_counts_auroc_and_atlas() {
    let f = fixture();
    let dir = f.dir("residue");
    let (json, atlas) = (dir.join("out.json"), dir.join("atlas.sqlite"));
    let labels = format!("tmbed={}", alpha());
    let o = plmscope(&[
        "probe",
        "--activations",
        &f.set("residue"),
        "--labels",
        &labels,
        "--c",
        "0.05",
        "--json",
        s(&json),
        "--atlas",
        s(&atlas),
    ]);
    let stdout = ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Independent count: residues not labelled U; positives H/h. Globular proteins are not in
    // alpha.fasta, so they are left out.
    let rows: usize = f
        .membrane
        .iter()
        .map(|r| r.labels.bytes().filter(|&b| b != b'U').count())
        .sum();
    let helix: usize = f
        .membrane
        .iter()
        .map(|r| r.labels.bytes().filter(|&b| b == b'H' || b == b'h').count())
        .sum();
    assert_eq!(counts(&stderr), (rows, MEMBRANE, helix), "{stderr}");
    let reports = reports(&json);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["kind"], "neuron");
    assert_eq!(num(r, "units"), 320.0);
    assert_eq!(
        num(r, "train_rows") + num(r, "test_rows"),
        rows as f64,
        "rows in the JSON"
    );
    assert_eq!(
        num(r, "train_proteins") + num(r, "test_proteins"),
        MEMBRANE as f64
    );
    let auroc = num(r, "auroc");
    eprintln!("residue-level TM helix: held-out AUROC {auroc:.4}, rows {rows}, helix {helix}");
    // Observed 0.69 on held-out proteins (random weights, 20 proteins); chance is 0.5.
    assert!(auroc > 0.6, "TM helices are recoverable: AUROC {auroc}");
    assert_eq!(
        stdout.lines().count(),
        2,
        "header and one report:\n{stdout}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["atlas.sqlite", "out.json"],
        "no temporary file is left"
    );

    let db = Connection::open(&atlas).unwrap();
    let (n, stored_labels, level, stored_auroc): (i64, String, String, f64) = db
        .query_row(
            "SELECT count(*), labels, level, auroc FROM probes",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (n, stored_labels.as_str(), level.as_str()),
        (1, labels.as_str(), "residue")
    );
    assert_eq!(stored_auroc, auroc);
    let units: i64 = db
        .query_row(
            "SELECT count(*) FROM probe_units WHERE probe IN (SELECT probe FROM probes)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(units > 0, "probe_units holds the probe's units");
}

#[test]
fn protein_level_tsv_positive_defaults_to_the_rarer_class() {
    let f = fixture();
    let dir = f.dir("protein");
    let tsv = dir.join("labels.tsv");
    let mut text = String::from("# accession\tclass\n");
    for r in &f.membrane {
        assert!(
            r.labels.contains(['H', 'h']),
            "alpha.fasta proteins have TM helices"
        );
        text.push_str(&format!("{}\ttm\n", r.accession()));
    }
    for r in &f.globular {
        assert!(!r.labels.contains(['H', 'h']));
        text.push_str(&format!("{}\tsoluble\n", r.accession()));
    }
    std::fs::write(&tsv, text).unwrap();
    let json = dir.join("out.json");
    let o = plmscope(&[
        "probe",
        "--activations",
        &f.set("protein"),
        "--labels",
        s(&tsv),
        "--level",
        "protein",
        "--json",
        s(&json),
    ]);
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let all = MEMBRANE + GLOBULAR;
    assert_eq!(counts(&stderr), (all, all, GLOBULAR), "{stderr}");
    let reports = reports(&json);
    assert_eq!(reports.len(), 1);
    let auroc = num(&reports[0], "auroc");
    eprintln!("protein-level tm/soluble: held-out AUROC {auroc:.4}");
    assert!(auroc.is_finite() && (0.0..=1.0).contains(&auroc), "{auroc}");
}

#[test]
fn bad_label_files_are_named_with_path_and_line() {
    let f = fixture();
    let dir = f.dir("bad");
    let tsv = dir.join("bad.tsv");
    std::fs::write(&tsv, "P02724\ttm\nP13271 tm\n").unwrap();
    let err = fails(&plmscope(&[
        "probe",
        "--activations",
        &f.set("protein"),
        "--labels",
        s(&tsv),
    ]));
    assert!(err.contains(&format!("{}:2:", tsv.display())), "{err}");

    let err = fails(&plmscope(&[
        "probe",
        "--activations",
        &f.set("residue"),
        "--labels",
        "tmbed=/nonexistent/alpha.fasta",
    ]));
    assert!(err.contains("/nonexistent/alpha.fasta"), "{err}");
}

/// Metal-binding residues (bindEmbed21, BioLiP) of 24 development-set proteins of at most
/// `MAX_LEN` residues, plus 6 proteins absent from the binding file: `binding=FILE` labels
/// every residue of a listed protein (listed positions positive, the rest negative) and leaves
/// the unlisted proteins out.
#[test]
fn binding_residue_labels_count_every_residue_of_listed_proteins() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("probe_cli_binding");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let set = format!("{DATA}/bindembed21/development_set");
    let metal = format!("{set}/binding_residues_2.5_metal.txt");
    // Independent reading of both files.
    let fasta = std::fs::read_to_string(format!("{set}/all.fasta")).unwrap();
    let mut sequences: Vec<(String, String)> = Vec::new();
    for block in fasta.split('>').filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let id = lines.next().unwrap().trim().to_string();
        sequences.push((id, lines.map(str::trim).collect()));
    }
    let positions: std::collections::HashMap<String, Vec<usize>> = std::fs::read_to_string(&metal)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (acc, list) = l.split_once('\t')?;
            let p: Vec<usize> = list.split(',').map(|x| x.trim().parse().unwrap()).collect();
            Some((acc.to_string(), p))
        })
        .collect();
    let short =
        |s: &str| s.len() <= MAX_LEN && s.bytes().all(|b| b"ACDEFGHIKLMNPQRSTVWY".contains(&b));
    let listed: Vec<&(String, String)> = sequences
        .iter()
        .filter(|(id, seq)| positions.contains_key(id) && short(seq))
        .take(24)
        .collect();
    let unlisted: Vec<&(String, String)> = sequences
        .iter()
        .filter(|(id, seq)| !positions.contains_key(id) && short(seq))
        .take(6)
        .collect();
    assert_eq!((listed.len(), unlisted.len()), (24, 6));
    let mut text = String::new();
    for (id, seq) in listed.iter().chain(&unlisted) {
        text.push_str(&format!(">{id}\n{seq}\n"));
    }
    std::fs::write(dir.join("proteins.fasta"), text).unwrap();
    let model = dir.join("model");
    random_t6(&model);
    embed_both_levels(&model, &dir.join("proteins.fasta"), 3, &dir.join("acts"));

    let json = dir.join("out.json");
    let labels = format!("binding={metal}");
    let o = plmscope(&[
        "probe",
        "--activations",
        s(&dir.join("acts/layer3.resid_post.residue")),
        "--labels",
        &labels,
        "--c",
        "0.05",
        "--json",
        s(&json),
    ]);
    ok(&o);
    let rows: usize = listed.iter().map(|(_, seq)| seq.len()).sum();
    let binding: usize = listed.iter().map(|(id, _)| positions[id].len()).sum();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Catches: positions read 0-based, residues past the last listed position dropped, proteins
    // without binding sites counted as all-negative.
    assert_eq!(counts(&stderr), (rows, 24, binding), "{stderr}");
    let r = &reports(&json)[0];
    assert_eq!(num(r, "train_rows") + num(r, "test_rows"), rows as f64);
    let auroc = num(r, "auroc");
    eprintln!("metal binding: held-out AUROC {auroc:.4}, rows {rows}, binding {binding}");
    // Metal sites are mostly C, H, D, E: residue identity alone separates them from chance.
    assert!(
        auroc > 0.6,
        "metal-binding residues are recoverable: {auroc}"
    );
}

//! The served atlas in headless Chromium: a small study on the real data in ../shared/data
//! (E. coli proteins with GO and Pfam, TMbed membrane proteins) run through the library stages,
//! served with its dictionary; Chromium searches a GO term, opens the feature page it finds,
//! and the test checks the DOM after the page's scripts ran: residue tracks shaded with one
//! maximum marked per track, and one enrichment row per GO row the atlas stores for that unit.
//! A screenshot of the feature page is taken (set PLMSCOPE_SCREENSHOT=FILE to keep it).
//!
//! Needs `chromium` (Debian's package; `.ci/run` installs it). Under CI a missing chromium is a
//! failure, not a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use plmscope_web::{spawn_on_loopback, AppState, ServeOptions};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn data(rel: &str) -> String {
    let p = Path::new(DATA).join(rel);
    assert!(p.exists(), "test data missing: {}", p.display());
    p.display().to_string()
}

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
        {
            if out.status.success() {
                return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("chromium is missing (CI is set): apt-get install -y chromium");
    }
    None
}

/// A residue-level study: 60 E. coli + 20 TMbed proteins, ESM2 t6 random weights, layer 4.
/// A study this small has few GO terms below q 0.05; search covers every stored GO test
/// (p < 0.05), so the test searches the best one.
fn run_study(dir: &Path) -> PathBuf {
    let study = format!(
        r#"
name = "browser"
out = "out"

[[proteins]]
fasta = "{ecoli}"
max = 60

[[proteins]]
fasta = "{tmbed}"
format = "tmbed"
max = 20

[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}

[embed]
layers = [4]
levels = ["residue"]

[[dictionaries]]
name = "r"
level = "residue"
k = 8
expansion = 2
steps = 60
batch = 512

[analyze]
go = "{go}"
annotations = ["{go_csv}", "{meta}"]
residue_labels = ["tmbed={tmbed}"]
"#,
        ecoli = data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
        tmbed = data("tmbed/alpha.fasta"),
        go = data("go-basic.obo"),
        go_csv = data("ecoli_k12/UP000000625_83333_go.csv"),
        meta = data("ecoli_k12/Ecoli_metadata.txt"),
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, study).unwrap();
    let study = plmscope_pipeline::study::Study::load(&path).unwrap();
    let progress = |_: &str| -> Box<dyn plmscope_pipeline::Progress> {
        Box::new(plmscope_pipeline::NoProgress)
    };
    plmscope_pipeline::runner::run(&study, &progress, &mut |_| {}).unwrap();
    dir.join("out")
}

fn find(dir: &Path, pred: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if pred(&p) {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(found) = find(&p, pred) {
                return Some(found);
            }
        }
    }
    None
}

fn dump_dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn chromium_searches_a_go_term_and_opens_a_shaded_feature_page() {
    let Some(chromium) = chromium() else {
        eprintln!("skipping: chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = run_study(dir.path());
    let atlas = find(&out, &|p| p.extension().is_some_and(|e| e == "sqlite")).expect("an atlas");
    let sae = find(&out.join("t6/dictionaries"), &|p| {
        p.join("cfg.json").exists()
    })
    .expect("a dictionary");
    let state = AppState::load(&ServeOptions {
        atlases: vec![atlas.clone()],
        sae: Some(sae),
        model: None,
    })
    .unwrap();
    let addr = spawn_on_loopback(state).unwrap();

    // The best significant GO term of a feature, from the atlas itself.
    let c =
        rusqlite::Connection::open_with_flags(&atlas, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let (unit, term): (i64, String) = c
        .query_row(
            "SELECT e.unit, e.term FROM enrichment e JOIN units u ON u.unit = e.unit
             WHERE u.kind = 'feature' AND e.annotation = 'go' ORDER BY e.q, e.unit LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("some feature has a stored GO test");
    let go_rows: usize = c
        .query_row(
            "SELECT COUNT(*) FROM enrichment WHERE unit = ?1 AND annotation = 'go'",
            [unit],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize;

    let profile = dir.path().join("profile");
    let search = dump_dom(
        &chromium,
        &profile,
        &format!("http://{addr}/search?q={}", term.replace(':', "%3A")),
    );
    let link = format!("href=\"/a/0/unit/{unit}\"");
    assert!(
        search.contains(&link),
        "the search for {term} lists unit {unit}"
    );

    let page = dump_dom(
        &chromium,
        &profile,
        &format!("http://{addr}/a/0/unit/{unit}"),
    );
    assert!(page.contains("id=\"enrichment\""));
    assert_eq!(
        page.matches("<tr class=\"go").count(),
        go_rows.min(100),
        "one row per stored GO test"
    );
    assert!(page.contains(&format!("QuickGO/term/{}", term.replace(':', "%3A"))));
    let tracks = page.matches("<div class=\"track\"").count();
    assert!(tracks > 0, "residue tracks are drawn");
    // Catches ids the sets spell differently (TMbed's `1iij_A|P06494|ERBB2_RAT` is `P06494`).
    assert_eq!(
        page.matches(">UniProt<").count(),
        tracks,
        "every example protein has its track"
    );
    assert_eq!(
        page.matches("class=\"r max\"").count(),
        tracks,
        "one maximum marked per track"
    );
    let shaded = page.matches("background: rgba(230, 80, 0, ").count()
        + page.matches("background:rgba(230,80,0,").count();
    assert!(shaded > tracks * 10, "residues are shaded ({shaded})");
    assert!(
        page.contains("id=\"similar\""),
        "decoder-cosine neighbours from --sae"
    );

    let png = dir.path().join("feature.png");
    let status = Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("http://{addr}/a/0/unit/{unit}"))
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Some(keep) = std::env::var_os("PLMSCOPE_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

//! The small pieces the command line calls besides the stages: how its values become requests
//! (preset merges, size lists, list parsing) and the lines it prints for a finished run.

use std::path::{Path, PathBuf};

use plmscope_interpret::enrichment::CorrectionMethod;
use plmscope_pipeline::analyze::{parse_namespaces, AnalyzeRequest};
use plmscope_pipeline::embed::{parse_levels, parse_sites};
use plmscope_pipeline::evaluate::encode_report;
use plmscope_pipeline::presets::Preset;
use plmscope_pipeline::runner::{nothing_to_run, plan, run_summary, Action, StageReport};
use plmscope_pipeline::slurm::load_study_for_jobs;
use plmscope_pipeline::study::Study;
use plmscope_pipeline::train::{DictionarySize, Normalize, TrainRequest};
use plmscope_sae::code_sets::EncodeSummary;
use plmscope_sae::Architecture;
use plmscope_store::{Level, Site};

/// Catches `--expansion` winning over `--latents`, or either list being dropped.
#[test]
fn latents_win_over_expansions_and_both_empty_means_the_default() {
    assert_eq!(
        DictionarySize::list(vec![100, 200], vec![]),
        [DictionarySize::Latents(100), DictionarySize::Latents(200)]
    );
    assert_eq!(
        DictionarySize::list(vec![], vec![8]),
        [DictionarySize::Expansion(8)]
    );
    assert_eq!(
        DictionarySize::list(vec![5], vec![8]),
        [DictionarySize::Latents(5)]
    );
    assert!(DictionarySize::list(vec![], vec![]).is_empty());
}

/// `train --preset`: the preset's architecture, normalisation and decoder norm replace the
/// flags', but --k, --latents/--expansion and --lr given on the command line win. Catches a
/// merge that lets the preset overwrite explicit values, or keeps the flags' architecture.
#[test]
fn a_train_preset_yields_to_explicit_k_sizes_and_lr() {
    let preset = Preset::by_name("gujral2025-protein").unwrap();
    let mut req = TrainRequest::new("acts".into(), "out".into(), 0);
    req.archs = vec![Architecture::Relu];
    preset.fill_train_request_under(&mut req);
    assert_eq!(req.archs, [Architecture::TopK]);
    assert_eq!(req.ks, [64]);
    assert_eq!(req.sizes, [DictionarySize::Latents(20_000)]);
    assert_eq!(req.lr, Some(1e-4));
    assert_eq!(req.normalize, Normalize::Layernorm);
    assert!(!req.decoder_norm);
    assert!(req.adjust.is_some());

    let mut explicit = TrainRequest::new("acts".into(), "out".into(), 0);
    explicit.ks = vec![8, 16];
    explicit.sizes = vec![DictionarySize::Expansion(4)];
    explicit.lr = Some(3e-3);
    preset.fill_train_request_under(&mut explicit);
    assert_eq!(explicit.ks, [8, 16]);
    assert_eq!(explicit.sizes, [DictionarySize::Expansion(4)]);
    assert_eq!(explicit.lr, Some(3e-3));
    assert_eq!(explicit.normalize, Normalize::Layernorm);
}

/// `analyze --preset` replaces --namespace, --correction and --alpha with the paper's.
#[test]
fn an_analyze_preset_sets_the_statistics() {
    let mut req = AnalyzeRequest::new("atlas.sqlite".into());
    req.alpha = 0.2;
    Preset::by_name("gujral2025-residue")
        .unwrap()
        .fill_analyze_request(&mut req)
        .unwrap();
    assert_eq!(req.namespaces, parse_namespaces(&["BP"]).unwrap());
    assert_eq!(req.correction, CorrectionMethod::Bonferroni);
    assert_eq!(req.alpha, 0.05);
}

/// Catches a list parser that stops at the first name, or accepts a bad one.
#[test]
fn site_and_level_lists_parse_every_name() {
    assert_eq!(
        parse_sites(&["resid_post", " mlp_in"]).unwrap(),
        [Site::ResidPost, Site::MlpIn]
    );
    assert_eq!(
        parse_levels(&["residue", "protein"]).unwrap(),
        [Level::Residue, Level::Protein]
    );
    assert!(parse_sites(&["resid_post", "mlp"]).is_err());
    assert!(parse_levels(&["cell"]).is_err());
}

/// Catches a codes-per-row figure that divides by zero on a fully resumed run.
#[test]
fn the_encode_line_counts_shards_and_codes_per_row() {
    let summary = |rows, nnz| EncodeSummary {
        shards: 3,
        written: 2,
        skipped: 1,
        rows,
        nnz,
    };
    assert_eq!(
        encode_report(&summary(10, 25), Path::new("codes")),
        "encoded 10 rows into codes (2 shards written, 1 already complete; 2.50 codes per row)"
    );
    assert!(encode_report(&summary(0, 0), Path::new("codes")).ends_with("0.00 codes per row)"));
}

fn study_file(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("p.fasta"), ">P1\nMKV\n").unwrap();
    let path = dir.join("study.toml");
    std::fs::write(
        &path,
        "name = \"s\"\n[[proteins]]\nfasta = \"p.fasta\"\n[[models]]\nname = \"t6\"\n\
         init = { arch = \"esm2_t6_8M\", seed = 0 }\n[embed]\nlayers = [1]\n",
    )
    .unwrap();
    path
}

/// What `plmscope run` prints around the stages: one line per finished stage, the analyze
/// and describe summaries, the closing line; nothing-to-run only when every stage is done.
#[test]
fn run_lines_name_the_stages_and_the_study() {
    let dir = tempfile::tempdir().unwrap();
    let study = Study::load(&study_file(dir.path())).unwrap();
    assert_eq!(nothing_to_run(&study, &plan(&study).unwrap()), None);
    let report = |id: &str, summary: &str| StageReport {
        id: id.into(),
        action: Action::Run,
        seconds: 1.5,
        peak_rss_bytes: Some(3 << 20),
        summary: summary.into(),
    };
    assert_eq!(
        report("embed/t6", "").to_string(),
        "run      embed/t6 in 1.5s, peak RSS 3 MB"
    );
    let reports = [
        report("embed/t6", "embedded"),
        report("analyze/t6/a", "atlas summary"),
    ];
    assert_eq!(
        run_summary(&study, &reports),
        format!(
            "== analyze/t6/a\natlas summary\ns: 2 stages run; results under {}\n",
            study.out_dir().display()
        )
    );
}

/// Slurm jobs run elsewhere: the study file and --out come back absolute.
#[test]
fn a_study_for_jobs_has_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let file = study_file(dir.path());
    let (path, study) = load_study_for_jobs(&file, Some(Path::new("rel/out"))).unwrap();
    assert!(path.is_absolute() && path.ends_with("study.toml"));
    assert!(study.out_dir().is_absolute() && study.out_dir().ends_with("rel/out"));
}

/// `plmscope probe`'s table: catches a lost rank, more than three single units, or a
/// reordered column.
#[test]
fn the_probe_table_has_a_header_and_one_ranked_line_per_set() {
    use plmscope_interpret::probe::{ProbeReport, SingleUnit, UnitKind};
    use plmscope_pipeline::probe::ProbeOutcome;
    let single = |unit, test_auroc| SingleUnit {
        unit,
        sign: 1.0,
        train_auroc: 0.5,
        test_auroc,
    };
    let report = ProbeReport {
        name: "codes/l3".into(),
        kind: UnitKind::Feature,
        units: 64,
        train_rows: 70,
        test_rows: 30,
        train_proteins: 7,
        test_proteins: 3,
        test_positives: 9,
        c: 1.0,
        auroc: 0.9,
        f1: 0.75,
        nonzero: 5,
        intercept: 0.0,
        coefficients: Vec::new(),
        path: Vec::new(),
        best_auroc: 0.95,
        units_for_95: 3,
        single_units: vec![
            single(4, 0.8),
            single(9, 0.7),
            single(1, 0.6),
            single(2, 0.5),
        ],
    };
    let outcome = ProbeOutcome {
        reports: vec![report],
        level: Level::Residue,
        rows: 100,
        proteins: 10,
        positives: 30,
    };
    let text = outcome.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("rank\tauroc\tf1\tnonzero\tunits_for_95%"));
    assert_eq!(
        lines[1],
        "1\t0.9000\t0.7500\t5\t3\t0.9500\tfeature\t64\t4:0.800 9:0.700 1:0.600\tcodes/l3"
    );
}

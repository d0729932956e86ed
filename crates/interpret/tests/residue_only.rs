//! A residue-concept-only study: no GO and no families at all, real TMbed helix labels
//! (../shared/data/tmbed/alpha.fasta), one feature planted on the helices and one random; plus
//! provenance of real input files in `meta.inputs`.

use std::path::PathBuf;

use plmscope_bio::{ResidueClass, TmbedReader};
use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::concepts::ConceptSegment;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::pipeline::{ConceptInput, ForegroundRule};
use plmscope_interpret::provenance::describe_file;
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;

fn data(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(relative)
}

#[test]
fn analyze_runs_without_go_on_tmbed_helices_and_records_inputs() {
    let path = data("tmbed/alpha.fasta");
    let records: Vec<_> = TmbedReader::open(&path)
        .unwrap()
        .take(60)
        .collect::<Result<_, _>>()
        .unwrap();
    let accessions: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let lengths: Vec<u32> = records.iter().map(|r| r.labels.len() as u32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut protein, mut position) = (Vec::new(), Vec::new());
    let (mut row_ptr, mut feature, mut value) = (vec![0u64], Vec::new(), Vec::new());
    let mut segments = Vec::new();
    for (p, r) in records.iter().enumerate() {
        let helix: Vec<bool> = r
            .labels
            .iter()
            .map(|l| l.class() == ResidueClass::TmHelix)
            .collect();
        for (i, &h) in helix.iter().enumerate() {
            protein.push(p as u32);
            position.push(i as u32);
            if h {
                feature.push(0);
                value.push(1.0 + rng.random::<f32>());
            }
            if rng.random::<f32>() < 0.05 {
                feature.push(1);
                value.push(rng.random::<f32>() * 2.0);
            }
            row_ptr.push(feature.len() as u64);
            if h && (i == 0 || !helix[i - 1]) {
                let end = (i..helix.len()).find(|&j| !helix[j]).unwrap_or(helix.len());
                segments.push(ConceptSegment {
                    concept: 0,
                    protein: p as u32,
                    start: i as u32,
                    end: end as u32,
                });
            }
        }
    }
    let concepts = ConceptInput {
        protein_lengths: lengths.clone(),
        names: vec!["tm_helix".into()],
        segments,
        is_training: (0..records.len()).map(|p| p % 2 == 0).collect(),
    };
    let inputs = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: Some(&lengths),
        features: Some(Activations::SparseResidues {
            codes: SparseCodes {
                row_ptr: &row_ptr,
                feature: &feature,
                value: &value,
                n_units: 2,
            },
            rows: ResidueRows {
                protein: &protein,
                position: &position,
            },
        }),
        neurons: None,
        go: None,
        families: None,
        concepts: Some(&concepts),
    };
    let described = describe_file(&path).unwrap();
    // data README: alpha.fasta is 570,667 B with this sha256.
    assert_eq!(described.size, 570_667);
    assert_eq!(
        described.sha256,
        "bdffc6ffddc84fb637e8613488f22eed4e9a34e7a9a92724bac09d012ca7c9ad"
    );
    let obo = describe_file(&data("go-basic.obo")).unwrap();
    assert_eq!(
        obo.version.as_deref(),
        Some("data-version: releases/2021-12-15")
    );
    let options = AnalysisOptions {
        feature_rule: ForegroundRule::Above(0.0),
        inputs: vec![described, obo],
        ..AnalysisOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("atlas.sqlite");
    let summary = analyze(inputs, options, &out).unwrap();
    let features = summary.features.unwrap();
    assert!(features.go.is_none() && features.families.is_none());
    assert!(features.family_specificity.is_none());
    let db = Connection::open(&out).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM enrichment"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM go_terms"), 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM meta WHERE key LIKE 'go\\_%' ESCAPE '\\'"),
        0
    );
    // The planted helix feature is found; the random one is not.
    let f1 = |unit: i64| -> f64 {
        db.query_row(
            "SELECT f1 FROM concepts WHERE unit = ?1 AND concept = 'tm_helix'",
            [unit],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(f1(0) > 0.95, "helix feature F1 {}", f1(0));
    assert!(f1(1) < 0.5, "random feature F1 {}", f1(1));
    // Helices are ~20-residue runs: a medium or short motif, never whole or point.
    let class: String = db
        .query_row("SELECT class FROM unit_patterns WHERE unit = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(class == "medium_motif" || class == "short_motif", "{class}");
    let inputs: String = db
        .query_row("SELECT value FROM meta WHERE key = 'inputs'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let inputs: serde_json::Value = serde_json::from_str(&inputs).unwrap();
    assert_eq!(inputs[0]["size"], 570_667);
    assert_eq!(inputs[1]["version"], "data-version: releases/2021-12-15");
}

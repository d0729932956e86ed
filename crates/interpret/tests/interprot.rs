//! InterProt's family-specificity F1 and activation-pattern classes through `analyze`, against
//! an independent numpy computation written from InterProt's code (not from ours), on 30 real
//! E. coli proteins with their Pfam families and 30 synthetic ones with planted families, 13
//! residue-level units with planted patterns (dead, point, periodic, short / medium / long
//! motif, whole, not enough data, other) and 4 random ones. The same values run as sparse
//! features and as dense neurons, so both paths are checked.
//!
//! Regenerate the fixture (numpy; reads ../shared/data/ecoli_k12) from the repository root:
//!     python3 scripts/interprot_reference.py

use std::collections::BTreeMap;
use std::path::PathBuf;

use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::family_f1::family_split;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::pipeline::ForegroundRule;
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rusqlite::Connection;
use serde_json::Value;

fn fixture() -> Value {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/interprot_reference.json"
    ));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture as analysis inputs: one row per residue, protein-major.
struct Study {
    accessions: Vec<String>,
    lengths: Vec<u32>,
    families: Vec<(String, Vec<String>)>,
    n_units: u32,
    protein: Vec<u32>,
    position: Vec<u32>,
    dense: Vec<f32>,
    row_ptr: Vec<u64>,
    feature: Vec<u32>,
    value: Vec<f32>,
}

fn study(f: &Value) -> Study {
    let proteins = f["proteins"].as_array().unwrap();
    let accessions: Vec<String> = proteins
        .iter()
        .map(|p| p["accession"].as_str().unwrap().to_string())
        .collect();
    let lengths: Vec<u32> = proteins
        .iter()
        .map(|p| p["length"].as_u64().unwrap() as u32)
        .collect();
    let families = proteins
        .iter()
        .filter_map(|p| {
            let fams: Vec<String> = p["families"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            (!fams.is_empty()).then(|| (p["accession"].as_str().unwrap().to_string(), fams))
        })
        .collect();
    let n_units = f["n_units"].as_u64().unwrap() as u32;
    let mut first_row = vec![0usize];
    for &l in &lengths {
        first_row.push(first_row.last().unwrap() + l as usize);
    }
    let n_rows = *first_row.last().unwrap();
    let mut dense = vec![0f32; n_rows * n_units as usize];
    for s in f["segments"].as_array().unwrap() {
        let (u, p, start) = (
            s[0].as_u64().unwrap() as usize,
            s[1].as_u64().unwrap() as usize,
            s[2].as_u64().unwrap() as usize,
        );
        for (i, q) in s[3].as_array().unwrap().iter().enumerate() {
            let row = first_row[p] + start + i;
            dense[row * n_units as usize + u] = q.as_u64().unwrap() as f32 / 8.0;
        }
    }
    let (mut protein, mut position) = (Vec::new(), Vec::new());
    for (p, &l) in lengths.iter().enumerate() {
        protein.extend(std::iter::repeat_n(p as u32, l as usize));
        position.extend(0..l);
    }
    let (mut row_ptr, mut feature, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for row in dense.chunks_exact(n_units as usize) {
        for (u, &v) in row.iter().enumerate() {
            if v != 0.0 {
                feature.push(u as u32);
                value.push(v);
            }
        }
        row_ptr.push(feature.len() as u64);
    }
    Study {
        accessions,
        lengths,
        families,
        n_units,
        protein,
        position,
        dense,
        row_ptr,
        feature,
        value,
    }
}

/// unit, class, examples, the five statistics, top_period.
type PatternDbRow = (i64, String, i64, [f64; 5], Option<i64>);
/// unit, family, top_protein, six scores, two sizes, threshold_activation.
type FamilyDbRow = (i64, String, i64, [f64; 6], [i64; 2], f64);

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-12, "{what}: ours {a}, numpy {b}");
}

#[test]
fn family_f1_and_pattern_classes_match_the_numpy_reference_for_features_and_neurons() {
    let f = fixture();
    let s = study(&f);
    // Our split rule, reimplemented in the script from its documentation, gives the same halves.
    let expected_split: Vec<bool> = f["is_training"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(family_split(&s.accessions, 42), expected_split);

    let rows = ResidueRows {
        protein: &s.protein,
        position: &s.position,
    };
    let inputs = AnalysisInputs {
        accessions: &s.accessions,
        protein_lengths: Some(&s.lengths),
        features: Some(Activations::SparseResidues {
            codes: SparseCodes {
                row_ptr: &s.row_ptr,
                feature: &s.feature,
                value: &s.value,
                n_units: s.n_units,
            },
            rows,
        }),
        neurons: Some(Activations::DenseResidues {
            values: &s.dense,
            n_units: s.n_units,
            rows,
        }),
        go: None,
        families: Some(&s.families),
        concepts: None,
    };
    let options = AnalysisOptions {
        feature_rule: ForegroundRule::Above(0.0),
        ..AnalysisOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("atlas.sqlite");
    let summary = analyze(inputs, options, &out).unwrap();
    let db = Connection::open(&out).unwrap();

    // Patterns: every unit of both kinds, class equal, statistics to 1e-12.
    let expected_patterns = f["patterns"].as_array().unwrap();
    for (kind, offset) in [("feature", 0), ("neuron", s.n_units)] {
        let mut statement = db
            .prepare(
                "SELECT unit, class, examples, mean_fraction_active, median_contigs, \
                 median_top_motif_length, median_motif_length, freq_top_two_period, top_period \
                 FROM unit_patterns WHERE unit >= ?1 AND unit < ?2 ORDER BY unit",
            )
            .unwrap();
        let got: Vec<PatternDbRow> = statement
            .query_map([offset, offset + s.n_units], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
                    r.get(8)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), expected_patterns.len(), "{kind}");
        for (g, e) in got.iter().zip(expected_patterns) {
            let unit = e["unit"].as_i64().unwrap();
            assert_eq!(g.0, offset as i64 + unit);
            assert_eq!(g.1, e["class"].as_str().unwrap(), "{kind} {unit}");
            assert_eq!(g.2, e["examples"].as_i64().unwrap(), "{kind} {unit}");
            let names = [
                "mean_fraction_active",
                "median_contigs",
                "median_top_motif_length",
                "median_motif_length",
                "freq_top_two_period",
            ];
            for (value, name) in g.3.iter().zip(names) {
                close(
                    *value,
                    e[name].as_f64().unwrap(),
                    &format!("{kind} {unit} {name}"),
                );
            }
            assert_eq!(g.4, e["top_period"].as_i64(), "{kind} {unit} top_period");
        }
        // The planted classes are what the reference found (the script asserts them too).
        for (unit, class) in f["planted_classes"].as_object().unwrap() {
            let unit: usize = unit.parse().unwrap();
            assert_eq!(got[unit].1, class.as_str().unwrap(), "{kind} {unit}");
        }
    }
    let features = summary.features.unwrap();
    assert_eq!(features.patterns.as_ref().unwrap()["point"], 5);

    // Family F1: the same (unit, family) pairs, every number to 1e-12.
    let expected_families = f["family_specificity"].as_array().unwrap();
    for (kind, offset) in [("feature", 0i64), ("neuron", s.n_units as i64)] {
        let mut statement = db
            .prepare(
                "SELECT unit, family, top_protein, threshold, train_f1, precision, recall, f1, \
                 accuracy, family_size, test_family_size, threshold_activation \
                 FROM family_specificity WHERE unit >= ?1 AND unit < ?2 ORDER BY unit, family",
            )
            .unwrap();
        let got: Vec<FamilyDbRow> = statement
            .query_map([offset, offset + s.n_units as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    [
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ],
                    [r.get(9)?, r.get(10)?],
                    r.get(11)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), expected_families.len(), "{kind}");
        for (g, e) in got.iter().zip(expected_families) {
            let unit = e["unit"].as_i64().unwrap();
            let what = format!("{kind} {unit} {}", g.1);
            assert_eq!(g.0, offset + unit, "{what}");
            assert_eq!(g.1, e["family"].as_str().unwrap(), "{what}");
            assert_eq!(g.2, e["top_protein"].as_i64().unwrap(), "{what}");
            let names = [
                "threshold",
                "train_f1",
                "precision",
                "recall",
                "f1",
                "accuracy",
            ];
            for (value, name) in g.3.iter().zip(names) {
                close(*value, e[name].as_f64().unwrap(), &format!("{what} {name}"));
            }
            assert_eq!(g.4[0], e["family_size"].as_i64().unwrap(), "{what}");
            assert_eq!(g.4[1], e["test_family_size"].as_i64().unwrap(), "{what}");
            let unit_max = s
                .dense
                .iter()
                .skip(unit as usize)
                .step_by(s.n_units as usize)
                .fold(0f32, |m, &v| m.max(v));
            close(g.5, g.3[0] * f64::from(unit_max), &format!("{what} raw"));
        }
    }
    // The planted family units are perfectly specific on the held-out half.
    let perfect: BTreeMap<(i64, String), f64> = db
        .prepare("SELECT unit, family, f1 FROM family_specificity WHERE f1 = 1.0")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let real = f["real_families"].as_array().unwrap();
    for (unit, family) in [
        (2, "SYN_A"),
        (3, "SYN_B"),
        (4, real[0].as_str().unwrap()),
        (5, real[1].as_str().unwrap()),
    ] {
        assert!(
            perfect.contains_key(&(unit, family.to_string())),
            "{unit} {family}"
        );
    }
    let meta: String = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'family_specificity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(meta.contains("sha256(\"42:<accession>\")"), "{meta}");
}

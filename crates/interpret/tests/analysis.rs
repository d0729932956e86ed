//! End-to-end analysis on the real yeast proteome and GO: planted-signal recovery with false
//! discovery control, the atlas's contents through SQL, features vs neurons in one atlas, and
//! atomicity of the atlas file when an analysis fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{csr_from_sets, jaccard, noisy, random_set, yeast};
use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::atlas::export_tsv;
use plmscope_interpret::concepts::ConceptSegment;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::pipeline::{ConceptInput, ForegroundRule, StoreTests};
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;

/// `count` real GO terms with 20..=300 members, no two overlapping much (Jaccard < 0.5).
fn chosen_terms(count: usize, rng: &mut ChaCha8Rng) -> Vec<(u32, Vec<u32>)> {
    let members = yeast().term_members();
    let mut candidates: Vec<(u32, Vec<u32>)> = members
        .into_iter()
        .filter(|(_, m)| (20..=300).contains(&m.len()))
        .collect();
    candidates.shuffle(rng);
    let mut chosen: Vec<(u32, Vec<u32>)> = Vec::new();
    for (term, m) in candidates {
        if chosen.iter().all(|(_, c)| jaccard(c, &m) < 0.5) {
            chosen.push((term, m));
        }
        if chosen.len() == count {
            break;
        }
    }
    chosen
}

fn inputs_with_features<'a>(codes: SparseCodes<'a>) -> AnalysisInputs<'a> {
    let y = yeast();
    AnalysisInputs {
        accessions: &y.accessions,
        protein_lengths: Some(&y.lengths),
        features: Some(Activations::SparseProteins(codes)),
        neurons: None,
        go: Some(y.go()),
        families: None,
        concepts: None,
    }
}

#[test]
fn planted_go_terms_are_recovered_and_controls_stay_within_the_fdr() {
    let y = yeast();
    let n = y.accessions.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let planted = chosen_terms(20, &mut rng);
    let all_members = y.term_members();
    let mut sets: Vec<Vec<u32>> = planted.iter().map(|(_, m)| noisy(m, n, &mut rng)).collect();
    for i in 0..50 {
        sets.push(random_set(planted[i % planted.len()].1.len(), n, &mut rng));
    }
    let csr = csr_from_sets(&sets, n, &mut rng);
    let codes = SparseCodes {
        row_ptr: &csr.row_ptr,
        feature: &csr.feature,
        value: &csr.value,
        n_units: sets.len() as u32,
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("atlas.sqlite");
    let summary = analyze(
        inputs_with_features(codes),
        AnalysisOptions::default(),
        &out,
    )
    .unwrap();
    let db = Connection::open(&out).unwrap();

    // Every planted unit has its term, or a term with nearly the same members, at q < 0.05.
    let term_id = |t: u32| y.dag.id(plmscope_bio::TermIndex(t)).to_string();
    let members_by_id: BTreeMap<String, &Vec<u32>> =
        all_members.iter().map(|(t, m)| (term_id(*t), m)).collect();
    for (unit, (term, members)) in planted.iter().enumerate() {
        let significant: Vec<String> = db
            .prepare(
                "SELECT term FROM enrichment WHERE unit = ?1 AND annotation = 'go' AND q < 0.05",
            )
            .unwrap()
            .query_map([unit as u32], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let hit = significant.iter().any(|id| {
            *id == term_id(*term)
                || members_by_id
                    .get(id)
                    .is_some_and(|m| jaccard(m, members) >= 0.9)
        });
        assert!(
            hit,
            "planted unit {unit} ({}, {} members) lost its term",
            term_id(*term),
            members.len()
        );
    }

    // Controls: significant calls on shuffled units are false discoveries; BH at 0.05 keeps
    // their share of all discoveries at about 5% or less. (BH controls the share of false calls,
    // not the chance that a control unit gets one: with thousands of true calls the cut-off is
    // about p < 5e-4, and a control unit makes ~4,000 tests.)
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let all_calls = count("SELECT COUNT(*) FROM enrichment WHERE q < 0.05");
    let control_calls = count("SELECT COUNT(*) FROM enrichment WHERE q < 0.05 AND unit >= 20");
    let control_units =
        count("SELECT COUNT(DISTINCT unit) FROM enrichment WHERE q < 0.05 AND unit >= 20");
    eprintln!(
        "significant calls: {all_calls}, on controls: {control_calls} ({control_units} units)"
    );
    assert!(all_calls > 20);
    assert!(
        (control_calls as f64) <= 0.05 * all_calls as f64,
        "{control_calls} of {all_calls}"
    );
    assert!(control_units < 50);

    // The summary agrees with the atlas.
    let features = summary.features.as_ref().unwrap();
    let go = features.go.as_ref().unwrap();
    assert_eq!(features.units, 70);
    assert_eq!(
        go.units_with_significant as i64,
        count("SELECT COUNT(DISTINCT unit) FROM enrichment WHERE q < 0.05")
    );
    assert_eq!(
        go.distinct_terms as i64,
        count("SELECT COUNT(DISTINCT term) FROM enrichment WHERE q < 0.05")
    );
    assert_eq!(go.significant_tests as i64, all_calls);
    assert_eq!(
        count("SELECT COUNT(*) FROM units WHERE kind = 'feature'"),
        70
    );
    assert_eq!(count("SELECT COUNT(*) FROM proteins"), n as i64);
    assert_eq!(summary.go_unmatched_proteins, Some(0));

    // p-values below f64's range keep their logarithm.
    let tiny = count("SELECT COUNT(*) FROM enrichment WHERE ln_p < -700 AND p = 0");
    assert!(
        tiny > 0,
        "no p below 1e-304 among planted units of up to 300 proteins"
    );
    // q recomputes from the stored p and the recorded number of tests (BH, m = total tests).
    let m: f64 = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'feature_go_total_tests'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
        .parse()
        .unwrap();
    let (ln_p_min, ln_q_min): (f64, f64) = db
        .query_row(
            "SELECT ln_p, ln_q FROM enrichment ORDER BY ln_p LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!((ln_q_min - (ln_p_min + m.ln())).abs() < 1e-9 * ln_p_min.abs());

    // Every choice is in meta.
    for key in [
        "feature_foreground_rule",
        "go_namespaces",
        "go_term_size",
        "correction_method",
        "background",
        "go_unmatched_proteins",
        "go_obsolete_ids_dropped",
        "go_alt_ids_mapped",
        "go_unknown_ids",
        "plmscope_version",
        "options",
        "summary",
    ] {
        assert_eq!(
            count(&format!("SELECT COUNT(*) FROM meta WHERE key = '{key}'")),
            1,
            "meta {key}"
        );
    }
    // Examples: the top example of each unit carries the unit's max.
    let mismatched = count(
        "SELECT COUNT(*) FROM units u JOIN examples e ON e.unit = u.unit \
         WHERE e.kind = 'top' AND e.rank = 0 AND e.activation != u.max",
    );
    assert_eq!(mismatched, 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM examples WHERE kind = 'random' AND activation != 0"),
        0
    );
    // Coherence rows exist for planted units, and a planted term's significant set (the term and
    // its ancestors) is closer in the DAG than random tested terms.
    let coherent =
        count("SELECT COUNT(*) FROM coherence WHERE unit < 20 AND p_shortest_path < 0.05");
    assert!(
        coherent >= 10,
        "{coherent} coherent planted unit-namespaces"
    );

    let tsv = dir.path().join("tsv");
    let files = export_tsv(&out, &tsv).unwrap();
    // 9 tables plus InterProt's family_specificity and unit_patterns.
    assert_eq!(files.len(), 11);
    let lines = std::fs::read_to_string(tsv.join("enrichment.tsv"))
        .unwrap()
        .lines()
        .count() as i64;
    assert_eq!(lines, count("SELECT COUNT(*) FROM enrichment") + 1);
}

#[test]
fn features_and_neurons_share_one_atlas_and_their_counts_compare() {
    let y = yeast();
    let n = y.accessions.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let terms = chosen_terms(14, &mut rng);
    // 10 planted features + 20 controls.
    let mut sets: Vec<Vec<u32>> = terms[..10]
        .iter()
        .map(|(_, m)| noisy(m, n, &mut rng))
        .collect();
    for i in 0..20 {
        sets.push(random_set(terms[i % 10].1.len(), n, &mut rng));
    }
    let csr = csr_from_sets(&sets, n, &mut rng);
    // 24 dense neurons: 4 shifted up on the members of the last 4 terms, the rest noise.
    let n_neurons = 24usize;
    let mut dense: Vec<f32> = (0..n as usize * n_neurons)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    for (j, (_, members)) in terms[10..].iter().enumerate() {
        for &p in members {
            dense[p as usize * n_neurons + j] += 3.0;
        }
    }
    let mut inputs = inputs_with_features(SparseCodes {
        row_ptr: &csr.row_ptr,
        feature: &csr.feature,
        value: &csr.value,
        n_units: sets.len() as u32,
    });
    inputs.neurons = Some(Activations::DenseProteins {
        values: &dense,
        n_units: n_neurons as u32,
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("atlas.sqlite");
    let summary = analyze(inputs, AnalysisOptions::default(), &out).unwrap();
    let features = summary.features.unwrap();
    let neurons = summary.neurons.unwrap();
    let (fgo, ngo) = (features.go.unwrap(), neurons.go.unwrap());
    eprintln!(
        "features: {fgo:?}\nneurons: {ngo:?}\nneuron rule: {}",
        neurons.foreground_rule
    );
    assert!(fgo.units_with_significant >= 10, "{fgo:?}");
    assert!(ngo.units_with_significant >= 4, "{ngo:?}");
    // MatchFeatures: neurons tested with the features' median study-set size.
    assert!(neurons
        .foreground_rule
        .contains(&format!("{} highest", features.median_study_size)));
    assert_eq!(neurons.median_study_size, features.median_study_size);

    // The same comparison as one query over the atlas.
    let db = Connection::open(&out).unwrap();
    let by_kind: BTreeMap<String, (i64, i64)> = db
        .prepare(
            "SELECT u.kind, COUNT(DISTINCT e.unit), COUNT(DISTINCT e.term) FROM enrichment e \
             JOIN units u ON u.unit = e.unit WHERE e.q < 0.05 GROUP BY u.kind",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        by_kind["feature"],
        (fgo.units_with_significant as i64, fgo.distinct_terms as i64)
    );
    assert_eq!(
        by_kind["neuron"],
        (ngo.units_with_significant as i64, ngo.distinct_terms as i64)
    );
    // Neuron unit ids follow the features'; planted neurons are neurons 0..4 = units 30..34.
    let planted_neurons: BTreeSet<i64> = db
        .prepare("SELECT DISTINCT u.\"index\" FROM enrichment e JOIN units u ON u.unit = e.unit WHERE e.q < 0.05 AND u.kind = 'neuron'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        (0..4).all(|j| planted_neurons.contains(&j)),
        "{planted_neurons:?}"
    );
    // Per kind, calls on unplanted units (features 10..30, neurons 4..24) are at most 5% of the
    // kind's calls: the two kinds are separate families of tests.
    let share_false = |sql: &str| -> f64 { db.query_row(sql, [], |r| r.get::<_, f64>(0)).unwrap() };
    let feature_false =
        share_false("SELECT AVG(unit >= 10) FROM enrichment WHERE q < 0.05 AND unit < 30");
    let neuron_false =
        share_false("SELECT AVG(unit >= 34) FROM enrichment WHERE q < 0.05 AND unit >= 30");
    assert!(
        feature_false <= 0.05 && neuron_false <= 0.05,
        "{feature_false} {neuron_false}"
    );
    let planted_features: i64 = db
        .query_row(
            "SELECT COUNT(DISTINCT unit) FROM enrichment WHERE q < 0.05 AND unit < 10",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(planted_features, 10);
}

fn tiny_codes() -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    // 4 rows, 2 features.
    (
        vec![0, 1, 2, 3, 4],
        vec![0, 1, 0, 1],
        vec![1.0, 2.0, 3.0, 4.0],
    )
}

#[test]
fn a_failed_analysis_leaves_no_atlas_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("atlas.sqlite");
    let tmp = dir.path().join("atlas.sqlite.tmp");
    let (row_ptr, feature, value) = tiny_codes();
    let codes = SparseCodes {
        row_ptr: &row_ptr,
        feature: &feature,
        value: &value,
        n_units: 2,
    };
    let accessions: Vec<String> = ["P1", "P2", "P3"].iter().map(|s| s.to_string()).collect();
    let mismatched = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: None,
        features: Some(Activations::SparseProteins(codes)),
        neurons: None,
        go: None,
        families: None,
        concepts: None,
    };
    // 1. Nothing at the path: an early failure creates nothing.
    let error = analyze(mismatched, AnalysisOptions::default(), &out).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("4 protein rows but 3 protein accessions"),
        "{error}"
    );
    assert!(!out.exists() && !tmp.exists());

    // 2. An existing atlas survives a failure midway: residue-level features whose concept
    // labels are wrong only fail at the concept stage, after units and examples are written.
    std::fs::write(&out, b"the previous atlas").unwrap();
    let accessions: Vec<String> = ["P1", "P2"].iter().map(|s| s.to_string()).collect();
    let (protein, position) = (vec![0u32, 0, 1, 1], vec![0u32, 1, 0, 1]);
    let bad_concepts = ConceptInput {
        protein_lengths: vec![2, 2],
        names: vec!["site".into()],
        segments: vec![ConceptSegment {
            concept: 0,
            protein: 1,
            start: 1,
            end: 5,
        }],
        is_training: vec![true, false],
    };
    let residue_inputs = |concepts| AnalysisInputs {
        accessions: &accessions,
        protein_lengths: None,
        features: Some(Activations::SparseResidues {
            codes,
            rows: ResidueRows {
                protein: &protein,
                position: &position,
            },
        }),
        neurons: None,
        go: None,
        families: None,
        concepts,
    };
    let error = analyze(
        residue_inputs(Some(&bad_concepts)),
        AnalysisOptions::default(),
        &out,
    )
    .unwrap_err();
    assert!(error.to_string().contains("concept labels"), "{error}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous atlas");
    assert!(!tmp.exists());

    // 3. A successful run replaces it with a complete atlas.
    let good_concepts = ConceptInput {
        segments: vec![ConceptSegment {
            concept: 0,
            protein: 1,
            start: 1,
            end: 2,
        }],
        ..bad_concepts.clone()
    };
    let options = AnalysisOptions {
        feature_rule: ForegroundRule::Above(0.5),
        ..AnalysisOptions::default()
    };
    analyze(residue_inputs(Some(&good_concepts)), options, &out).unwrap();
    assert!(!tmp.exists());
    let db = Connection::open(&out).unwrap();
    let units: i64 = db
        .query_row("SELECT COUNT(*) FROM units", [], |r| r.get(0))
        .unwrap();
    assert_eq!(units, 2);
    // Residue level: the top example of feature 1 is protein 1 at position 1 (value 4).
    let (p, pos, v): (i64, i64, f64) = db
        .query_row(
            "SELECT protein, position, activation FROM examples WHERE unit = 1 AND kind = 'top' AND rank = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((p, pos, v), (1, 1, 4.0));
}

#[test]
fn store_tests_changes_stored_rows_but_not_the_correction() {
    let y = yeast();
    let n = y.accessions.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let planted = chosen_terms(5, &mut rng);
    let mut sets: Vec<Vec<u32>> = planted.iter().map(|(_, m)| noisy(m, n, &mut rng)).collect();
    for _ in 0..10 {
        sets.push(random_set(100, n, &mut rng));
    }
    let csr = csr_from_sets(&sets, n, &mut rng);
    let codes = SparseCodes {
        row_ptr: &csr.row_ptr,
        feature: &csr.feature,
        value: &csr.value,
        n_units: sets.len() as u32,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (name, store) in [
        ("all", StoreTests::All),
        ("nominal", StoreTests::Nominal),
        ("significant", StoreTests::Significant),
    ] {
        let out = dir.path().join(format!("{name}.sqlite"));
        let options = AnalysisOptions {
            store_tests: store,
            coherence: None,
            ..AnalysisOptions::default()
        };
        analyze(inputs_with_features(codes), options, &out).unwrap();
        let db = Connection::open(&out).unwrap();
        let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
        let rows = count("SELECT COUNT(*) FROM enrichment");
        // -2.9957... = ln(0.05): the bundled SQLite has no ln().
        let above_p = count("SELECT COUNT(*) FROM enrichment WHERE ln_p >= -2.995732273553991");
        let above_q = count("SELECT COUNT(*) FROM enrichment WHERE ln_q >= -2.995732273553991");
        let m: String = db
            .query_row(
                "SELECT value FROM meta WHERE key = 'feature_go_total_tests'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // Significant tests with their q: identical whatever is stored.
        let significant: Vec<(i64, String, f64)> = db
            .prepare(
                "SELECT unit, term, ln_q FROM enrichment WHERE ln_q < -2.995732273553991 ORDER BY unit, term",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        results.push((name, rows, above_p, above_q, m, significant));
    }
    let (all, nominal, significant) = (&results[0], &results[1], &results[2]);
    assert!(
        all.1 > nominal.1 && nominal.1 > significant.1,
        "{:?}",
        (all.1, nominal.1, significant.1)
    );
    assert!(all.2 > 0);
    assert_eq!(nominal.2, 0, "nominal stores only p < 0.05");
    assert_eq!(significant.3, 0, "significant stores only q < alpha");
    assert_eq!(all.4, nominal.4);
    assert_eq!(all.4, significant.4);
    assert!(!all.5.is_empty());
    assert_eq!(all.5, nominal.5);
    assert_eq!(all.5, significant.5);
}

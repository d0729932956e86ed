//! Sparse logistic probes: a planted signal is found, and the fit equals scikit-learn's.
//!
//! Reference: `python3 scripts/probe_reference.py > crates/interpret/tests/fixtures/probe_reference.json`
//! (scikit-learn 1.9.1, `LogisticRegression(penalty='l1', solver='saga')`; python is needed
//! only to regenerate the fixture).

use plmscope_interpret::probe::{
    run_probe, run_probe_split, split_by_group, ProbeData, ProbeOptions, UnitKind, UnitValues,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 120 proteins of 5-14 residues, 40 sparse nonnegative units; a residue is positive exactly
/// when unit 7 is above 1 (the other units are noise, some correlated with each other).
fn planted() -> ProbeData {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut groups = Vec::new();
    for protein in 0..120u32 {
        let len = rng.random_range(5..15);
        groups.extend(std::iter::repeat_n(protein, len));
    }
    let rows = groups.len();
    let units = 40;
    let mut values = vec![0f32; rows * units];
    for j in 0..units {
        for i in 0..rows {
            if rng.random::<f32>() < 0.3 {
                values[j * rows + i] = rng.random::<f32>() * 3.0;
            }
        }
    }
    let labels = (0..rows).map(|i| values[7 * rows + i] > 1.0).collect();
    ProbeData {
        name: "planted".into(),
        kind: UnitKind::Feature,
        units,
        values: UnitValues::Dense(values),
        labels,
        groups,
    }
}

/// The same values as sparse rows (a code set's layout), zeros left out.
fn as_sparse_rows(data: &ProbeData) -> ProbeData {
    let UnitValues::Dense(values) = &data.values else {
        panic!("dense input expected")
    };
    let rows = data.rows();
    let (mut row_ptr, mut unit, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for i in 0..rows {
        for j in 0..data.units {
            let v = values[j * rows + i];
            if v != 0.0 {
                unit.push(j as u32);
                value.push(v);
            }
        }
        row_ptr.push(unit.len() as u64);
    }
    ProbeData {
        values: UnitValues::Sparse {
            row_ptr,
            unit,
            value,
        },
        ..data.clone()
    }
}

#[test]
fn the_probe_finds_the_planted_unit() {
    let data = planted();
    let report = run_probe(&data, &ProbeOptions::default()).unwrap();
    // Catches: a split that ignores the label, a sign error in the gradient, AUROC on train.
    assert!(report.auroc > 0.99, "held-out AUROC {}", report.auroc);
    assert!(report.f1 > 0.9, "held-out F1 {}", report.f1);
    assert_eq!(report.coefficients[0].0, 7, "{:?}", report.coefficients);
    assert!(report.coefficients[0].1 > 0.0);
    assert_eq!(report.single_units[0].unit, 7);
    assert!(report.single_units[0].test_auroc > 0.999);
    assert!(report.single_units[1].test_auroc < 0.7);
    // One unit is enough: the path reaches 95% of the best AUROC with unit 7 alone.
    assert_eq!(report.units_for_95, 1, "{:?}", report.path);
    assert_eq!(report.path[0].nonzero, 0, "λ_max gives the empty model");
}

#[test]
fn the_split_keeps_each_protein_on_one_side() {
    let data = planted();
    let is_test = split_by_group(&data.groups, 0.3, 9);
    for (i, g) in data.groups.iter().enumerate() {
        for (k, h) in data.groups.iter().enumerate() {
            if g == h {
                assert_eq!(is_test[i], is_test[k]);
            }
        }
    }
    let report = run_probe(
        &data,
        &ProbeOptions {
            seed: 9,
            ..ProbeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.train_proteins + report.test_proteins, 120);
    assert_eq!(report.test_proteins, 36);
    assert_eq!(is_test, split_by_group(&data.groups, 0.3, 9), "seeded");
}

#[derive(serde::Deserialize)]
struct Reference {
    units: usize,
    x: Vec<Vec<f64>>,
    labels: Vec<bool>,
    groups: Vec<u32>,
    is_test: Vec<bool>,
    fits: Vec<Fit>,
}

#[derive(serde::Deserialize)]
struct Fit {
    c: f64,
    intercept: f64,
    coef: Vec<f64>,
    auroc: f64,
    f1: f64,
}

#[test]
fn fits_equal_scikit_learn_saga() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/probe_reference.json"
    ))
    .unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    let rows = reference.x.len();
    let mut values = vec![0f32; rows * reference.units];
    for (i, row) in reference.x.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            values[j * rows + i] = *v as f32;
        }
    }
    let dense = ProbeData {
        name: "reference".into(),
        kind: UnitKind::Neuron,
        units: reference.units,
        values: UnitValues::Dense(values),
        labels: reference.labels.clone(),
        groups: reference.groups.clone(),
    };
    // The same rows as sparse, uncentred columns (kept sparse whatever their density): the
    // intercept absorbs the centring, so the fit must be the same.
    let sparse = as_sparse_rows(&dense);
    let mut forced = ProbeOptions::default();
    forced.solver.sparse_below = 1.0;
    for (data, storage) in [(&dense, ProbeOptions::default()), (&sparse, forced)] {
        for fit in &reference.fits {
            let options = ProbeOptions {
                c: fit.c,
                top_coefficients: reference.units,
                ..storage
            };
            let report = run_probe_split(data, &reference.is_test, &options).unwrap();
            let mut coef = vec![0.0; reference.units];
            for (unit, c) in &report.coefficients {
                coef[*unit as usize] = *c;
            }
            let worst = coef
                .iter()
                .zip(&fit.coef)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!(
                "C {}: AUROC {:.6} vs {:.6}, F1 {:.4} vs {:.4}, max |Δcoef| {worst:.2e}, \
             intercept {:.5} vs {:.5}",
                fit.c, report.auroc, fit.auroc, report.f1, fit.f1, report.intercept, fit.intercept
            );
            // The bar is 0.01 in AUROC; the two solvers agree far closer.
            assert!((report.auroc - fit.auroc).abs() < 1e-3);
            assert!((report.f1 - fit.f1).abs() < 0.02);
            assert!(worst < 5e-3, "coefficients {coef:?} vs {:?}", fit.coef);
            assert!((report.intercept - fit.intercept).abs() < 5e-3);
            // Same support: the L1 zeros are where scikit-learn's are.
            for (a, b) in coef.iter().zip(&fit.coef) {
                assert_eq!(*a == 0.0, b.abs() < 1e-6, "{coef:?} vs {:?}", fit.coef);
            }
        }
    }
}

#[test]
fn sparse_rows_give_the_dense_probe() {
    let dense = planted();
    let sparse = as_sparse_rows(&dense);
    let a = run_probe(&dense, &ProbeOptions::default()).unwrap();
    // 30% of the planted values are nonzero, above the default density for sparse columns.
    let mut forced = ProbeOptions::default();
    forced.solver.sparse_below = 1.0;
    let b = run_probe(&sparse, &forced).unwrap();
    // Catches: implicit zeros miscounted in single-unit AUROCs, the centring shift dropped from
    // the intercept, rows renumbered wrongly on one side of the split.
    assert!(
        (a.auroc - b.auroc).abs() < 1e-9,
        "{} vs {}",
        a.auroc,
        b.auroc
    );
    assert!((a.intercept - b.intercept).abs() < 1e-4);
    assert_eq!(a.nonzero, b.nonzero);
    for (x, y) in a.single_units.iter().zip(&b.single_units) {
        assert_eq!(x.unit, y.unit);
        assert!((x.test_auroc - y.test_auroc).abs() < 1e-12);
        assert!((x.train_auroc - y.train_auroc).abs() < 1e-12);
    }
    for (x, y) in a.coefficients.iter().zip(&b.coefficients) {
        assert_eq!(x.0, y.0);
        assert!((x.1 - y.1).abs() < 1e-4, "{x:?} vs {y:?}");
    }
}

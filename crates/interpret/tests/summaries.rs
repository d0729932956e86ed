//! Activation summaries: hand-computed statistics, and the same matrix given as sparse codes
//! and as a dense matrix (protein and residue level) summarised identically.

use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::summaries::{summarize, ExampleKind, SummaryOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random nonnegative matrix with ~20% nonzeros, as dense and as CSR.
fn matrix(rows: usize, units: usize, seed: u64) -> (Vec<f32>, Vec<u64>, Vec<u32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dense: Vec<f32> = (0..rows * units)
        .map(|_| {
            if rng.random_bool(0.2) {
                rng.random_range(0.1f32..10.0)
            } else {
                0.0
            }
        })
        .collect();
    let (mut row_ptr, mut feature, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for row in dense.chunks_exact(units) {
        for (u, &v) in row.iter().enumerate() {
            if v != 0.0 {
                feature.push(u as u32);
                value.push(v);
            }
        }
        row_ptr.push(feature.len() as u64);
    }
    (dense, row_ptr, feature, value)
}

#[test]
fn sparse_and_dense_inputs_give_the_same_summaries() {
    let options = SummaryOptions {
        top_n: 5,
        quantile_bins: 4,
        per_quantile_bin: 2,
        random_inactive: 3,
        seed: 9,
    };
    let (units, proteins) = (37usize, 60u32);
    // Protein level.
    let (dense, row_ptr, feature, value) = matrix(proteins as usize, units, 1);
    let codes = SparseCodes {
        row_ptr: &row_ptr,
        feature: &feature,
        value: &value,
        n_units: units as u32,
    };
    let sparse = summarize(&Activations::SparseProteins(codes), proteins, &options).unwrap();
    let dense_s = summarize(
        &Activations::DenseProteins {
            values: &dense,
            n_units: units as u32,
        },
        proteins,
        &options,
    )
    .unwrap();
    assert_eq!(sparse, dense_s);
    // Hand check of one unit.
    let u = 3;
    let column: Vec<f32> = (0..proteins as usize)
        .map(|p| dense[p * units + u])
        .collect();
    let active = column.iter().filter(|&&v| v > 0.0).count();
    assert_eq!(sparse[u].density, active as f64 / f64::from(proteins));
    assert_eq!(sparse[u].max, column.iter().copied().fold(0.0, f32::max));
    let mean = column.iter().map(|&v| f64::from(v)).sum::<f64>() / f64::from(proteins);
    assert!((sparse[u].mean - mean).abs() < 1e-12);
    let mut sorted: Vec<(f32, u32)> = column
        .iter()
        .enumerate()
        .map(|(p, &v)| (v, p as u32))
        .collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let top: Vec<u32> = sparse[u]
        .examples
        .iter()
        .filter(|e| e.kind == ExampleKind::Top)
        .map(|e| e.protein)
        .collect();
    assert_eq!(top, sorted[..5].iter().map(|s| s.1).collect::<Vec<_>>());
    for e in &sparse[u].examples {
        match e.kind {
            ExampleKind::Random => assert_eq!(column[e.protein as usize], 0.0),
            ExampleKind::Quantile => {
                let bin = (e.activation / sparse[u].max * 4.0).ceil() as u32 - 1;
                assert_eq!(e.rank, bin.min(3));
            }
            ExampleKind::Top => {}
        }
    }

    // Residue level: 200 residue rows over 25 proteins, rows in shuffled protein order.
    let (dense, row_ptr, feature, value) = matrix(200, units, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let protein: Vec<u32> = (0..200).map(|_| rng.random_range(0..25)).collect();
    let position: Vec<u32> = (0..200).collect();
    let rows = ResidueRows {
        protein: &protein,
        position: &position,
    };
    let codes = SparseCodes {
        row_ptr: &row_ptr,
        feature: &feature,
        value: &value,
        n_units: units as u32,
    };
    let sparse = summarize(&Activations::SparseResidues { codes, rows }, 25, &options).unwrap();
    let dense_s = summarize(
        &Activations::DenseResidues {
            values: &dense,
            n_units: units as u32,
            rows,
        },
        25,
        &options,
    )
    .unwrap();
    for (a, b) in sparse.iter().zip(&dense_s) {
        assert_eq!(
            (a.density, a.max, a.active_proteins),
            (b.density, b.max, b.active_proteins)
        );
        assert!((a.mean - b.mean).abs() < 1e-12);
        let tops = |s: &plmscope_interpret::summaries::UnitSummary| -> Vec<_> {
            s.examples
                .iter()
                .filter(|e| e.kind != ExampleKind::Random)
                .copied()
                .collect()
        };
        assert_eq!(tops(a), tops(b));
    }
    // The top example's position is the row of the protein-level maximum.
    let top = sparse[u].examples[0];
    let row = top.position.unwrap() as usize;
    assert_eq!(protein[row], top.protein);
    assert_eq!(dense[row * units + u], top.activation);
    assert_eq!(top.activation, sparse[u].max);
}

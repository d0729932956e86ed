//! Helpers shared by the integration tests: fixture reading and planted-dictionary data.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use safetensors::tensor::{Dtype, SafeTensors};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// Every tensor of a safetensors file as f64 values, plus the file's metadata.
pub struct Fixture {
    pub tensors: HashMap<String, Vec<f64>>,
    pub meta: HashMap<String, String>,
}

impl Fixture {
    pub fn read(path: &Path) -> Fixture {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, header) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let meta = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes).expect("safetensors");
        let mut tensors = HashMap::new();
        for name in st.names() {
            let v = st.tensor(name).unwrap();
            let raw = v.data();
            let vals: Vec<f64> = match v.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                d => panic!("unexpected dtype {d:?} for {name}"),
            };
            tensors.insert(name.to_string(), vals);
        }
        Fixture { tensors, meta }
    }
    pub fn f32(&self, name: &str) -> Vec<f32> {
        self.get(name).iter().map(|&v| v as f32).collect()
    }
    pub fn get(&self, name: &str) -> &[f64] {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
    }
    pub fn meta(&self, key: &str) -> &str {
        self.meta
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no metadata {key}"))
    }
}

/// Largest absolute difference, asserting equal lengths.
pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// Synthetic activations from a planted dictionary: `n_atoms` unit-norm atoms in `d`
/// dimensions, each row a sum of `active` atoms with coefficients in [0.5, 1.5], plus Gaussian
/// noise of standard deviation `noise`. Returns (rows [n, d], atoms [n_atoms, d]).
pub fn planted_data(
    n: usize,
    d: usize,
    n_atoms: usize,
    active: usize,
    noise: f32,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut atoms: Vec<f32> = (0..n_atoms * d)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    for a in atoms.chunks_mut(d) {
        let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        a.iter_mut().for_each(|v| *v /= norm);
    }
    let pick = Uniform::new(0, n_atoms).unwrap();
    let coef = Uniform::new(0.5f32, 1.5).unwrap();
    let mut x = vec![0.0f32; n * d];
    for row in x.chunks_mut(d) {
        for _ in 0..active {
            let a = pick.sample(&mut rng);
            let c = coef.sample(&mut rng);
            row.iter_mut()
                .zip(&atoms[a * d..(a + 1) * d])
                .for_each(|(r, v)| *r += c * v);
        }
        for r in row.iter_mut() {
            let z: f32 = StandardNormal.sample(&mut rng);
            *r += noise * z;
        }
    }
    (x, atoms)
}

/// Fraction of planted atoms whose best-matching decoder row has cosine >= `min_cos`.
pub fn recovered_fraction(atoms: &[f32], w_dec: &[f32], d: usize, min_cos: f32) -> f64 {
    let rows: Vec<&[f32]> = w_dec.chunks(d).collect();
    let norms: Vec<f32> = rows
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12))
        .collect();
    let hits = atoms
        .chunks(d)
        .filter(|a| {
            rows.iter()
                .zip(&norms)
                .map(|(r, n)| r.iter().zip(*a).map(|(x, y)| x * y).sum::<f32>() / n)
                .fold(f32::MIN, f32::max)
                >= min_cos
        })
        .count();
    hits as f64 / (atoms.len() / d) as f64
}

//! Shared test inputs: the real yeast proteome with its propagated GO (parsed once per test
//! binary), planted units and CSR construction.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use plmscope_bio::{
    AnnotationTable, FastaReader, GoCsvReader, GoDag, PropagatedAnnotation, PropagationReport,
};
use plmscope_interpret::pipeline::GoInput;
use plmscope_store::CsrRows;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub fn data(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(relative)
}

/// The S. cerevisiae S288c proteome: accessions in FASTA order and propagated GO.
pub struct Yeast {
    pub accessions: Vec<String>,
    pub lengths: Vec<u32>,
    pub dag: GoDag,
    pub propagated: Vec<PropagatedAnnotation>,
    pub report: PropagationReport,
}

impl Yeast {
    pub fn go(&self) -> GoInput<'_> {
        GoInput {
            dag: &self.dag,
            propagated: &self.propagated,
            report: &self.report,
        }
    }

    /// Members (protein indices in FASTA order) of every GO term, over all proteins.
    pub fn term_members(&self) -> BTreeMap<u32, Vec<u32>> {
        let row: std::collections::HashMap<&str, u32> = self
            .accessions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i as u32))
            .collect();
        let mut members: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for annotation in &self.propagated {
            if let Some(&p) = row.get(annotation.accession.as_str()) {
                for t in &annotation.terms {
                    members.entry(t.0).or_default().push(p);
                }
            }
        }
        for list in members.values_mut() {
            list.sort_unstable();
        }
        members
    }
}

pub fn yeast() -> &'static Yeast {
    static YEAST: OnceLock<Yeast> = OnceLock::new();
    YEAST.get_or_init(|| {
        let mut accessions = Vec::new();
        let mut lengths = Vec::new();
        for record in FastaReader::open(data("yeast_s288c/UP000002311_559292.fasta")).unwrap() {
            let record = record.unwrap();
            accessions.push(record.id);
            lengths.push(record.sequence.len() as u32);
        }
        let table: AnnotationTable =
            GoCsvReader::open(data("yeast_s288c/UP000002311_559292_go.csv"))
                .unwrap()
                .map(|row| row.map(|r| r.into_annotation()))
                .collect::<Result<_, _>>()
                .unwrap();
        let dag = GoDag::open(data("go-basic.obo")).unwrap();
        let (propagated, report) = dag.propagate(table.go_sets());
        Yeast {
            accessions,
            lengths,
            dag,
            propagated,
            report,
        }
    })
}

/// A unit firing on `members` with 10% noise: 10% of the members dropped, as many random
/// non-members added.
pub fn noisy(members: &[u32], n_proteins: u32, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let noise = members.len() / 10;
    let mut kept: Vec<u32> = members.to_vec();
    kept.shuffle(rng);
    kept.truncate(members.len() - noise);
    while kept.len() < members.len() {
        let p = rng.random_range(0..n_proteins);
        if members.binary_search(&p).is_err() && !kept.contains(&p) {
            kept.push(p);
        }
    }
    kept.sort_unstable();
    kept
}

/// A random protein set of `size`.
pub fn random_set(size: usize, n_proteins: u32, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let all: Vec<u32> = (0..n_proteins).collect();
    let mut set: Vec<u32> = all.choose_multiple(rng, size).copied().collect();
    set.sort_unstable();
    set
}

/// Protein-level CSR codes where unit `u` is active (value in 0.5..5) on `sets[u]`.
pub fn csr_from_sets(sets: &[Vec<u32>], n_proteins: u32, rng: &mut ChaCha8Rng) -> CsrRows {
    let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_proteins as usize];
    for (unit, set) in sets.iter().enumerate() {
        for &p in set {
            rows[p as usize].push((unit as u32, rng.random_range(0.5f32..5.0)));
        }
    }
    let mut csr = CsrRows::new();
    for row in rows {
        let (features, values): (Vec<u32>, Vec<f32>) = row.into_iter().unzip();
        csr.push_row(&features, &values);
    }
    csr
}

/// Jaccard index of two sorted sets.
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / (a.len() + b.len() - both) as f64
}

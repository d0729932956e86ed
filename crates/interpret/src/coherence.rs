//! GO coherence of a unit's significant terms, as in the seed paper's DAG-coherence analysis:
//! the mean pairwise shortest path between the terms (small = close together in the DAG) and the
//! mean depth of their lowest common ancestors (large = they share a specific ancestor).
//!
//! The graph comes through [`TermGraph`], so the GO DAG of the `bio` crate (or anything else)
//! can supply it. Significance of a unit's coherence is judged against random term sets of the
//! same size drawn from a caller-given candidate pool (normally the tested terms), with a seeded
//! generator so results are reproducible.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::stats_error::{StatsError, StatsResult};

/// Distances on a term graph; `None` where the pair has no path or no common ancestor (e.g.
/// different namespaces).
pub trait TermGraph {
    /// Number of edges on the shortest undirected path between `a` and `b`.
    fn shortest_path(&self, a: u32, b: u32) -> Option<u32>;
    /// Depth (distance from the root) of the deepest common ancestor of `a` and `b`.
    fn lca_depth(&self, a: u32, b: u32) -> Option<u32>;
}

/// Pairwise summaries of one term set. Means are over the pairs where the value is defined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coherence {
    pub n_terms: usize,
    pub mean_shortest_path: Option<f64>,
    pub mean_lca_depth: Option<f64>,
}

/// Mean pairwise shortest path and LCA depth over all unordered pairs of distinct terms.
pub fn coherence(graph: &dyn TermGraph, terms: &[u32]) -> Coherence {
    let (mut path_sum, mut path_pairs, mut depth_sum, mut depth_pairs) = (0u64, 0u64, 0u64, 0u64);
    for (i, &a) in terms.iter().enumerate() {
        for &b in &terms[i + 1..] {
            if let Some(d) = graph.shortest_path(a, b) {
                path_sum += u64::from(d);
                path_pairs += 1;
            }
            if let Some(d) = graph.lca_depth(a, b) {
                depth_sum += u64::from(d);
                depth_pairs += 1;
            }
        }
    }
    let mean = |sum: u64, pairs: u64| (pairs > 0).then(|| sum as f64 / pairs as f64);
    Coherence {
        n_terms: terms.len(),
        mean_shortest_path: mean(path_sum, path_pairs),
        mean_lca_depth: mean(depth_sum, depth_pairs),
    }
}

/// A unit's coherence against random term sets of the same size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoherenceTest {
    pub observed: Coherence,
    pub null_mean_shortest_path: Option<f64>,
    pub null_mean_lca_depth: Option<f64>,
    /// Empirical `P(random mean shortest path <= observed)`, as `(1 + hits) / (1 + draws)` so it
    /// is never 0.
    pub p_shortest_path: Option<f64>,
    /// Empirical `P(random mean LCA depth >= observed)`, same convention.
    pub p_lca_depth: Option<f64>,
    pub random_sets: u32,
}

/// Compares `terms` with `random_sets` random subsets of `candidates` of the same size (seeded).
pub fn coherence_test(
    graph: &dyn TermGraph,
    terms: &[u32],
    candidates: &[u32],
    random_sets: u32,
    seed: u64,
) -> StatsResult<CoherenceTest> {
    if terms.len() < 2 || candidates.len() < terms.len() || random_sets == 0 {
        return Err(StatsError::InvalidParameter {
            name: "terms / candidates / random_sets".into(),
            value: format!("{} / {} / {random_sets}", terms.len(), candidates.len()),
            requirement: "at least 2 terms, at least as many candidates, at least one random set"
                .into(),
        });
    }
    let observed = coherence(graph, terms);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut path = NullTally::default();
    let mut depth = NullTally::default();
    let mut draw = Vec::with_capacity(terms.len());
    for _ in 0..random_sets {
        draw.clear();
        draw.extend(
            sample(&mut rng, candidates.len(), terms.len())
                .iter()
                .map(|i| candidates[i]),
        );
        let random = coherence(graph, &draw);
        path.add(
            random.mean_shortest_path,
            observed.mean_shortest_path,
            |null, obs| null <= obs,
        );
        depth.add(
            random.mean_lca_depth,
            observed.mean_lca_depth,
            |null, obs| null >= obs,
        );
    }
    Ok(CoherenceTest {
        observed,
        null_mean_shortest_path: path.mean(),
        null_mean_lca_depth: depth.mean(),
        p_shortest_path: path.p_value(observed.mean_shortest_path),
        p_lca_depth: depth.p_value(observed.mean_lca_depth),
        random_sets,
    })
}

#[derive(Default)]
struct NullTally {
    sum: f64,
    defined: u32,
    as_extreme: u32,
}

impl NullTally {
    fn add(
        &mut self,
        null: Option<f64>,
        observed: Option<f64>,
        as_extreme: impl Fn(f64, f64) -> bool,
    ) {
        if let Some(null) = null {
            self.sum += null;
            self.defined += 1;
            if observed.is_some_and(|obs| as_extreme(null, obs)) {
                self.as_extreme += 1;
            }
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.defined > 0).then(|| self.sum / f64::from(self.defined))
    }

    fn p_value(&self, observed: Option<f64>) -> Option<f64> {
        observed?;
        (self.defined > 0).then(|| f64::from(1 + self.as_extreme) / f64::from(1 + self.defined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete binary tree stored as heap indices: root 0, children 2i+1 and 2i+2.
    struct BinaryTree;

    fn depth(mut node: u32) -> u32 {
        let mut d = 0;
        while node > 0 {
            node = (node - 1) / 2;
            d += 1;
        }
        d
    }

    fn lca(mut a: u32, mut b: u32) -> u32 {
        while a != b {
            if a > b {
                a = (a - 1) / 2;
            } else {
                b = (b - 1) / 2;
            }
        }
        a
    }

    impl TermGraph for BinaryTree {
        fn shortest_path(&self, a: u32, b: u32) -> Option<u32> {
            Some(depth(a) + depth(b) - 2 * depth(lca(a, b)))
        }
        fn lca_depth(&self, a: u32, b: u32) -> Option<u32> {
            Some(depth(lca(a, b)))
        }
    }

    #[test]
    fn pairwise_means_on_a_tree() {
        // 7 and 8 are siblings under 3 (depth 2); 9 is their cousin under 4.
        let c = coherence(&BinaryTree, &[7, 8, 9]);
        assert_eq!(c.mean_shortest_path, Some((2.0 + 4.0 + 4.0) / 3.0));
        assert_eq!(c.mean_lca_depth, Some((2.0 + 1.0 + 1.0) / 3.0));
    }

    #[test]
    fn a_tight_cluster_beats_random_sets_and_is_reproducible() {
        let candidates: Vec<u32> = (0..1023).collect();
        let cluster = [511, 512, 513, 514]; // leaves under one depth-7 node
        let test = coherence_test(&BinaryTree, &cluster, &candidates, 999, 7).unwrap();
        assert!(test.p_shortest_path.unwrap() < 0.01, "{test:?}");
        assert!(test.p_lca_depth.unwrap() < 0.01, "{test:?}");
        assert_eq!(
            test,
            coherence_test(&BinaryTree, &cluster, &candidates, 999, 7).unwrap()
        );
        // A random set is not unusual.
        let scattered = [1, 300, 700, 1000];
        let test = coherence_test(&BinaryTree, &scattered, &candidates, 999, 7).unwrap();
        assert!(test.p_lca_depth.unwrap() > 0.05, "{test:?}");
        assert!(coherence_test(&BinaryTree, &[1], &candidates, 10, 0).is_err());
    }
}

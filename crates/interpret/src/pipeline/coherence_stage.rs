//! GO coherence of each unit's significant terms, per namespace.
//!
//! The null distribution of [`crate::coherence::coherence_test`] depends only on the set size
//! and the candidate pool, not on the unit, so it is drawn once per (namespace, set size) and
//! shared by all units: the same test, with the cost of the random draws paid once instead of
//! once per unit. p is `(1 + random sets as extreme) / (1 + random sets with a defined value)`,
//! the convention of [`crate::coherence::CoherenceTest`].

use std::collections::BTreeMap;

use plmscope_bio::{GoDag, Namespace};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::CoherenceOptions;
use crate::coherence::{coherence, Coherence, CoherenceTest};
use crate::enrichment::EnrichmentResult;
use crate::go_graph::GoTermGraph;

/// Coherence tests of every unit with at least two significant terms in a namespace:
/// `(unit index in its kind, namespace, test)`.
pub(crate) fn coherence_tests(
    dag: &GoDag,
    result: &EnrichmentResult,
    term_namespaces: &[Namespace],
    candidates: &BTreeMap<Namespace, Vec<u32>>,
    alpha: f64,
    options: &CoherenceOptions,
) -> Vec<(u32, Namespace, CoherenceTest)> {
    let ln_alpha = alpha.ln();
    // Each unit's most significant terms per namespace.
    let mut wanted: Vec<(u32, Namespace, Vec<u32>)> = Vec::new();
    for unit in &result.units {
        for (&namespace, pool) in candidates {
            let mut significant: Vec<(f64, u32)> = unit
                .tests
                .iter()
                .filter(|t| t.ln_q < ln_alpha && term_namespaces[t.term as usize] == namespace)
                .map(|t| (t.ln_p, t.term))
                .collect();
            significant.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            significant.truncate(options.max_terms.min(pool.len()));
            if significant.len() >= 2 {
                wanted.push((
                    unit.unit,
                    namespace,
                    significant.iter().map(|s| s.1).collect(),
                ));
            }
        }
    }
    let mut sizes: Vec<(Namespace, usize)> = wanted.iter().map(|w| (w.1, w.2.len())).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let nulls: BTreeMap<(Namespace, usize), Vec<Coherence>> = sizes
        .into_par_iter()
        .map(|(namespace, size)| {
            let pool = &candidates[&namespace];
            let graph = GoTermGraph::new(dag);
            let seed = options.seed ^ ((size as u64) << 8) ^ namespace as u64;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let draws = (0..options.random_sets)
                .map(|_| {
                    let terms: Vec<u32> = sample(&mut rng, pool.len(), size)
                        .iter()
                        .map(|i| pool[i])
                        .collect();
                    coherence(&graph, &terms)
                })
                .collect();
            ((namespace, size), draws)
        })
        .collect();
    wanted
        .into_par_iter()
        .map(|(unit, namespace, terms)| {
            let observed = coherence(&GoTermGraph::new(dag), &terms);
            let null = &nulls[&(namespace, terms.len())];
            (
                unit,
                namespace,
                against_null(observed, null, options.random_sets),
            )
        })
        .collect()
}

fn against_null(observed: Coherence, null: &[Coherence], random_sets: u32) -> CoherenceTest {
    let tally = |value: fn(&Coherence) -> Option<f64>, as_extreme: fn(f64, f64) -> bool| {
        let defined: Vec<f64> = null.iter().filter_map(value).collect();
        let mean =
            (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
        let p = value(&observed).and_then(|obs| {
            (!defined.is_empty()).then(|| {
                let hits = defined.iter().filter(|&&n| as_extreme(n, obs)).count();
                (1 + hits) as f64 / (1 + defined.len()) as f64
            })
        });
        (mean, p)
    };
    let (null_path, p_path) = tally(|c| c.mean_shortest_path, |null, obs| null <= obs);
    let (null_depth, p_depth) = tally(|c| c.mean_lca_depth, |null, obs| null >= obs);
    CoherenceTest {
        observed,
        null_mean_shortest_path: null_path,
        null_mean_lca_depth: null_depth,
        p_shortest_path: p_path,
        p_lca_depth: p_depth,
        random_sets,
    }
}

//! The ancestor closure's memory stays linear in the number of terms, and its answers are a
//! plain traversal's: on a 20,000-term chain (quadratic if every set were stored) and on a
//! sample of the real ontology (where the sets are stored, for speed).

mod common;

use std::collections::BTreeSet;

use common::data;
use plmscope_bio::{GoDag, GoId, OboDocument, TermIndex};

/// Term i (GO:000000i) is_a term i − 1 (`part_of` every tenth link, so both relations count).
fn chain(n: usize) -> GoDag {
    let mut text = String::from("format-version: 1.2\n\n");
    for i in 1..=n {
        text.push_str(&format!(
            "[Term]\nid: GO:{i:07}\nname: t{i}\nnamespace: biological_process\n"
        ));
        if i > 1 && i % 10 == 0 {
            text.push_str(&format!("relationship: part_of GO:{:07}\n", i - 1));
        } else if i > 1 {
            text.push_str(&format!("is_a: GO:{:07}\n", i - 1));
        }
        text.push('\n');
    }
    GoDag::from_document(&OboDocument::read(text.as_bytes(), "chain.obo").unwrap()).unwrap()
}

/// Ancestors with self by a depth-first walk over `parents`, sorted.
fn brute_force(dag: &GoDag, term: TermIndex) -> Vec<TermIndex> {
    let mut seen = BTreeSet::from([term]);
    let mut stack = vec![term];
    while let Some(t) = stack.pop() {
        for &p in dag.parents(t) {
            if seen.insert(p) {
                stack.push(p);
            }
        }
    }
    seen.into_iter().collect()
}

/// Storing every set would hold n(n+1)/2 = 200,010,000 entries (800 MB) here; the mutation
/// "always store" fails the bound, one that walks only `is_a` fails the answers.
#[test]
fn a_20000_term_chain_stays_linear_and_answers_right() {
    let n = 20_000;
    let dag = chain(n);
    assert_eq!(dag.len(), n);
    assert!(
        dag.stored_ancestor_entries() <= 64 * n,
        "{} ancestor entries stored for {n} terms",
        dag.stored_ancestor_entries()
    );
    assert!(dag.ancestor_closure_bytes() <= (64 * 4 + 8) * n);
    for i in [1u32, 2, 9, 10, 11, 4_321, 19_999, 20_000] {
        let term = dag.index(GoId(i)).unwrap();
        let ids: Vec<u32> = dag.ancestors(term).iter().map(|&a| dag.id(a).0).collect();
        assert_eq!(ids, (1..=i).collect::<Vec<_>>(), "GO:{i:07}");
        assert_eq!(dag.depth(term), i - 1);
    }
    let (a, b) = (
        dag.index(GoId(15_000)).unwrap(),
        dag.index(GoId(n as u32)).unwrap(),
    );
    assert_eq!(dag.lowest_common_ancestor_depth(a, b), Some(14_999));
    let (propagated, _) = dag.propagate([("P1", &[GoId(300)][..])]);
    assert_eq!(propagated[0].terms.len(), 300);
}

/// On go-basic the sets are stored (the fast path) and equal a traversal's for a sample of
/// terms across the index range, deep ones included.
#[test]
fn go_basic_ancestors_equal_a_traversal() {
    let dag = GoDag::open(data("go-basic.obo")).unwrap();
    let answered: usize = dag.terms().map(|t| dag.ancestors(t).len()).sum();
    assert_eq!(
        dag.stored_ancestor_entries(),
        answered,
        "GO's sets are stored"
    );
    assert!(answered <= 64 * dag.len());
    let deepest = dag.terms().max_by_key(|&t| dag.depth(t)).unwrap();
    let sample = dag.terms().step_by(97).chain([deepest]);
    let mut checked = 0;
    for term in sample {
        assert_eq!(
            *dag.ancestors(term),
            brute_force(&dag, term)[..],
            "{}",
            dag.id(term)
        );
        checked += 1;
    }
    assert!(checked > 400);
}

//! Every term's ancestors with itself: stored while that is small, walked otherwise.
//!
//! Stored, the sets cost one entry per (term, ancestor) pair. That is linear on GO (go-basic,
//! 43,789 terms: 654,749 entries, 15 per term, 2.6 MB) but quadratic on a deep chain (20,000
//! terms each `is_a` the one before: 200,010,000 entries, 800 MB, 1.6 GB peak and 6 s to build).
//! So the sets are stored only while they fit [`STORED_PER_TERM`] entries per term on average;
//! past that the build stops (memory stays linear) and each query walks up the parents instead,
//! in time linear in the answer plus a visited bitset of n bits.

use std::borrow::Cow;

use super::{GoDag, TermIndex};

/// Stored entries allowed per term, on average: 4× go-basic's 15, so GO is always stored.
pub(super) const STORED_PER_TERM: usize = 64;

/// How [`GoDag::ancestors`] answers.
#[derive(Clone, Debug)]
pub(super) enum Closure {
    /// Term `t`'s sorted ancestors are `entries[start..start + len]`, `(start, len) = spans[t]`.
    Stored {
        spans: Vec<(u32, u32)>,
        entries: Vec<TermIndex>,
    },
    /// Too many entries to store: every query walks the parents.
    Walked,
}

impl Closure {
    /// The closure of the DAG with these parent lists, visiting `order` (parents first); stored
    /// when the entries total at most `budget`, walked otherwise.
    pub(super) fn build(parents: &[Vec<TermIndex>], order: &[usize], budget: usize) -> Closure {
        let budget = budget.min(u32::MAX as usize);
        let mut spans = vec![(0u32, 0u32); parents.len()];
        let mut entries: Vec<TermIndex> = Vec::new();
        let mut set = Vec::new();
        for &node in order {
            set.clear();
            set.push(TermIndex(node as u32));
            for parent in &parents[node] {
                let (start, len) = spans[parent.at()];
                set.extend_from_slice(&entries[start as usize..(start + len) as usize]);
            }
            set.sort_unstable();
            set.dedup();
            if entries.len() + set.len() > budget {
                return Closure::Walked;
            }
            spans[node] = (entries.len() as u32, set.len() as u32);
            entries.extend_from_slice(&set);
        }
        entries.shrink_to_fit();
        Closure::Stored { spans, entries }
    }
}

impl GoDag {
    /// Every ancestor over `is_a` and `part_of`, the term itself included, sorted by index.
    /// Borrowed from the stored sets; computed when the DAG is too deep to store them
    /// ([`GoDag::stored_ancestor_entries`] is then 0).
    pub fn ancestors(&self, term: TermIndex) -> Cow<'_, [TermIndex]> {
        match &self.closure {
            Closure::Stored { spans, entries } => {
                let (start, len) = spans[term.at()];
                Cow::Borrowed(&entries[start as usize..(start + len) as usize])
            }
            Closure::Walked => Cow::Owned(self.terms_of(&self.ancestor_bits(term))),
        }
    }

    /// Ancestor entries held in memory: the sum of every term's ancestor count when stored, 0
    /// when queries walk the DAG. At most [`STORED_PER_TERM`] per term.
    pub fn stored_ancestor_entries(&self) -> usize {
        match &self.closure {
            Closure::Stored { entries, .. } => entries.len(),
            Closure::Walked => 0,
        }
    }

    /// Bytes of the stored closure (entries and per-term spans).
    pub fn ancestor_closure_bytes(&self) -> usize {
        match &self.closure {
            Closure::Stored { spans, entries } => {
                std::mem::size_of_val(&spans[..]) + std::mem::size_of_val(&entries[..])
            }
            Closure::Walked => 0,
        }
    }

    /// Term `term` and its ancestors as a bitset over term indices (bit `t % 64` of word
    /// `t / 64`), by a breadth-first walk up the parents.
    pub(super) fn ancestor_bits(&self, term: TermIndex) -> Vec<u64> {
        let mut bits = vec![0u64; self.len().div_ceil(64)];
        bits[term.at() / 64] |= 1 << (term.at() % 64);
        let mut queue = vec![term];
        while let Some(t) = queue.pop() {
            for &parent in self.parents(t) {
                let (word, bit) = (parent.at() / 64, 1u64 << (parent.at() % 64));
                if bits[word] & bit == 0 {
                    bits[word] |= bit;
                    queue.push(parent);
                }
            }
        }
        bits
    }

    /// The terms whose bits are set, in index order (so sorted without a sort).
    pub(super) fn terms_of(&self, bits: &[u64]) -> Vec<TermIndex> {
        let mut terms = Vec::new();
        for (w, &word) in bits.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                terms.push(TermIndex((w * 64) as u32 + rest.trailing_zeros()));
                rest &= rest - 1;
            }
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walked answers equal the stored ones on every term of the real ontology, and so do
    /// common ancestors (a bitset intersection when walked) on 2,000 pairs: a DAG past the
    /// budget answers exactly as a stored one (a walk that stops at a term's first parent, or
    /// an off-by-one in the bit scan, fails here).
    #[test]
    fn walked_equals_stored_on_go_basic() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/go-basic.obo"
        );
        let stored = GoDag::open(path).unwrap();
        assert!(matches!(stored.closure, Closure::Stored { .. }));
        let walked = GoDag {
            closure: Closure::Walked,
            ..stored.clone()
        };
        for term in stored.terms() {
            assert_eq!(
                walked.ancestors(term),
                stored.ancestors(term),
                "{}",
                stored.id(term)
            );
        }
        assert_eq!(walked.stored_ancestor_entries(), 0);
        let n = stored.len() as u32;
        for i in 0..2_000u32 {
            let (a, b) = (TermIndex(i * 7_919 % n), TermIndex(i * 104_729 % n));
            assert_eq!(walked.common_ancestors(a, b), stored.common_ancestors(a, b));
            assert_eq!(
                walked.lowest_common_ancestors(a, b),
                stored.lowest_common_ancestors(a, b)
            );
        }
    }
}

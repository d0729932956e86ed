//! Distances between terms, for the GO coherence measure: shortest path in the undirected DAG
//! and the depth of the lowest common ancestors.

use std::collections::VecDeque;

use super::closure::Closure;
use super::{GoDag, TermIndex};

impl GoDag {
    /// Number of edges on the shortest path between `a` and `b` when `is_a`/`part_of` edges are
    /// walked in both directions; `None` when they are not connected (different namespaces).
    pub fn shortest_path_length(&self, a: TermIndex, b: TermIndex) -> Option<u32> {
        if a == b {
            return Some(0);
        }
        let mut distance = vec![u32::MAX; self.len()];
        distance[a.at()] = 0;
        let mut queue = VecDeque::from([a]);
        while let Some(term) = queue.pop_front() {
            let next = distance[term.at()] + 1;
            for &neighbour in self.parents(term).iter().chain(self.children(term)) {
                if distance[neighbour.at()] == u32::MAX {
                    if neighbour == b {
                        return Some(next);
                    }
                    distance[neighbour.at()] = next;
                    queue.push_back(neighbour);
                }
            }
        }
        None
    }

    /// Terms that are ancestors (with self) of both `a` and `b`, sorted.
    pub fn common_ancestors(&self, a: TermIndex, b: TermIndex) -> Vec<TermIndex> {
        if matches!(self.closure, Closure::Walked) {
            // Too deep to store: intersect the two ancestor bitsets.
            let mut left = self.ancestor_bits(a);
            let right = self.ancestor_bits(b);
            left.iter_mut().zip(&right).for_each(|(l, r)| *l &= r);
            return self.terms_of(&left);
        }
        let (left, right) = (self.ancestors(a), self.ancestors(b));
        // Borrowed slices, so the merge below does not re-dispatch the `Cow` on every access.
        let (left, right): (&[TermIndex], &[TermIndex]) = (&left, &right);
        let (mut i, mut j) = (0, 0);
        let mut common = Vec::new();
        while i < left.len() && j < right.len() {
            match left[i].cmp(&right[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    common.push(left[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        common
    }

    /// Common ancestors of `a` and `b` with no descendant among the common ancestors.
    pub fn lowest_common_ancestors(&self, a: TermIndex, b: TermIndex) -> Vec<TermIndex> {
        let common = self.common_ancestors(a, b);
        // Common ancestors are closed upwards, so a term has a common descendant exactly when
        // one of its children is common.
        common
            .iter()
            .copied()
            .filter(|&term| {
                !self
                    .children(term)
                    .iter()
                    .any(|child| common.binary_search(child).is_ok())
            })
            .collect()
    }

    /// Greatest [`GoDag::depth`] (longest path to the root) among the common ancestors of `a`
    /// and `b`, as goatools' `deepest_common_ancestor`; `None` when they share none.
    pub fn lowest_common_ancestor_depth(&self, a: TermIndex, b: TermIndex) -> Option<u32> {
        self.common_ancestors(a, b)
            .into_iter()
            .map(|term| self.depth(term))
            .max()
    }
}

//! Glue between the `bio` crate's GO DAG and the statistics: the [`TermGraph`] adapter used for
//! GO coherence, and the map from protein accessions (activation row order) to dense protein
//! indices that turns propagated annotations into per-protein term sets.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use plmscope_bio::{GoDag, PropagatedAnnotation, TermIndex};

use crate::coherence::TermGraph;
use crate::error::{AnalysisError, AnalysisResult};

/// [`TermGraph`] over a [`GoDag`]; term ids are [`TermIndex`] values.
///
/// `coherence` asks for the distances of one term to many others in a row, so the adapter keeps
/// the breadth-first distances from the last source term: a set of `n` terms costs `n`
/// traversals instead of `n²/2`. The cache makes the adapter single-threaded (`!Sync`); make one
/// per thread or per unit, which costs one allocation.
pub struct GoTermGraph<'a> {
    dag: &'a GoDag,
    last_source: RefCell<Option<(u32, Vec<u32>)>>,
}

impl<'a> GoTermGraph<'a> {
    pub fn new(dag: &'a GoDag) -> Self {
        GoTermGraph {
            dag,
            last_source: RefCell::new(None),
        }
    }

    /// Undirected BFS distances (over `is_a` and `part_of`) from `source` to every term.
    fn distances_from(&self, source: u32) -> Vec<u32> {
        let mut distance = vec![u32::MAX; self.dag.len()];
        distance[source as usize] = 0;
        let mut queue = VecDeque::from([TermIndex(source)]);
        while let Some(term) = queue.pop_front() {
            let next = distance[term.0 as usize] + 1;
            for &n in self.dag.parents(term).iter().chain(self.dag.children(term)) {
                if distance[n.0 as usize] == u32::MAX {
                    distance[n.0 as usize] = next;
                    queue.push_back(n);
                }
            }
        }
        distance
    }
}

impl TermGraph for GoTermGraph<'_> {
    fn shortest_path(&self, a: u32, b: u32) -> Option<u32> {
        let n = self.dag.len() as u32;
        if a >= n || b >= n {
            return None;
        }
        let mut cache = self.last_source.borrow_mut();
        let (source, target) = match cache.as_ref() {
            Some((s, _)) if *s == b => (b, a),
            _ => (a, b),
        };
        if cache.as_ref().map(|(s, _)| *s) != Some(source) {
            *cache = Some((source, self.distances_from(source)));
        }
        let d = cache.as_ref().map_or(u32::MAX, |(_, d)| d[target as usize]);
        (d != u32::MAX).then_some(d)
    }

    fn lca_depth(&self, a: u32, b: u32) -> Option<u32> {
        let n = self.dag.len() as u32;
        if a >= n || b >= n {
            return None;
        }
        self.dag
            .lowest_common_ancestor_depth(TermIndex(a), TermIndex(b))
    }
}

/// Accession → dense protein index (the activation row order).
#[derive(Debug, Clone)]
pub struct AccessionIndex {
    index: HashMap<String, u32>,
}

/// Annotation sets mapped onto protein indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedAnnotations {
    /// Sorted, distinct term ids per protein, in protein order.
    pub term_sets: Vec<Vec<u32>>,
    /// Analysed proteins without an annotation record.
    pub unmatched_proteins: usize,
    /// Annotation records whose accession is not among the analysed proteins.
    pub records_without_protein: usize,
}

impl AccessionIndex {
    /// Fails on an empty or duplicated accession (rows could not be told apart).
    pub fn new(accessions: &[String]) -> AnalysisResult<Self> {
        let mut index = HashMap::with_capacity(accessions.len());
        for (row, accession) in accessions.iter().enumerate() {
            if accession.is_empty() {
                return Err(AnalysisError::input(
                    format!("protein accession of row {row} is empty"),
                    "give every activation row its accession",
                ));
            }
            if let Some(first) = index.insert(accession.clone(), row as u32) {
                return Err(AnalysisError::input(
                    format!("accession {accession} appears at rows {first} and {row}"),
                    "accessions must be unique",
                ));
            }
        }
        Ok(AccessionIndex { index })
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The protein index of `accession`.
    pub fn get(&self, accession: &str) -> Option<u32> {
        self.index.get(accession).copied()
    }

    /// Propagated GO annotations as term sets (term id = [`TermIndex`] value). Records of the
    /// same accession are united.
    pub fn map_go(&self, propagated: &[PropagatedAnnotation]) -> MappedAnnotations {
        self.map(
            propagated
                .iter()
                .map(|p| (p.accession.as_str(), p.terms.iter().map(|t| t.0))),
        )
    }

    /// Family annotations (`accession`, family ids) as term sets over `families`, the sorted
    /// distinct family ids, which is returned too.
    pub fn map_families(
        &self,
        records: &[(String, Vec<String>)],
    ) -> (Vec<String>, MappedAnnotations) {
        let mut families: Vec<String> = records
            .iter()
            .flat_map(|(_, f)| f.iter().cloned())
            .collect();
        families.sort_unstable();
        families.dedup();
        let id = |f: &String| families.binary_search(f).map_or(0, |i| i as u32);
        let mapped = self.map(
            records
                .iter()
                .map(|(accession, f)| (accession.as_str(), f.iter().map(id))),
        );
        (families, mapped)
    }

    fn map<'r, I, T>(&self, records: I) -> MappedAnnotations
    where
        I: IntoIterator<Item = (&'r str, T)>,
        T: IntoIterator<Item = u32>,
    {
        let mut term_sets = vec![Vec::new(); self.index.len()];
        let mut has_record = vec![false; self.index.len()];
        let mut records_without_protein = 0;
        for (accession, terms) in records {
            match self.get(accession) {
                Some(p) => {
                    has_record[p as usize] = true;
                    term_sets[p as usize].extend(terms);
                }
                None => records_without_protein += 1,
            }
        }
        for set in &mut term_sets {
            set.sort_unstable();
            set.dedup();
        }
        MappedAnnotations {
            term_sets,
            unmatched_proteins: has_record.iter().filter(|&&h| !h).count(),
            records_without_protein,
        }
    }
}

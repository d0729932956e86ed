//! The GO DAG for annotation work: dense term indices, names, namespaces and parents over `is_a`
//! and `part_of` only (the relations the true-path rule follows). Obsolete terms are dropped
//! (counted, with their `replaced_by`/`consider` kept for reports) and `alt_id`s map to their
//! primary term.
//!
//! Per term it precomputes two depths, the longest path to a root (goatools' `depth`) and the
//! shortest (goatools' `level`), and the ancestor set with the term itself while those sets
//! stay linear in the number of terms (see `closure.rs`: always for GO, not for a deep chain).

mod closure;
mod distance;
mod propagate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{BioError, Result};
use crate::ids::{GoId, Namespace};
use crate::obo::{OboDocument, RelationType};
use closure::{Closure, STORED_PER_TERM};

pub use propagate::{PropagatedAnnotation, PropagationReport};

/// Dense index of a non-obsolete term in a [`GoDag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TermIndex(pub u32);

impl TermIndex {
    fn at(self) -> usize {
        self.0 as usize
    }
}

/// What a GO id means in this DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// A primary id.
    Term(TermIndex),
    /// An `alt_id` of this term.
    AltId(TermIndex),
    /// An obsolete term, with its suggested replacements.
    Obsolete {
        replaced_by: &'a [GoId],
        consider: &'a [String],
    },
    /// Not in this ontology (for example added after its release).
    Unknown,
}

/// Replacement hints of an obsolete term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObsoleteTerm {
    pub replaced_by: Vec<GoId>,
    pub consider: Vec<String>,
}

/// The GO DAG over `is_a` and `part_of`.
#[derive(Clone, Debug)]
pub struct GoDag {
    source: PathBuf,
    data_version: Option<String>,
    ids: Vec<GoId>,
    names: Vec<String>,
    namespaces: Vec<Namespace>,
    parents: Vec<Vec<TermIndex>>,
    children: Vec<Vec<TermIndex>>,
    primary: HashMap<GoId, TermIndex>,
    alt_ids: HashMap<GoId, TermIndex>,
    obsolete: HashMap<GoId, ObsoleteTerm>,
    /// Ancestors with self, stored or walked.
    closure: Closure,
    longest_depth: Vec<u32>,
    shortest_depth: Vec<u32>,
}

impl GoDag {
    /// Reads and checks an OBO file and builds the DAG.
    pub fn open(path: impl AsRef<Path>) -> Result<GoDag> {
        GoDag::from_document(&OboDocument::open(path)?)
    }

    /// Builds the DAG from a parsed ontology.
    pub fn from_document(document: &OboDocument) -> Result<GoDag> {
        let file = &document.source;
        let mut dag = GoDag {
            source: file.clone(),
            data_version: document.data_version.clone(),
            ids: Vec::new(),
            names: Vec::new(),
            namespaces: Vec::new(),
            parents: Vec::new(),
            children: Vec::new(),
            primary: HashMap::new(),
            alt_ids: HashMap::new(),
            obsolete: HashMap::new(),
            closure: Closure::Walked,
            longest_depth: Vec::new(),
            shortest_depth: Vec::new(),
        };
        for term in &document.terms {
            if term.is_obsolete {
                let hints = ObsoleteTerm {
                    replaced_by: term.replaced_by.clone(),
                    consider: term.consider.clone(),
                };
                for id in std::iter::once(&term.id).chain(&term.alt_ids) {
                    dag.obsolete.insert(*id, hints.clone());
                }
                continue;
            }
            let namespace = Namespace::from_obo(&term.namespace).ok_or_else(|| {
                BioError::malformed(
                    file,
                    term.line,
                    format!("term {} has namespace '{}'", term.id, term.namespace),
                    "GO terms must be in biological_process, molecular_function or cellular_component",
                )
            })?;
            let index = TermIndex(dag.ids.len() as u32);
            dag.primary.insert(term.id, index);
            for alt in &term.alt_ids {
                dag.alt_ids.insert(*alt, index);
            }
            dag.ids.push(term.id);
            dag.names.push(term.name.clone());
            dag.namespaces.push(namespace);
        }
        dag.parents = vec![Vec::new(); dag.ids.len()];
        dag.children = vec![Vec::new(); dag.ids.len()];
        for term in document.terms.iter().filter(|t| !t.is_obsolete) {
            let child = dag.primary[&term.id];
            let part_of = term
                .relationships
                .iter()
                .filter(|r| r.relation == RelationType::PartOf)
                .map(|r| r.target);
            for parent_id in term.is_a.iter().copied().chain(part_of) {
                let parent = *dag.primary.get(&parent_id).ok_or_else(|| {
                    BioError::malformed(
                        file,
                        term.line,
                        format!("term {} has obsolete parent {parent_id}", term.id),
                        "use a consistent ontology release (obsolete terms have no children)",
                    )
                })?;
                if !dag.parents[child.at()].contains(&parent) {
                    dag.parents[child.at()].push(parent);
                    dag.children[parent.at()].push(child);
                }
            }
        }
        let term_lines: Vec<usize> = document
            .terms
            .iter()
            .filter(|t| !t.is_obsolete)
            .map(|t| t.line)
            .collect();
        dag.compute_closure(&term_lines)?;
        Ok(dag)
    }

    /// Depths and the ancestor closure, parents first.
    fn compute_closure(&mut self, term_lines: &[usize]) -> Result<()> {
        let parent_lists: Vec<Vec<usize>> = self
            .parents
            .iter()
            .map(|ps| ps.iter().map(|p| p.at()).collect())
            .collect();
        let order =
            crate::graph::parents_first_order(&parent_lists).map_err(|cycle| BioError::Cycle {
                file: self.source.clone(),
                line: cycle.first().map_or(0, |&t| term_lines[t]),
                terms: cycle.iter().map(|&t| self.ids[t].to_string()).collect(),
            })?;
        let n = self.ids.len();
        self.longest_depth = vec![0; n];
        self.shortest_depth = vec![0; n];
        for &node in &order {
            let mut longest = None::<u32>;
            let mut shortest = None::<u32>;
            for parent in &self.parents[node] {
                let (l, s) = (
                    self.longest_depth[parent.at()],
                    self.shortest_depth[parent.at()],
                );
                longest = Some(longest.map_or(l, |d| d.max(l)));
                shortest = Some(shortest.map_or(s, |d| d.min(s)));
            }
            self.longest_depth[node] = longest.map_or(0, |d| d + 1);
            self.shortest_depth[node] = shortest.map_or(0, |d| d + 1);
        }
        self.closure = Closure::build(&self.parents, &order, STORED_PER_TERM * n);
        Ok(())
    }

    /// Number of (non-obsolete) terms.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ontology's `data-version`, if stated.
    pub fn data_version(&self) -> Option<&str> {
        self.data_version.as_deref()
    }

    /// Number of obsolete ids (primary and alt) dropped from the DAG.
    pub fn obsolete_count(&self) -> usize {
        self.obsolete.len()
    }

    /// Number of `alt_id`s that map to a term of the DAG.
    pub fn alt_id_count(&self) -> usize {
        self.alt_ids.len()
    }

    /// What `id` means here: a term, an alt id of a term, an obsolete term, or unknown.
    pub fn resolve(&self, id: GoId) -> Resolution<'_> {
        if let Some(&index) = self.primary.get(&id) {
            Resolution::Term(index)
        } else if let Some(&index) = self.alt_ids.get(&id) {
            Resolution::AltId(index)
        } else if let Some(hints) = self.obsolete.get(&id) {
            Resolution::Obsolete {
                replaced_by: &hints.replaced_by,
                consider: &hints.consider,
            }
        } else {
            Resolution::Unknown
        }
    }

    /// The term for a primary or alt id.
    pub fn index(&self, id: GoId) -> Option<TermIndex> {
        match self.resolve(id) {
            Resolution::Term(index) | Resolution::AltId(index) => Some(index),
            _ => None,
        }
    }

    pub fn id(&self, term: TermIndex) -> GoId {
        self.ids[term.at()]
    }

    pub fn name(&self, term: TermIndex) -> &str {
        &self.names[term.at()]
    }

    pub fn namespace(&self, term: TermIndex) -> Namespace {
        self.namespaces[term.at()]
    }

    /// Direct parents over `is_a` and `part_of`.
    pub fn parents(&self, term: TermIndex) -> &[TermIndex] {
        &self.parents[term.at()]
    }

    /// Direct children over `is_a` and `part_of`.
    pub fn children(&self, term: TermIndex) -> &[TermIndex] {
        &self.children[term.at()]
    }

    /// Length of the longest path up to a root (roots have depth 0; goatools' `depth`).
    pub fn depth(&self, term: TermIndex) -> u32 {
        self.longest_depth[term.at()]
    }

    /// Length of the shortest path up to a root (goatools' `level`).
    pub fn level(&self, term: TermIndex) -> u32 {
        self.shortest_depth[term.at()]
    }

    /// All terms, in index order.
    pub fn terms(&self) -> impl Iterator<Item = TermIndex> {
        (0..self.ids.len() as u32).map(TermIndex)
    }
}

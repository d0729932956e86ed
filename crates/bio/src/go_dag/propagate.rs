//! The true-path rule: a protein annotated with a term is annotated with all its ancestors.

use std::collections::{BTreeMap, BTreeSet};

use super::{GoDag, Resolution, TermIndex};
use crate::ids::GoId;

/// One protein's propagated annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropagatedAnnotation {
    pub accession: String,
    /// Annotated terms and all their ancestors, sorted, distinct.
    pub terms: Vec<TermIndex>,
}

/// What propagation did with ids that are not primary terms of the DAG. Maps count
/// annotations (protein-term pairs), not distinct ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropagationReport {
    /// Protein-term pairs read.
    pub annotations: usize,
    /// Ids the ontology does not know (newer than its release?), with their annotation counts.
    pub unknown: BTreeMap<GoId, usize>,
    /// Obsolete ids dropped, with their annotation counts.
    pub obsolete_dropped: BTreeMap<GoId, usize>,
    /// Dropped obsolete ids that name a `replaced_by` term, with that term.
    pub replaced_by: BTreeMap<GoId, Vec<GoId>>,
    /// `alt_id`s mapped to their primary id.
    pub alt_ids_mapped: BTreeMap<GoId, GoId>,
    /// Proteins left with no term at all.
    pub proteins_without_terms: usize,
}

impl GoDag {
    /// Propagates each protein's GO ids up `is_a` and `part_of`: alt ids are mapped to their
    /// primary term, obsolete and unknown ids are dropped and reported.
    pub fn propagate<'a, I, A, S>(
        &self,
        proteins: I,
    ) -> (Vec<PropagatedAnnotation>, PropagationReport)
    where
        I: IntoIterator<Item = (A, S)>,
        A: Into<String>,
        S: IntoIterator<Item = &'a GoId>,
    {
        let mut report = PropagationReport::default();
        let mut propagated = Vec::new();
        for (accession, ids) in proteins {
            let mut terms = BTreeSet::new();
            for &id in ids {
                report.annotations += 1;
                let term = match self.resolve(id) {
                    Resolution::Term(term) => term,
                    Resolution::AltId(term) => {
                        report.alt_ids_mapped.insert(id, self.id(term));
                        term
                    }
                    Resolution::Obsolete { replaced_by, .. } => {
                        *report.obsolete_dropped.entry(id).or_default() += 1;
                        if !replaced_by.is_empty() {
                            report.replaced_by.insert(id, replaced_by.to_vec());
                        }
                        continue;
                    }
                    Resolution::Unknown => {
                        *report.unknown.entry(id).or_default() += 1;
                        continue;
                    }
                };
                terms.extend(self.ancestors(term).iter().copied());
            }
            if terms.is_empty() {
                report.proteins_without_terms += 1;
            }
            propagated.push(PropagatedAnnotation {
                accession: accession.into(),
                terms: terms.into_iter().collect(),
            });
        }
        (propagated, report)
    }
}

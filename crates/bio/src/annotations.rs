//! A protein annotation table keyed by UniProt accession: GO ids, Pfam and InterPro ids,
//! family text, organism and residue features, merged from any of the readers in this crate.

use std::collections::{btree_map, BTreeMap, BTreeSet};

use crate::features::ResidueFeature;
use crate::ids::GoId;

/// What is known about one protein. Sets are sorted so output is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProteinAnnotation {
    pub accession: String,
    /// UniProt entry name, e.g. `KIN28_YEAST`.
    pub entry_name: Option<String>,
    /// Recommended protein name.
    pub protein_name: Option<String>,
    pub organism: Option<String>,
    pub sequence: Option<String>,
    /// Direct (not propagated) GO annotations, as written in the source.
    pub go: BTreeSet<GoId>,
    /// Pfam family accessions (`PF00069`).
    pub pfam: BTreeSet<String>,
    /// InterPro entry accessions (`IPR000719`).
    pub interpro: BTreeSet<String>,
    /// UniProt "Protein families" text, one entry per family statement.
    pub families: Vec<String>,
    pub features: Vec<ResidueFeature>,
}

impl ProteinAnnotation {
    pub fn new(accession: impl Into<String>) -> Self {
        ProteinAnnotation {
            accession: accession.into(),
            ..Default::default()
        }
    }

    /// Adds everything `other` knows: sets are united, single values fill gaps (the value
    /// already here wins), families and features are appended without duplicates.
    pub fn merge(&mut self, other: ProteinAnnotation) {
        fill(&mut self.entry_name, other.entry_name);
        fill(&mut self.protein_name, other.protein_name);
        fill(&mut self.organism, other.organism);
        fill(&mut self.sequence, other.sequence);
        self.go.extend(other.go);
        self.pfam.extend(other.pfam);
        self.interpro.extend(other.interpro);
        for family in other.families {
            if !self.families.contains(&family) {
                self.families.push(family);
            }
        }
        for feature in other.features {
            if !self.features.contains(&feature) {
                self.features.push(feature);
            }
        }
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Protein annotations keyed by accession.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnotationTable {
    proteins: BTreeMap<String, ProteinAnnotation>,
}

impl AnnotationTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.proteins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.proteins.is_empty()
    }

    pub fn get(&self, accession: &str) -> Option<&ProteinAnnotation> {
        self.proteins.get(accession)
    }

    /// The entry for `accession`, created empty if absent.
    pub fn entry(&mut self, accession: &str) -> &mut ProteinAnnotation {
        self.proteins
            .entry(accession.to_string())
            .or_insert_with(|| ProteinAnnotation::new(accession))
    }

    /// Inserts `annotation`, merging it into an existing entry of the same accession.
    pub fn insert(&mut self, annotation: ProteinAnnotation) {
        match self.proteins.entry(annotation.accession.clone()) {
            btree_map::Entry::Occupied(mut existing) => existing.get_mut().merge(annotation),
            btree_map::Entry::Vacant(slot) => {
                slot.insert(annotation);
            }
        }
    }

    /// Merges every entry of `other` into this table.
    pub fn merge(&mut self, other: AnnotationTable) {
        for annotation in other.proteins.into_values() {
            self.insert(annotation);
        }
    }

    /// Entries in accession order.
    pub fn iter(&self) -> impl Iterator<Item = &ProteinAnnotation> {
        self.proteins.values()
    }

    /// `(accession, direct GO ids)` in accession order, the input of
    /// [`crate::go_dag::GoDag::propagate`].
    pub fn go_sets(&self) -> impl Iterator<Item = (&str, &BTreeSet<GoId>)> {
        self.proteins
            .values()
            .map(|protein| (protein.accession.as_str(), &protein.go))
    }
}

impl FromIterator<ProteinAnnotation> for AnnotationTable {
    fn from_iter<I: IntoIterator<Item = ProteinAnnotation>>(iter: I) -> Self {
        let mut table = AnnotationTable::new();
        for annotation in iter {
            table.insert(annotation);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_unites_sets_and_keeps_first_values() {
        let mut a = ProteinAnnotation::new("P1");
        a.organism = Some("yeast".into());
        a.go.insert(GoId(1));
        let mut b = ProteinAnnotation::new("P1");
        b.organism = Some("other".into());
        b.go.insert(GoId(2));
        b.pfam.insert("PF00001".into());
        let table: AnnotationTable = [a, b, ProteinAnnotation::new("P2")].into_iter().collect();
        assert_eq!(table.len(), 2);
        let p1 = table.get("P1").unwrap();
        assert_eq!(p1.organism.as_deref(), Some("yeast"));
        assert_eq!(
            p1.go.iter().copied().collect::<Vec<_>>(),
            vec![GoId(1), GoId(2)]
        );
        assert!(p1.pfam.contains("PF00001"));
    }
}

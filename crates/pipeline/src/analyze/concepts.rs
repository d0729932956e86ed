//! Residue concepts for InterPLM-style scores: labelled residues from UniProt feature columns
//! and residue label files, as segments over the analysed proteins, with the held-out split.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use plmscope_bio::{
    AnnotationTable, BindingResiduesReader, FeatureKind, ResidueClass, TmbedReader,
};
use plmscope_interpret::concepts::ConceptSegment;
use plmscope_interpret::pipeline::ConceptInput;
use plmscope_model::alphabet::MAX_RESIDUES;
use plmscope_store::split_by_protein;

use super::annotations::{detect_format, Annotations};
use super::parse::{LabelKind, LabelSource};
use super::units::Proteins;

/// Held-out fraction of proteins for concept scores: thresholds are chosen on the other half.
const CONCEPT_HOLDOUT: f64 = 0.5;

/// Concept segments over the analysed proteins, with what had to be left out.
pub(crate) struct ConceptBuilder<'a> {
    protein_of: HashMap<&'a str, u32>,
    lengths: &'a [u32],
    names: BTreeMap<String, u32>,
    segments: Vec<ConceptSegment>,
    /// Labelled residues beyond the embedded protein (other release, truncation).
    residues_outside: usize,
    /// Proteins whose labelled sequence has another length than the embedded one: their
    /// positions may not line up, so their labels are left out.
    length_mismatches: usize,
}

impl<'a> ConceptBuilder<'a> {
    pub fn new(proteins: &'a Proteins) -> Self {
        ConceptBuilder {
            protein_of: (0u32..)
                .zip(&proteins.accessions)
                .map(|(i, a)| (a.as_str(), i))
                .collect(),
            lengths: &proteins.lengths,
            names: BTreeMap::new(),
            segments: Vec::new(),
            residues_outside: 0,
            length_mismatches: 0,
        }
    }

    /// Adds 1-based residues of `concept` on protein `protein`, as maximal runs.
    fn add_residues(&mut self, concept: &str, protein: u32, residues: &[u32]) {
        let length = self.lengths[protein as usize];
        let mut inside: Vec<u32> = residues
            .iter()
            .filter(|&&r| r >= 1)
            .map(|&r| r - 1)
            .filter(|&r| r < length)
            .collect();
        self.residues_outside += residues.len() - inside.len();
        inside.sort_unstable();
        inside.dedup();
        let Some(&first) = inside.first() else {
            return;
        };
        let next_id = self.names.len() as u32;
        let id = *self.names.entry(concept.to_string()).or_insert(next_id);
        let mut start = first;
        for pair in inside.windows(2) {
            if pair[1] != pair[0] + 1 {
                self.push(id, protein, start, pair[0] + 1);
                start = pair[1];
            }
        }
        let end = inside.last().map_or(start, |&r| r + 1);
        self.push(id, protein, start, end);
    }

    /// The protein index of `accession` when its labels can be used: the label file's sequence
    /// (if it gives one) has the embedded length, or is longer and the protein was truncated to
    /// ESM2's context (positions inside it still line up).
    fn protein(&mut self, accession: &str, labelled_length: Option<usize>) -> Option<u32> {
        let p = *self.protein_of.get(accession)?;
        let embedded = self.lengths[p as usize] as usize;
        match labelled_length {
            Some(n) if n != embedded && !(embedded == MAX_RESIDUES && n > embedded) => {
                self.length_mismatches += 1;
                None
            }
            _ => Some(p),
        }
    }

    fn push(&mut self, concept: u32, protein: u32, start: u32, end: u32) {
        self.segments.push(ConceptSegment {
            concept,
            protein,
            start,
            end,
        });
    }

    /// UniProt residue features, one concept per feature type (`uniprot:BINDING` ...); the
    /// `Chain` feature covers the whole protein and says nothing about residues.
    pub fn add_table(&mut self, table: &AnnotationTable) {
        for protein in table.iter() {
            if protein.features.is_empty() {
                continue;
            }
            let length = protein.sequence.as_ref().map(String::len);
            let Some(p) = self.protein(&protein.accession, length) else {
                continue;
            };
            for feature in protein.features.iter() {
                if feature.kind != FeatureKind::Chain {
                    let name = format!("uniprot:{}", feature.kind.key());
                    self.add_residues(&name, p, &feature.residues());
                }
            }
        }
    }

    fn add_source(&mut self, source: &LabelSource) -> Result<()> {
        let path = &source.path;
        match &source.kind {
            LabelKind::Tmbed => {
                for record in TmbedReader::open(path)? {
                    let record = record?;
                    let accession = record.accession().unwrap_or(&record.id).to_string();
                    let Some(p) = self.protein(&accession, Some(record.sequence.len())) else {
                        continue;
                    };
                    for (class, name) in [
                        (ResidueClass::TmHelix, "tmbed:tm_helix"),
                        (ResidueClass::TmStrand, "tmbed:tm_strand"),
                        (ResidueClass::SignalPeptide, "tmbed:signal_peptide"),
                    ] {
                        self.add_residues(name, p, &record.positions(class));
                    }
                }
            }
            LabelKind::Binding(class) => {
                let name = format!("binding:{}", class.name());
                for row in BindingResiduesReader::open(path)? {
                    let row = row?;
                    if let Some(p) = self.protein(&row.accession, None) {
                        self.add_residues(&name, p, &row.positions);
                    }
                }
            }
            LabelKind::UniProt => {
                let mut annotations = Annotations::default();
                annotations.read(path, detect_format(path)?)?;
                self.add_table(&annotations.table);
            }
        }
        Ok(())
    }
}

/// Residue concepts from UniProt feature columns of the annotations and from the residue label
/// files; `None` when there is nothing to score. What had to be left out goes to `warnings`.
pub(crate) fn concept_input(
    proteins: &Proteins,
    table: &AnnotationTable,
    labels: &[LabelSource],
    residue_level: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<ConceptInput>> {
    if !residue_level {
        if !labels.is_empty() {
            warnings.push("--residue-labels ignored: no residue-level units to score".into());
        }
        return Ok(None);
    }
    let mut builder = ConceptBuilder::new(proteins);
    builder.add_table(table);
    for source in labels {
        builder.add_source(source)?;
    }
    if builder.residues_outside > 0 {
        warnings.push(format!(
            "{} labelled residues lie beyond the embedded proteins and were left out",
            builder.residues_outside
        ));
    }
    if builder.length_mismatches > 0 {
        warnings.push(format!(
            "{} labelled proteins have another length than the embedded sequence (another \
             release?); their labels were left out",
            builder.length_mismatches
        ));
    }
    if builder.segments.is_empty() {
        if !labels.is_empty() {
            warnings.push("no residue label matches an analysed protein; no concept scores".into());
        }
        return Ok(None);
    }
    let mut names = vec![String::new(); builder.names.len()];
    for (name, id) in builder.names {
        names[id as usize] = name;
    }
    let (train, _) = split_by_protein(proteins.len(), CONCEPT_HOLDOUT, 0);
    let mut is_training = vec![false; proteins.len()];
    for p in train {
        is_training[p] = true;
    }
    Ok(Some(ConceptInput {
        protein_lengths: proteins.lengths.clone(),
        names,
        segments: builder.segments,
        is_training,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::annotations::AnnotationFormat;
    use std::collections::BTreeSet;
    use std::path::Path;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

    fn proteins(lengths: &[u32]) -> Proteins {
        Proteins {
            ids: (0..lengths.len()).map(|i| format!("id{i}")).collect(),
            accessions: (0..lengths.len()).map(|i| format!("P{i}")).collect(),
            lengths: lengths.to_vec(),
        }
    }

    #[test]
    fn labelled_residues_become_maximal_zero_based_runs() {
        let proteins = proteins(&[10, 1022]);
        let mut builder = ConceptBuilder::new(&proteins);
        // 1-based 2,3,4 and 7 → [1, 4) and [6, 7); 11 and 0 lie outside a 10-residue protein.
        builder.add_residues("c", 0, &[4, 2, 3, 7, 7, 11, 0]);
        let runs: Vec<(u32, u32)> = builder.segments.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(runs, [(1, 4), (6, 7)]);
        assert_eq!(builder.residues_outside, 2);
        // Labels of another length do not line up, unless the protein was truncated to 1022.
        assert_eq!(builder.protein("P0", Some(10)), Some(0));
        assert_eq!(builder.protein("P0", Some(12)), None);
        assert_eq!(builder.protein("P1", Some(1500)), Some(1));
        assert_eq!(builder.protein("P1", Some(900)), None);
        assert_eq!(builder.protein("Q9", None), None);
        assert_eq!(builder.length_mismatches, 2);
    }

    #[test]
    fn uniprot_feature_columns_become_concepts() {
        let tsv = format!("{DATA}/uniprot_tsv_example/sample_uniprot.tsv");
        let mut annotations = Annotations::default();
        annotations
            .read(Path::new(&tsv), AnnotationFormat::UniProtTsv)
            .unwrap();
        let first = annotations.table.iter().next().unwrap();
        let length = first.sequence.as_ref().unwrap().len() as u32;
        let mut proteins = proteins(&[length]);
        proteins.accessions[0] = first.accession.clone();
        let mut builder = ConceptBuilder::new(&proteins);
        builder.add_table(&annotations.table);
        let mut expected: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for feature in first
            .features
            .iter()
            .filter(|f| f.kind != FeatureKind::Chain)
        {
            expected
                .entry(format!("uniprot:{}", feature.kind.key()))
                .or_default()
                .extend(feature.residues().iter().map(|r| r - 1));
        }
        assert!(!expected.is_empty());
        let mut found: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for (name, &id) in &builder.names {
            for s in builder.segments.iter().filter(|s| s.concept == id) {
                found
                    .entry(name.clone())
                    .or_default()
                    .extend(s.start..s.end);
            }
        }
        assert_eq!(found, expected);
    }
}

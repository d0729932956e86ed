//! Every sequence-level file in shared/data parses with the counts its README states.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::data;
use plmscope_bio::{
    uniprot_accession, BindingResiduesReader, FastaReader, FastaRecord, ResidueClass, TmbedReader,
    TmbedRecord,
};

fn fasta(relative: &str) -> Vec<FastaRecord> {
    FastaReader::open(data(relative))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn tmbed(relative: &str) -> Vec<TmbedRecord> {
    TmbedReader::open(data(relative))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn yeast_fasta_counts_and_lengths() {
    let records = fasta("yeast_s288c/UP000002311_559292.fasta");
    assert_eq!(records.len(), 6060);
    assert!(records.iter().all(|r| r.header.starts_with("sp|")));
    let mut lengths: Vec<usize> = records.iter().map(|r| r.sequence.len()).collect();
    lengths.sort_unstable();
    assert_eq!((lengths[0], lengths[lengths.len() - 1]), (16, 4910));
    assert_eq!(lengths[lengths.len() / 2], 395);
    assert_eq!(lengths.iter().filter(|&&l| l > 1022).count(), 500);
    // The id is the accession, and the accession helper agrees with it.
    assert_eq!(records[0].id, "D6VPM8");
    assert!(records
        .iter()
        .all(|r| uniprot_accession(&r.header) == Some(r.id.as_str())));
    assert_eq!(records[1].line, 5);
}

#[test]
fn ecoli_fastas_counts_and_nonstandard_residues() {
    let new = fasta("ecoli_k12/UP000000625_83333_tpp_solver.fasta");
    assert_eq!(new.len(), 4401);
    let count = |c: char| {
        new.iter()
            .map(|r| r.sequence.matches(c).count())
            .sum::<usize>()
    };
    assert_eq!((count('X'), count('U')), (8, 3));
    assert_eq!(new.iter().filter(|r| r.sequence.len() > 1022).count(), 54);

    let old = fasta("ecoli_k12/UP000000625_83333.fasta");
    assert_eq!(old.len(), 4391);
    assert_eq!(
        old.iter().filter(|r| r.header.starts_with("sp|")).count(),
        4389
    );
    let new_ids: BTreeSet<&str> = new.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        old.iter()
            .filter(|r| new_ids.contains(r.id.as_str()))
            .count(),
        4388
    );
}

#[test]
fn tmbed_files_counts_labels_and_signal_peptides() {
    let alpha = tmbed("tmbed/alpha.fasta");
    let beta = tmbed("tmbed/beta.fasta");
    assert_eq!((alpha.len(), beta.len()), (593, 65));
    assert!(alpha
        .iter()
        .all(|r| !r.positions(ResidueClass::TmHelix).is_empty()));
    assert!(beta
        .iter()
        .all(|r| !r.positions(ResidueClass::TmStrand).is_empty()));

    let expected = [1307, 1304, 1304, 1302, 1300];
    let mut cv = Vec::new();
    for (fold, count) in expected.iter().enumerate() {
        let records = tmbed(&format!("tmbed/cv_0{fold}_a.fasta"));
        assert_eq!(records.len(), *count, "fold {fold}");
        cv.extend(records);
    }
    assert_eq!(cv.len(), 6517);
    // Membrane proteins are the records of alpha.fasta and beta.fasta, identical.
    let membrane: HashMap<&str, &TmbedRecord> = alpha
        .iter()
        .chain(&beta)
        .map(|r| (r.id.as_str(), r))
        .collect();
    let cv_membrane: Vec<&TmbedRecord> = cv
        .iter()
        .filter(|r| membrane.contains_key(r.id.as_str()))
        .collect();
    assert_eq!(cv_membrane.len(), 658);
    for record in cv_membrane {
        let original = membrane[record.id.as_str()];
        assert_eq!(
            (&record.sequence, &record.labels),
            (&original.sequence, &original.labels)
        );
    }
    let globular: Vec<&TmbedRecord> = cv
        .iter()
        .filter(|r| !membrane.contains_key(r.id.as_str()))
        .collect();
    assert_eq!(globular.len(), 5859);
    let sec_signal: Vec<&&TmbedRecord> = globular
        .iter()
        .filter(|r| r.header.split('|').nth(2) == Some("SP"))
        .collect();
    assert_eq!(sec_signal.len(), 632);
    // SignalP's Sec signal peptides start at residue 1 and are labelled S.
    assert!(sec_signal
        .iter()
        .all(|r| r.positions(ResidueClass::SignalPeptide).first() == Some(&1)));
    assert!(cv.iter().all(|r| r.accession().is_some()));
}

fn binding(relative: &str) -> Vec<plmscope_bio::BindingResidues> {
    BindingResiduesReader::open(data(relative))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn bindembed_binding_residues_lie_inside_sequences() {
    let development = fasta("bindembed21/development_set/all.fasta");
    assert_eq!(development.len(), 1314);
    let lengths: BTreeMap<&str, usize> = development
        .iter()
        .map(|r| (r.id.as_str(), r.sequence.len()))
        .collect();
    for (class, lines, with_sequence) in [
        ("metal", 6836, 579),
        ("nuclear", 934, 174),
        ("small", 11283, 826),
    ] {
        let rows = binding(&format!(
            "bindembed21/development_set/binding_residues_2.5_{class}.txt"
        ));
        assert_eq!(rows.len(), lines, "{class}");
        let present: Vec<_> = rows
            .iter()
            .filter(|r| lengths.contains_key(r.accession.as_str()))
            .collect();
        assert_eq!(present.len(), with_sequence, "{class}");
        for row in present {
            let length = lengths[row.accession.as_str()] as u32;
            assert!(
                row.positions.iter().all(|&p| p <= length),
                "{class} {}",
                row.accession
            );
            assert_eq!(row.features(class).len(), row.positions.len());
        }
    }
    let independent = fasta("bindembed21/independent_set/indep_set.fasta");
    assert_eq!(independent.len(), 46);
    for (class, lines) in [("metal", 681), ("nuclear", 117), ("small", 1307)] {
        assert_eq!(
            binding(&format!(
                "bindembed21/independent_set/binding_residues_{class}.txt"
            ))
            .len(),
            lines
        );
    }
}

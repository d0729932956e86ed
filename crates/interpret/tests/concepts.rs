//! Concept precision/recall/F1: a hand-computed case and a planted residue concept.

use plmscope_interpret::concepts::{
    evaluate_concepts, ConceptLabels, ConceptOptions, ConceptSegment, SelectBy, UnitActivations,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn segment(concept: u32, protein: u32, start: u32, end: u32) -> ConceptSegment {
    ConceptSegment {
        concept,
        protein,
        start,
        end,
    }
}

#[test]
fn hand_computed_scores_on_the_held_out_split() {
    // Four proteins of 10 residues; rows of protein p are 10p..10p+10. Proteins 0, 1 train.
    let segments = vec![
        segment(0, 0, 2, 5),
        segment(0, 1, 0, 3),
        segment(0, 2, 4, 8),
        segment(0, 3, 1, 2),
        segment(0, 3, 6, 9),
    ];
    let labels = ConceptLabels::new(&[10; 4], 1, segments).unwrap();
    let mut rows = vec![2, 3, 4, 8, 10, 11, 12, 24, 25, 29, 31, 37];
    let mut values = vec![1.0, 1.0, 1.0, 0.3, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 1.0, 0.3];
    let unit = UnitActivations {
        unit: 9,
        rows: std::mem::take(&mut rows),
        values: std::mem::take(&mut values),
    };
    for select_by in [SelectBy::F1, SelectBy::DomainF1] {
        let options = ConceptOptions {
            select_by,
            ..ConceptOptions::default()
        };
        let scores = evaluate_concepts(
            &labels,
            &[true, true, false, false],
            std::slice::from_ref(&unit),
            &options,
        )
        .unwrap();
        assert_eq!(scores.len(), 1);
        let s = scores[0];
        // Training: F1 = 12/13 at t = 0 and 0.15 (the 0.3 noise residue passes), 1 from t = 0.5.
        assert_eq!((s.unit, s.concept, s.threshold), (9, 0, 0.5));
        assert!((s.train_score - 1.0).abs() < 1e-12);
        // Held out at 0.5: rows 24, 25, 31 predicted, all labelled; 8 labelled residues;
        // 2 of 3 segments hit (the one at rows 36..39 only reaches 0.3).
        assert!((s.precision - 1.0).abs() < 1e-12);
        assert!((s.recall - 3.0 / 8.0).abs() < 1e-12);
        assert!((s.f1 - 0.75 / 1.375).abs() < 1e-12);
        assert!((s.domain_recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.domain_f1 - 0.8).abs() < 1e-12);
    }
}

#[test]
fn rejects_inconsistent_inputs() {
    assert!(ConceptLabels::new(&[5], 1, vec![segment(0, 0, 3, 6)]).is_err());
    assert!(ConceptLabels::new(&[5], 1, vec![segment(1, 0, 1, 2)]).is_err());
    assert!(ConceptLabels::new(&[5], 1, vec![segment(0, 1, 1, 2)]).is_err());
    let labels = ConceptLabels::new(&[5], 1, vec![segment(0, 0, 1, 2)]).unwrap();
    let unit = UnitActivations {
        unit: 0,
        rows: vec![7],
        values: vec![1.0],
    };
    assert!(evaluate_concepts(&labels, &[true], &[unit], &ConceptOptions::default()).is_err());
    assert!(evaluate_concepts(&labels, &[true, false], &[], &ConceptOptions::default()).is_err());
}

#[test]
fn planted_residue_concept_is_recovered_on_held_out_proteins() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let lengths: Vec<u32> = (0..400).map(|_| rng.random_range(80..400)).collect();
    let mut segments = Vec::new();
    for (protein, &length) in lengths.iter().enumerate() {
        for concept in 0..2u32 {
            if rng.random_bool(0.3) {
                let start = rng.random_range(0..length - 30);
                segments.push(segment(
                    concept,
                    protein as u32,
                    start,
                    start + rng.random_range(5..30),
                ));
            }
        }
    }
    let labels = ConceptLabels::new(&lengths, 2, segments.clone()).unwrap();
    let is_training: Vec<bool> = (0..lengths.len()).map(|p| p % 2 == 0).collect();
    // The unit fires at 0.7..1.0 on concept 0 and at 0..0.4 on 3% of all residues.
    let mut activation = vec![0.0f32; labels.n_rows() as usize];
    let mut start = 0u32;
    let mut starts = Vec::new();
    for &length in &lengths {
        starts.push(start);
        start += length;
    }
    for row in activation.iter_mut() {
        if rng.random_bool(0.03) {
            *row = rng.random_range(0.01..0.4);
        }
    }
    for s in segments.iter().filter(|s| s.concept == 0) {
        for r in starts[s.protein as usize] + s.start..starts[s.protein as usize] + s.end {
            activation[r as usize] = rng.random_range(0.7..1.0);
        }
    }
    let rows: Vec<u32> = (0..activation.len() as u32)
        .filter(|&r| activation[r as usize] > 0.0)
        .collect();
    let values = rows.iter().map(|&r| activation[r as usize]).collect();
    let unit = UnitActivations {
        unit: 0,
        rows,
        values,
    };
    let scores =
        evaluate_concepts(&labels, &is_training, &[unit], &ConceptOptions::default()).unwrap();
    let planted = scores.iter().find(|s| s.concept == 0).unwrap();
    assert_eq!(
        planted.threshold, 0.5,
        "0.4 × max is the noise ceiling; 0.5 separates"
    );
    assert!(planted.f1 > 0.99 && planted.domain_f1 > 0.99, "{planted:?}");
    let unrelated = scores.iter().find(|s| s.concept == 1).map_or(0.0, |s| s.f1);
    assert!(unrelated < 0.2, "unrelated concept F1 {unrelated}");
}

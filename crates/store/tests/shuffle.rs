//! The training stream: deterministic, exact once per epoch, resumable; the protein split.

mod common;

use std::path::Path;

use plmscope_store::{
    split_by_protein, ActivationSet, ActivationSetWriter, Batch, Level, ShuffleConfig,
    ShuffleState, ShuffledRows, Site, StorageDtype,
};

/// A residue set whose row r holds `[r, protein, position] * scale` (exact in f32), so every
/// batch can be checked against its row ids.
fn labelled_set(dir: &Path, d: usize, scale: f32) -> ActivationSet {
    let total = 40;
    let all = common::proteins(total);
    let mut h = common::header(Level::Residue, StorageDtype::F32, d, 7, total);
    // Source and target of a transcoder pair differ in site (and width).
    h.site = if d == 3 { Site::MlpIn } else { Site::MlpOut };
    let mut writer = ActivationSetWriter::create_or_resume(dir, h.clone()).unwrap();
    let mut row = 0usize;
    for shard in 0..writer.shard_count() {
        let range = h.shard_proteins(shard);
        let mut acts = Vec::new();
        for p in range.clone() {
            for pos in 0..all[p].length {
                let label = [row as f32, p as f32, pos as f32];
                acts.extend((0..d).map(|k| label[k % 3] * scale));
                row += 1;
            }
        }
        writer.write_shard(shard, &all[range], &acts).unwrap();
    }
    writer.finish(serde_json::Value::Null).unwrap();
    ActivationSet::open(dir).unwrap()
}

fn config(seed: u64) -> ShuffleConfig {
    ShuffleConfig {
        batch_size: 16,
        buffer_rows: 100, // rounded up to 112: windows do not fall on protein boundaries
        seed,
    }
}

fn take(stream: &mut ShuffledRows, n: usize) -> Vec<Batch> {
    (0..n).map(|_| stream.next_batch().unwrap()).collect()
}

#[test]
fn each_epoch_covers_the_subset_once_with_matching_data() {
    let tmp = tempfile::tempdir().unwrap();
    let set = labelled_set(&tmp.path().join("a"), 3, 1.0);
    let (train, validation) = split_by_protein(set.proteins().len(), 0.25, 9);
    let mut stream = ShuffledRows::new(vec![&set], train.clone(), config(1)).unwrap();
    let mut expected: Vec<usize> = train.iter().flat_map(|&p| set.protein_rows(p)).collect();
    expected.sort_unstable();
    assert_eq!(stream.rows_per_epoch(), expected.len());

    let mut epochs = Vec::new();
    for epoch in 0..2u64 {
        let mut seen = Vec::new();
        loop {
            let batch = stream.next_batch().unwrap();
            assert_eq!(batch.epoch, epoch);
            for (i, &row) in batch.row_ids.iter().enumerate() {
                let data = &batch.data[0][i * 3..i * 3 + 3];
                assert_eq!(data[0] as usize, row);
                assert_eq!(data[1] as usize, set.row_protein(row));
                assert_eq!(Some(data[2] as usize), set.row_position(row));
                assert!(
                    !validation.contains(&set.row_protein(row)),
                    "validation row {row} in training"
                );
            }
            seen.extend_from_slice(&batch.row_ids);
            if batch.last_in_epoch {
                assert!(batch.rows() <= 16);
                break;
            }
            assert_eq!(batch.rows(), 16);
        }
        let order = seen.clone();
        seen.sort_unstable();
        assert_eq!(
            seen, expected,
            "epoch {epoch} is not a permutation of the subset rows"
        );
        epochs.push(order);
    }
    assert_ne!(epochs[0], epochs[1], "epochs must be shuffled differently");
    // Rows are mixed: the first batch is not a run of consecutive rows of one protein.
    let first: Vec<usize> = epochs[0][..16].to_vec();
    let proteins: std::collections::BTreeSet<usize> =
        first.iter().map(|&r| set.row_protein(r)).collect();
    assert!(proteins.len() > 3, "batch drew from only {proteins:?}");
}

#[test]
fn same_seed_same_batches_other_seed_other_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let set = labelled_set(&tmp.path().join("a"), 3, 1.0);
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    let a = take(
        &mut ShuffledRows::new(vec![&set], all.clone(), config(5)).unwrap(),
        30,
    );
    let b = take(
        &mut ShuffledRows::new(vec![&set], all.clone(), config(5)).unwrap(),
        30,
    );
    let c = take(
        &mut ShuffledRows::new(vec![&set], all, config(6)).unwrap(),
        30,
    );
    assert_eq!(a, b);
    assert_ne!(a[0].row_ids, c[0].row_ids);
}

#[test]
fn resume_reproduces_the_rest_of_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let set = labelled_set(&tmp.path().join("a"), 3, 1.0);
    let (train, _) = split_by_protein(set.proteins().len(), 0.2, 3);
    let mut reference = ShuffledRows::new(vec![&set], train.clone(), config(11)).unwrap();
    let per_epoch = reference.batches_per_epoch();
    let total = per_epoch * 2 + 5;
    let mut states: Vec<ShuffleState> = Vec::new();
    let mut batches = Vec::new();
    for _ in 0..total {
        states.push(reference.state());
        batches.push(reference.next_batch().unwrap());
    }
    // Mid-window, at a window start, at the last batch of an epoch, at an epoch start.
    for k in [3, 7, per_epoch - 1, per_epoch, per_epoch + 9] {
        let saved = serde_json::to_string(&states[k]).unwrap();
        let state: ShuffleState = serde_json::from_str(&saved).unwrap();
        let mut resumed = ShuffledRows::new(vec![&set], train.clone(), config(11)).unwrap();
        resumed.resume(&state).unwrap();
        let rest = take(&mut resumed, total - k);
        assert_eq!(rest, batches[k..], "resume at batch {k}");
    }
    // A state from another seed or subset is refused.
    let mut other = ShuffledRows::new(vec![&set], train[1..].to_vec(), config(11)).unwrap();
    assert!(other.resume(&states[3]).is_err());
    let mut other = ShuffledRows::new(vec![&set], train, config(12)).unwrap();
    assert!(other.resume(&states[3]).is_err());
}

#[test]
fn aligned_sets_give_matching_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let source = labelled_set(&tmp.path().join("source"), 3, 1.0);
    let target = labelled_set(&tmp.path().join("target"), 4, 2.0);
    let all: Vec<usize> = (0..source.proteins().len()).collect();
    let mut stream = ShuffledRows::new(vec![&source, &target], all, config(2)).unwrap();
    for batch in take(&mut stream, 12) {
        assert_eq!(batch.data.len(), 2);
        assert_eq!(batch.data[1].len(), batch.rows() * 4);
        for (i, &row) in batch.row_ids.iter().enumerate() {
            assert_eq!(batch.data[0][i * 3] as usize, row);
            assert_eq!(batch.data[1][i * 4] as usize, row * 2);
            assert_eq!(batch.data[1][i * 4 + 3] as usize, row * 2);
        }
    }
}

#[test]
fn bad_subsets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let set = labelled_set(&tmp.path().join("a"), 3, 1.0);
    assert!(ShuffledRows::new(vec![&set], vec![1, 2, 1], config(0)).is_err());
    assert!(ShuffledRows::new(vec![&set], vec![40], config(0)).is_err());
    assert!(ShuffledRows::new(vec![&set], vec![], config(0)).is_err());
}

#[test]
fn split_is_by_protein_deterministic_and_disjoint() {
    let (train, validation) = split_by_protein(1000, 0.1, 42);
    assert_eq!(validation.len(), 100);
    assert_eq!(train.len(), 900);
    assert!(train.windows(2).all(|w| w[0] < w[1]));
    assert!(validation.iter().all(|v| train.binary_search(v).is_err()));
    let mut union: Vec<usize> = train.iter().chain(&validation).copied().collect();
    union.sort_unstable();
    assert_eq!(union, (0..1000).collect::<Vec<_>>());
    assert_eq!(split_by_protein(1000, 0.1, 42), (train, validation.clone()));
    assert_ne!(split_by_protein(1000, 0.1, 43).1, validation);
    // Not simply the first or last proteins.
    assert!(validation[0] < 100 && *validation.last().unwrap() > 900);
    assert_eq!(split_by_protein(10, 0.01, 1).1.len(), 1);
    assert_eq!(split_by_protein(10, 0.0, 1).1.len(), 0);
    assert_eq!(split_by_protein(10, f64::NAN, 1).1.len(), 0);

    // On a residue set no protein's rows fall on both sides.
    let tmp = tempfile::tempdir().unwrap();
    let set = labelled_set(&tmp.path().join("a"), 3, 1.0);
    let (train, validation) = split_by_protein(set.proteins().len(), 0.3, 7);
    let train_rows: std::collections::BTreeSet<usize> =
        train.iter().flat_map(|&p| set.protein_rows(p)).collect();
    for &p in &validation {
        for row in set.protein_rows(p) {
            assert!(!train_rows.contains(&row));
        }
    }
    assert_eq!(
        train_rows.len()
            + validation
                .iter()
                .map(|&p| set.protein_rows(p).len())
                .sum::<usize>(),
        set.rows()
    );
}

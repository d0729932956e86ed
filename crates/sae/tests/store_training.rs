//! Training from activation sets on disk: the store-backed batch source, the checkpoint group's
//! crash windows, streaming evaluation and encoding into a code set.

mod common;

use std::path::Path;

use common::planted_data;
use plmscope_sae::checkpoint_group::{CheckpointGroup, RUN_FILE};
use plmscope_sae::code_sets::encode_set;
use plmscope_sae::metrics::{evaluate, EvaluationAccumulator};
use plmscope_sae::store_source::{check_finite, evaluate_set, StoreBatches};
use plmscope_sae::trainer::{train_many, BatchSource, TrainConfig, Trainer};
use plmscope_sae::SaeError;
use plmscope_store::{
    ActivationSet, ActivationSetWriter, CodeSet, DictionaryRef, Level, ModelRef, ProteinEntry,
    SetHeader, ShuffleConfig, Site, StorageDtype,
};

const D: usize = 12;

/// Writes a residue-level set of `lengths.len()` proteins (ids P0, P1...) holding `rows`.
fn write_set(dir: &Path, site: Site, d: usize, lengths: &[usize], rows: &[f32]) -> ActivationSet {
    let header = SetHeader {
        model: ModelRef {
            id: "synthetic".into(),
            arch: "none".into(),
            weights_sha256: "00".into(),
        },
        layer: 3,
        site,
        level: Level::Residue,
        d_model: d,
        dtype: StorageDtype::F32,
        proteins_per_shard: 4,
        total_proteins: lengths.len(),
        extra: serde_json::json!({}),
    };
    let mut writer = ActivationSetWriter::create_or_resume(dir, header).unwrap();
    let mut row = 0;
    for (shard, chunk) in lengths.chunks(4).enumerate() {
        let first = shard * 4;
        let entries: Vec<ProteinEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, &length)| ProteinEntry {
                id: format!("P{}", first + i),
                length,
            })
            .collect();
        let n: usize = chunk.iter().sum();
        writer
            .write_shard(shard, &entries, &rows[row * d..(row + n) * d])
            .unwrap();
        row += n;
    }
    writer.finish(serde_json::json!({})).unwrap();
    ActivationSet::open(dir).unwrap()
}

fn lengths() -> Vec<usize> {
    (0..18).map(|i| 40 + (i * 7) % 23).collect()
}

fn planted_set(dir: &Path) -> (ActivationSet, Vec<f32>) {
    let n: usize = lengths().iter().sum();
    let (x, _) = planted_data(n, D, 30, 3, 0.02, 5);
    (write_set(dir, Site::ResidPost, D, &lengths(), &x), x)
}

fn shuffle(batch_size: usize) -> ShuffleConfig {
    ShuffleConfig {
        batch_size,
        buffer_rows: 300,
        seed: 11,
    }
}

fn config(k: usize) -> TrainConfig {
    let mut c = TrainConfig::topk(D, 48, k);
    c.schedule.lr = 3e-3;
    c.dead_window_rows = 400;
    c.seed = 2;
    c
}

#[test]
fn batches_are_full_and_cover_the_subset_once_per_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, x) = planted_set(tmp.path());
    let proteins: Vec<usize> = (0..set.proteins().len()).step_by(2).collect();
    let subset_rows: usize = proteins.iter().map(|&p| set.proteins()[p].rows).sum();
    let mut src = StoreBatches::new(&set, None, proteins.clone(), shuffle(64))
        .unwrap()
        .with_max_epochs(1);
    assert_eq!(src.steps_per_epoch(), (subset_rows / 64) as u64);
    let (mut bx, mut seen) = (Vec::new(), Vec::new());
    while src.next_batch(&mut bx, None).unwrap() {
        assert_eq!(bx.len(), 64 * D, "every batch is full");
        // Recover each row's identity by matching it against the set's rows.
        for row in bx.chunks(D) {
            let at = x.chunks(D).position(|r| r == row).unwrap();
            seen.push(at);
        }
    }
    assert_eq!(seen.len() as u64, src.steps_per_epoch() * 64);
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row came twice in one epoch");
    let allowed: Vec<usize> = proteins.iter().flat_map(|&p| set.protein_rows(p)).collect();
    assert!(
        seen.iter().all(|r| allowed.contains(r)),
        "row outside the subset"
    );
}

#[test]
fn a_subset_smaller_than_a_batch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, _) = planted_set(tmp.path());
    let err = StoreBatches::new(&set, None, vec![0], shuffle(4096))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("fewer than one batch of 4096"), "{err}");
}

#[test]
fn misaligned_transcoder_target_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, x) = planted_set(&tmp.path().join("src"));
    let mut other = lengths();
    // Same rows in total, but protein P5 is one residue longer and P6 one shorter.
    other[5] += 1;
    other[6] -= 1;
    let target = write_set(&tmp.path().join("tgt"), Site::MlpOut, D, &other, &x);
    let err = StoreBatches::new(&set, Some(&target), vec![0, 1, 2], shuffle(16))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("do not line up row by row"), "{err}");
    assert!(err.contains("P5"), "{err}");
}

#[test]
fn non_finite_rows_are_named_by_protein_and_residue() {
    let tmp = tempfile::tempdir().unwrap();
    let n: usize = lengths().iter().sum();
    let (mut x, _) = planted_data(n, D, 30, 3, 0.02, 5);
    // Protein P2, residue 7 (1-based), column 4.
    let row = lengths()[0] + lengths()[1] + 6;
    x[row * D + 4] = f32::NAN;
    let set = write_set(tmp.path(), Site::ResidPost, D, &lengths(), &x);
    let err = check_finite(&set).unwrap_err();
    assert!(
        matches!(err, SaeError::NonFinite { column: 4, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("protein P2") && text.contains("residue 7"),
        "{text}"
    );
    // The batch source refuses it too, whichever batch carries the row.
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    let mut src = StoreBatches::new(&set, None, all, shuffle(32)).unwrap();
    let mut bx = Vec::new();
    let err = (0..100)
        .find_map(|_| src.next_batch(&mut bx, None).err())
        .expect("the NaN row is served within an epoch");
    assert!(err.to_string().contains("protein P2"), "{err}");
}

/// Trains `steps` steps of two dictionaries (k = 3, 6) from a fresh start.
fn straight(set: &ActivationSet, steps: u64) -> Vec<Trainer> {
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    let mut src = StoreBatches::new(set, None, all, shuffle(64)).unwrap();
    let mut trainers = vec![
        Trainer::new(config(3)).unwrap(),
        Trainer::new(config(6)).unwrap(),
    ];
    train_many(&mut trainers, &mut src, steps, |_, _, _| {}).unwrap();
    trainers
}

#[test]
fn checkpoint_group_resumes_exactly_from_every_crash_window() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, _) = planted_set(&tmp.path().join("set"));
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    let reference = straight(&set, 30);
    let settings = serde_json::json!({"lr": 3e-3f32, "k": [3, 6]});
    let names = vec!["k3".to_string(), "k6".to_string()];

    // Crash window A: part of phase 1 at step 20 done, nothing committed past step 10.
    // Crash window B: step 20 committed, states still staged (phase 3 not done).
    for window in ["staged-uncommitted", "committed-unpromoted"] {
        let out = tmp.path().join(window);
        let mut group = CheckpointGroup::create(&out, names.clone(), settings.clone()).unwrap();
        let mut src = StoreBatches::new(&set, None, all.clone(), shuffle(64)).unwrap();
        let mut trainers = vec![
            Trainer::new(config(3)).unwrap(),
            Trainer::new(config(6)).unwrap(),
        ];
        train_many(&mut trainers, &mut src, 10, |_, _, _| {}).unwrap();
        let dicts: Vec<_> = trainers.iter().map(Trainer::to_dictionary).collect();
        group.checkpoint(&trainers, &dicts, src.position()).unwrap();
        train_many(&mut trainers, &mut src, 10, |_, _, _| {}).unwrap();
        let staged = |i: usize| out.join(&names[i]).join("train_state.next");
        match window {
            "staged-uncommitted" => {
                trainers[0].save_state(&staged(0), src.position()).unwrap();
            }
            _ => {
                for (i, t) in trainers.iter().enumerate() {
                    t.save_state(&staged(i), src.position()).unwrap();
                }
                let path = out.join(RUN_FILE);
                let mut record: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                record["committed_step"] = serde_json::json!(20);
                std::fs::write(&path, record.to_string()).unwrap();
            }
        }
        drop((group, trainers, src)); // the "kill"

        let resumed = CheckpointGroup::resume(&out, &settings).unwrap();
        let (mut trainers, position) = resumed.state.expect("a committed checkpoint");
        let expected_step = if window == "staged-uncommitted" {
            10
        } else {
            20
        };
        assert!(
            trainers.iter().all(|t| t.steps_done() == expected_step),
            "{window}"
        );
        assert!(
            !staged(0).exists() && !staged(1).exists(),
            "{window}: staging left"
        );
        let mut src = StoreBatches::new(&set, None, all.clone(), shuffle(64)).unwrap();
        src.seek(&position).unwrap();
        train_many(&mut trainers, &mut src, 30 - expected_step, |_, _, _| {}).unwrap();
        for (a, b) in trainers.iter().zip(&reference) {
            assert!(
                a.params() == b.params(),
                "{window}: weights differ from the straight run"
            );
        }
    }
    let err = CheckpointGroup::resume(
        &tmp.path().join("staged-uncommitted"),
        &serde_json::json!({"lr": 1e-3f32, "k": [3, 6]}),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("lr was"), "{err}");
}

#[test]
fn streaming_evaluation_equals_one_shot_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, x) = planted_set(tmp.path());
    let mut trainers = straight(&set, 40);
    let dict = trainers.remove(1).to_dictionary();
    let whole = evaluate(&dict, &x, None).unwrap();
    let mut acc = EvaluationAccumulator::new(&dict);
    for block in x.chunks(D * 97) {
        acc.add(&dict, block, None).unwrap();
    }
    let streamed = acc.finish();
    assert!(whole.fvu < 0.5, "trained FVU {}", whole.fvu);
    assert!((streamed.fvu - whole.fvu).abs() < 1e-9 * whole.fvu.max(1.0));
    assert!((streamed.mse - whole.mse).abs() < 1e-12);
    assert_eq!((streamed.rows, streamed.l0), (whole.rows, whole.l0));
    assert_eq!(streamed.density, whole.density);
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    let from_set = evaluate_set(&dict, &set, None, &all, 50, |_| {}).unwrap();
    assert!((from_set.fvu - whole.fvu).abs() < 1e-9);
}

#[test]
fn encoded_code_set_holds_the_dictionary_codes_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, x) = planted_set(&tmp.path().join("set"));
    let dict = straight(&set, 20).remove(0).to_dictionary();
    let reference = |id: &str| DictionaryRef {
        id: id.into(),
        architecture: "topk".into(),
        d_sae: dict.d_sae,
        weights_sha256: "ab".into(),
    };
    let out = tmp.path().join("codes");
    let first = encode_set(
        &dict,
        reference("d"),
        &set,
        &out,
        serde_json::json!({}),
        33,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(
        (first.written, first.skipped, first.rows),
        (5, 0, set.rows())
    );
    let codes = CodeSet::open(&out).unwrap();
    let expected = dict.encode(&x).unwrap();
    // Same features; values to float tolerance (the matmul's blocking differs with the rows
    // encoded at once).
    for r in 0..set.rows() {
        let ((f, v), (ef, ev)) = (codes.row(r), expected.row(r));
        assert_eq!(f, ef, "row {r}");
        assert!(
            v.iter()
                .zip(ev)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
            "row {r}"
        );
    }
    let shard2 = std::fs::read(out.join("codes-00002.safetensors")).unwrap();
    std::fs::remove_file(out.join("codes-00002.safetensors")).unwrap();
    let again = encode_set(
        &dict,
        reference("d"),
        &set,
        &out,
        serde_json::json!({}),
        33,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!((again.written, again.skipped), (1, 4));
    assert_eq!(
        std::fs::read(out.join("codes-00002.safetensors")).unwrap(),
        shard2
    );
    CodeSet::open(&out).unwrap();
    // Another dictionary cannot resume into these codes.
    let err = encode_set(
        &dict,
        reference("other"),
        &set,
        &out,
        serde_json::json!({}),
        33,
        |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("dictionary"), "{err}");
}

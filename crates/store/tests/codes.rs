//! Code sets: CSR round trip through real files, resume, refusals.

mod common;

use plmscope_store::codes::{CodeSet, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef};
use plmscope_store::{ActivationSet, Level, StorageDtype, StoreError};

const D_SAE: usize = 50;

/// Row r's sparse code: between 0 and 4 entries with features and values derived from r.
fn code(row: usize) -> (Vec<u32>, Vec<f32>) {
    let n = (row * 3 + row / 4) % 5;
    let features = (0..n)
        .map(|i| ((row * 13 + i * 7) % D_SAE) as u32)
        .collect();
    let values = (0..n).map(|i| row as f32 * 0.5 + i as f32 + 0.25).collect();
    (features, values)
}

fn dictionary() -> DictionaryRef {
    DictionaryRef {
        id: "runs/l4/sae".into(),
        architecture: "topk".into(),
        d_sae: D_SAE,
        weights_sha256: "feedbeef".into(),
    }
}

fn shard_codes(first_row: usize, rows: usize) -> CsrRows {
    let mut csr = CsrRows::new();
    for r in first_row..first_row + rows {
        let (f, v) = code(r);
        csr.push_row(&f, &v);
    }
    csr
}

fn write_codes(dir: &std::path::Path, set: &ActivationSet, shards: &[usize], finish: bool) {
    let header = CodeSetHeader::for_activation_set(set, dictionary(), serde_json::json!({"k": 4}));
    let mut writer = CodeSetWriter::create_or_resume(dir, header).unwrap();
    let records = &set.manifest().shards;
    let starts: Vec<usize> = records
        .iter()
        .scan(0, |acc, r| {
            let s = *acc;
            *acc += r.rows;
            Some(s)
        })
        .collect();
    for &s in shards {
        writer
            .write_shard(s, &shard_codes(starts[s], records[s].rows))
            .unwrap();
    }
    if finish {
        writer.finish(serde_json::json!({"dead": 3})).unwrap();
    }
}

fn activation_set(dir: &std::path::Path) -> ActivationSet {
    common::write_set(
        dir,
        common::header(Level::Residue, StorageDtype::F16, 4, 3, 8),
    );
    ActivationSet::open(dir).unwrap()
}

#[test]
fn csr_round_trip_through_files() {
    let tmp = tempfile::tempdir().unwrap();
    let set = activation_set(&tmp.path().join("acts"));
    let dir = tmp.path().join("codes");
    write_codes(&dir, &set, &[0, 1, 2], true);
    let codes = CodeSet::open(&dir).unwrap();
    codes.check_aligned(&set).unwrap();
    assert_eq!(codes.rows(), set.rows());
    assert_eq!(codes.d_sae(), D_SAE);
    let mut nnz = 0;
    for (r, (features, values)) in codes.iter_rows().enumerate() {
        let (f, v) = code(r);
        assert_eq!(features, &f[..], "row {r}");
        assert_eq!(values, &v[..], "row {r}");
        assert_eq!(codes.row(r), (&f[..], &v[..]));
        let pairs: Vec<(u32, f32)> = codes.row_pairs(r).collect();
        assert_eq!(
            pairs,
            f.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>()
        );
        nnz += f.len();
    }
    assert_eq!(codes.nnz(), nnz);
    assert!(
        codes.iter_rows().any(|(f, _)| f.is_empty()),
        "test should include empty rows"
    );
    assert_eq!(codes.header().extra["dead"], 3);
}

#[test]
fn code_set_resume_is_byte_identical_and_unfinished_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let set = activation_set(&tmp.path().join("acts"));
    let reference = tmp.path().join("reference");
    write_codes(&reference, &set, &[0, 1, 2], true);

    let resumed = tmp.path().join("resumed");
    write_codes(&resumed, &set, &[1], false);
    std::fs::write(resumed.join("codes-00000.safetensors.77.tmp"), b"partial").unwrap();
    let err = CodeSet::open(&resumed)
        .err()
        .expect("unfinished code set opened");
    assert!(matches!(err, StoreError::Incomplete { .. }), "{err}");
    write_codes(&resumed, &set, &[0, 2], true);

    let (a, b) = (common::dir_bytes(&reference), common::dir_bytes(&resumed));
    assert_eq!(a, b);

    // A dictionary with another width is a different code set.
    let mut dict = dictionary();
    dict.d_sae = 64;
    let header = CodeSetHeader::for_activation_set(&set, dict, serde_json::json!({"k": 4}));
    assert!(matches!(
        CodeSetWriter::create_or_resume(&resumed, header),
        Err(StoreError::HeaderMismatch { .. })
    ));
}

#[test]
fn invalid_codes_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let set = activation_set(&tmp.path().join("acts"));
    let header = CodeSetHeader::for_activation_set(&set, dictionary(), serde_json::Value::Null);
    let mut writer = CodeSetWriter::create_or_resume(&tmp.path().join("codes"), header).unwrap();
    let rows = set.manifest().shards[0].rows;
    let mut csr = shard_codes(0, rows);
    csr.feature[0] = D_SAE as u32;
    assert!(
        writer.write_shard(0, &csr).is_err(),
        "feature >= d_sae accepted"
    );
    let short = shard_codes(0, rows - 1);
    assert!(
        writer.write_shard(0, &short).is_err(),
        "wrong row count accepted"
    );
    assert!(!writer.is_shard_complete(0));
}

/// Catches an unfinished manifest that keeps the finish notes in `extra`: the next resume then
/// refused its own header ("extra" mismatch).
#[test]
fn finished_code_set_that_lost_a_shard_is_reopened_and_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let set = activation_set(&tmp.path().join("acts"));
    let reference = tmp.path().join("reference");
    write_codes(&reference, &set, &[0, 1, 2], true);
    let before = common::dir_bytes(&reference);

    // Shard 1 deleted and shard 2 truncated: both must be written again.
    std::fs::remove_file(reference.join("codes-00001.safetensors")).unwrap();
    let shard2 = reference.join("codes-00002.safetensors");
    let bytes = std::fs::read(&shard2).unwrap();
    std::fs::write(&shard2, &bytes[..bytes.len() - 4]).unwrap();
    let header = CodeSetHeader::for_activation_set(&set, dictionary(), serde_json::json!({"k": 4}));
    let writer = CodeSetWriter::create_or_resume(&reference, header).unwrap();
    assert!(writer.is_shard_complete(0));
    assert!(!writer.is_shard_complete(1) && !writer.is_shard_complete(2));
    assert!(
        matches!(
            CodeSet::open(&reference),
            Err(StoreError::Incomplete { .. })
        ),
        "the manifest must say unfinished once a shard is gone"
    );
    let err = writer.finish(serde_json::Value::Null).unwrap_err();
    assert!(err.to_string().contains("code shards 1, 2"), "{err}");

    write_codes(&reference, &set, &[1, 2], true);
    assert_eq!(common::dir_bytes(&reference), before);
}

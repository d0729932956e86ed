//! Shared helpers: synthetic sets whose values encode where they came from.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use plmscope_store::{
    ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, Site, StorageDtype,
};

pub fn header(
    level: Level,
    dtype: StorageDtype,
    d_model: usize,
    pps: usize,
    total: usize,
) -> SetHeader {
    SetHeader {
        model: ModelRef {
            id: "facebook/esm2_t6_8M_UR50D".into(),
            arch: "esm2_t6_8M".into(),
            weights_sha256: "0123abcd".into(),
        },
        layer: 4,
        site: Site::ResidPost,
        level,
        d_model,
        dtype,
        proteins_per_shard: pps,
        total_proteins: total,
        extra: serde_json::json!({ "batch_tokens": 4096, "max_len": 1022 }),
    }
}

/// Proteins with varied lengths (1..=23) and ids P0000, P0001...
pub fn proteins(total: usize) -> Vec<ProteinEntry> {
    (0..total)
        .map(|i| ProteinEntry {
            id: format!("P{i:04}"),
            length: 1 + (i * 7 + 3) % 23,
        })
        .collect()
}

/// A smooth, non-trivial value for (protein, position, dim); position is 0 at protein level.
pub fn value(protein: usize, position: usize, dim: usize) -> f32 {
    ((protein as f32) * 1.37 + (position as f32) * 0.71 + (dim as f32) * 0.113).sin() * 3.0
        + (dim as f32) * 0.01
}

/// Row-major activations of `proteins` (global indices from `first`) at `level`.
pub fn activations(level: Level, first: usize, proteins: &[ProteinEntry], d: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for (offset, p) in proteins.iter().enumerate() {
        let positions = match level {
            Level::Residue => p.length,
            Level::Protein => 1,
        };
        for pos in 0..positions {
            for k in 0..d {
                out.push(value(first + offset, pos, k));
            }
        }
    }
    out
}

/// Writes the shards in `shards` of a set described by `header`, without finishing.
pub fn write_shards(writer: &mut ActivationSetWriter, all: &[ProteinEntry], shards: &[usize]) {
    let header = writer.header().clone();
    for &s in shards {
        let range = header.shard_proteins(s);
        let acts = activations(
            header.level,
            range.start,
            &all[range.clone()],
            header.d_model,
        );
        writer.write_shard(s, &all[range], &acts).unwrap();
    }
}

/// Writes and finishes a whole set in one go.
pub fn write_set(dir: &Path, header: SetHeader) {
    let all = proteins(header.total_proteins);
    let mut writer = ActivationSetWriter::create_or_resume(dir, header).unwrap();
    let shards: Vec<usize> = (0..writer.shard_count()).collect();
    write_shards(&mut writer, &all, &shards);
    writer
        .finish(serde_json::json!({ "skipped": ["BAD1"], "truncated": 0 }))
        .unwrap();
}

/// Every file of a directory with its bytes.
pub fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

//! Helpers shared by the exchange tests: running the Python side, failing under CI when it
//! is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when `python3` can import every module in `modules`. When it cannot: under CI (env
/// `CI` set, as .ci/run does) this panics, elsewhere it prints a notice and returns false.
pub fn python_has(modules: &[&str]) -> bool {
    let code = format!("import {}", modules.join(", "));
    let ok = Command::new("python3")
        .args(["-c", &code])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but python3 with {} is missing (pip install {})",
            modules.join(", "),
            modules.join(" ")
        );
        eprintln!(
            "notice: python3 with {} not found; skipping the Python side of this test",
            modules.join(", ")
        );
    }
    ok
}

/// Runs `python3 script args...`, panicking with its output when it fails; returns stdout.
pub fn run_python(script: &Path, args: &[&Path]) -> String {
    let output = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

use plmscope_store::{
    ActivationSet, ActivationSetWriter, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef,
    Level, ModelRef, ProteinEntry, SetHeader, Site, StorageDtype,
};

/// Writes an activation set of `lengths.len()` proteins with `d` units, values a function of
/// (protein, row, unit) that is exact in f16 and in f32.
#[allow(dead_code)]
pub fn write_set(dir: &Path, level: Level, dtype: StorageDtype, lengths: &[usize], d: usize) {
    let header = SetHeader {
        model: ModelRef {
            id: "test-model".into(),
            arch: "esm2_t6_8M".into(),
            weights_sha256: "00".into(),
        },
        layer: 3,
        site: Site::ResidPost,
        level,
        d_model: d,
        dtype,
        proteins_per_shard: 2,
        total_proteins: lengths.len(),
        extra: serde_json::json!({}),
    };
    let mut writer = ActivationSetWriter::create_or_resume(dir, header.clone()).unwrap();
    for shard in 0..header.shard_count() {
        let range = header.shard_proteins(shard);
        let mut proteins = Vec::new();
        let mut values = Vec::new();
        for p in range {
            proteins.push(ProteinEntry {
                id: format!("P{p:05}"),
                length: lengths[p],
            });
            let rows = match level {
                Level::Residue => lengths[p],
                Level::Protein => 1,
            };
            for r in 0..rows {
                for u in 0..d {
                    let v = ((p * 31 + r * 7 + u * 3) % 23) as f32 * 0.125 - 1.25;
                    values.push(if u % 5 == 4 { 0.0 } else { v });
                }
            }
        }
        writer.write_shard(shard, &proteins, &values).unwrap();
    }
    writer.finish(serde_json::json!({})).unwrap();
}

/// Writes a code set over `set` with a few non-zero features per row (some rows empty).
#[allow(dead_code)]
pub fn write_codes(dir: &Path, set: &ActivationSet, d_sae: usize) {
    let header = CodeSetHeader::for_activation_set(
        set,
        DictionaryRef {
            id: "test-dictionary".into(),
            architecture: "topk".into(),
            d_sae,
            weights_sha256: "11".into(),
        },
        serde_json::json!({}),
    );
    let shard_rows = header.shard_rows.clone();
    let mut writer = CodeSetWriter::create_or_resume(dir, header).unwrap();
    let mut row = 0usize;
    for (shard, &rows) in shard_rows.iter().enumerate() {
        let mut csr = CsrRows::new();
        for _ in 0..rows {
            let n = row % 4;
            let features: Vec<u32> = (0..n)
                .map(|i| ((row * 5 + i * 11) % d_sae) as u32)
                .collect();
            let mut features = features;
            features.sort();
            features.dedup();
            let values: Vec<f32> = features.iter().map(|&f| f as f32 * 0.37 + 0.01).collect();
            csr.push_row(&features, &values);
            row += 1;
        }
        writer.write_shard(shard, &csr).unwrap();
    }
    writer.finish(serde_json::json!({})).unwrap();
}

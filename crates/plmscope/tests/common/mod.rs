//! Helpers shared by the command-line tests: run the real binary, check its outcome.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_plmscope");

/// Runs `plmscope --threads 2 ARGS`.
pub fn plmscope(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--threads", "2"])
        .args(args)
        .output()
        .expect("run plmscope")
}

/// Asserts success; returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "plmscope failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts failure; returns stderr.
pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "plmscope should have failed; stdout:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of the shared test data (`../shared/data`), read in place; asserts it is there.
pub fn data(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    assert!(
        p.exists(),
        "test data missing: {} (../shared/data)",
        p.display()
    );
    p.display().to_string()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes a random-weight ESM2 t6_8M (seed 0) to `out` with `plmscope model init`.
pub fn random_t6(out: &Path) {
    ok(&plmscope(&[
        "model",
        "init",
        "--arch",
        "esm2_t6_8M",
        "--seed",
        "0",
        "--out",
        s(out),
    ]));
}

/// `plmscope embed` of `fasta` at one layer's `resid_post` into `out`: a protein-level and a
/// residue-level set.
pub fn embed_both_levels(model: &Path, fasta: &Path, layer: u32, out: &Path) {
    ok(&plmscope(&[
        "embed",
        "--model",
        s(model),
        "--fasta",
        s(fasta),
        "--layers",
        &layer.to_string(),
        "--level",
        "protein,residue",
        "--out",
        s(out),
    ]));
}

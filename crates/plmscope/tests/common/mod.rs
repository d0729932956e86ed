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

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

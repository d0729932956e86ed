//! Paths into the shared, read-only test data (the repository is checked out beside `shared/`).

use std::path::PathBuf;

pub fn data(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(relative)
}

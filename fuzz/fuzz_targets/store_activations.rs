#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::write_files(
        data,
        &["manifest.json", "proteins.tsv", "shard-00000.safetensors"],
    );
    if let Ok(set) = plmscope_store::ActivationSet::open(dir.path()) {
        let mut rows = Vec::new();
        let _ = set.read_rows(0, 1, &mut rows);
    }
});

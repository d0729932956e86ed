#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::write_files(data, &["manifest.json", "codes-00000.safetensors"]);
    let _ = plmscope_store::CodeSet::open(dir.path());
});

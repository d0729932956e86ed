#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::write_files(data, &["config.json", "model.safetensors"]);
    let _ = plmscope_model::weights::open_checkpoint(dir.path());
});

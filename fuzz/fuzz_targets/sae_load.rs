#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = common::write_files(data, &["cfg.json", "sae_weights.safetensors"]);
    let _ = plmscope_sae::io::load(dir.path());
});

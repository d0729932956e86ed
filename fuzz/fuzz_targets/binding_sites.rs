#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        let reader = plmscope_bio::BindingResiduesReader::new(input, Path::new("fuzz.txt"));
        common::drain(reader, data.len());
    }
});

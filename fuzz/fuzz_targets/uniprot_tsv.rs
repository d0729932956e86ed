#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        if let Ok(reader) = plmscope_bio::UniProtTsvReader::new(input, Path::new("fuzz.tsv"), &[]) {
            common::drain(reader, data.len());
        }
    }
});

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        if let Ok(reader) = plmscope_bio::GoCsvReader::new(input, Path::new("fuzz.csv")) {
            common::drain(reader, data.len());
        }
    }
});

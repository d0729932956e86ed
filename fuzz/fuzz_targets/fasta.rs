#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        common::drain(
            plmscope_bio::FastaReader::new(input, Path::new("fuzz.fasta")),
            data.len(),
        );
    }
});

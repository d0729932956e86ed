#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        let reader =
            plmscope_bio::GafReader::new(input, Path::new("fuzz.gaf")).with_evidence(["IDA"]);
        common::drain(reader, data.len());
    }
});

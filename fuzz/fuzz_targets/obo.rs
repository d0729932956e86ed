#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = common::text_input(data) {
        if let Ok(document) = plmscope_bio::OboDocument::read(input, Path::new("fuzz.obo")) {
            if let Ok(dag) = plmscope_bio::GoDag::from_document(&document) {
                for term in dag.terms() {
                    assert!(dag.ancestors(term).contains(&term));
                }
            }
        }
    }
});

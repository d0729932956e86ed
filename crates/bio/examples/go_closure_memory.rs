//! What the GO DAG's ancestor closure costs: on the real ontology and on a synthetic chain of
//! 20,000 terms (each `is_a` the previous), the ancestor entries the DAG stores, their bytes,
//! the entries its answers hold, the build time, the time of a pass that asks every term's
//! ancestors, and of 200,000 `lowest_common_ancestor_depth` queries on term pairs (what the GO
//! coherence measure asks). Peak memory: run it under `/usr/bin/time -v`.
//!
//!     cargo run --release -p plmscope-bio --example go_closure_memory -- [go-basic.obo] [chain|real]

use std::time::Instant;

use plmscope_bio::{GoDag, OboDocument, TermIndex};

/// An ontology where term i is_a term i − 1: every term's ancestors are all terms before it.
fn chain_obo(n: usize) -> String {
    let mut text = String::from("format-version: 1.2\n\n");
    for i in 1..=n {
        text.push_str(&format!(
            "[Term]\nid: GO:{i:07}\nname: t{i}\nnamespace: biological_process\n"
        ));
        if i > 1 {
            text.push_str(&format!("is_a: GO:{:07} ! t{}\n", i - 1, i - 1));
        }
        text.push('\n');
    }
    text
}

fn report(name: &str, document: &OboDocument) {
    let start = Instant::now();
    let dag = GoDag::from_document(document).unwrap();
    let build = start.elapsed();
    let start = Instant::now();
    let answered: usize = dag.terms().map(|t| dag.ancestors(t).len()).sum();
    let query = start.elapsed();
    let n = dag.len() as u64;
    let start = Instant::now();
    let mut depth_sum = 0u64;
    for i in 0..200_000u64 {
        // Pairs spread over the index range (a fixed multiplicative walk, no RNG needed).
        let a = TermIndex((i * 7_919 % n) as u32);
        let b = TermIndex((i * 104_729 % n) as u32);
        depth_sum += u64::from(dag.lowest_common_ancestor_depth(a, b).unwrap_or(0));
    }
    let lca = start.elapsed();
    println!(
        "{name}: {} terms, {} ancestor entries answered; stored {} entries, {} bytes; \
         build {:.1} ms, every term's ancestors {:.1} ms, 200000 LCA depths {:.1} ms \
         (sum {depth_sum})",
        dag.len(),
        answered,
        dag.stored_ancestor_entries(),
        dag.ancestor_closure_bytes(),
        build.as_secs_f64() * 1e3,
        query.as_secs_f64() * 1e3,
        lca.as_secs_f64() * 1e3,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let obo = args
        .first()
        .cloned()
        .unwrap_or_else(|| "../shared/data/go-basic.obo".into());
    let which = args.get(1).map_or("both", String::as_str);
    if which != "chain" {
        report("go-basic", &OboDocument::open(&obo).unwrap());
    }
    if which != "real" {
        let text = chain_obo(20_000);
        let document = OboDocument::read(text.as_bytes(), "chain.obo").unwrap();
        report("chain 20000", &document);
    }
}

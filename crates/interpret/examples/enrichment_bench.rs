//! Times the enrichment engine on a GO-sized synthetic problem.
//!
//!     cargo run --release -p plmscope-interpret --example enrichment_bench -- [units] [terms]
//!
//! Population 6,000 proteins; `terms` terms (default 4,000) of sizes 5..2,000 drawn
//! log-uniformly, so each protein carries on the order of a hundred terms as after GO
//! propagation; `units` units (default 2,000) with study sets of 10..600 proteins.

use std::time::Instant;

use plmscope_interpret::enrichment::{
    AnnotatedProteins, Background, CorrectionMethod, CorrectionScope, EnrichmentConfig,
    EnrichmentEngine, Foreground, TermSizeFilter,
};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n_units: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let n_terms: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4000);
    let n_proteins = 6000u32;
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    let started = Instant::now();
    let all: Vec<u32> = (0..n_proteins).collect();
    let mut sets = vec![Vec::new(); n_proteins as usize];
    for term in 0..n_terms {
        let size = (5.0f64 * (400.0f64).powf(rng.random::<f64>())) as usize;
        for &p in all.choose_multiple(&mut rng, size) {
            sets[p as usize].push(term);
        }
    }
    let proteins = AnnotatedProteins::from_term_sets(n_terms, &sets)?;
    let mean_terms = sets.iter().map(Vec::len).sum::<usize>() as f64 / f64::from(n_proteins);
    let foregrounds: Vec<Foreground> = (0..n_units)
        .map(|unit| {
            let size = rng.random_range(10..=600);
            let mut chosen: Vec<u32> = all.choose_multiple(&mut rng, size).copied().collect();
            chosen.sort_unstable();
            Foreground {
                unit,
                proteins: chosen,
            }
        })
        .collect();
    println!(
        "synthetic data: {:.2?} ({mean_terms:.0} terms per protein)",
        started.elapsed()
    );

    let config = EnrichmentConfig {
        background: Background::AnnotatedOnly,
        term_size: TermSizeFilter {
            min_population_count: 5,
            max_population_count: 2000,
        },
        method: CorrectionMethod::BenjaminiHochberg,
        scope: CorrectionScope::AllUnits,
    };
    let allowed = vec![true; n_terms as usize];
    let started = Instant::now();
    let engine = EnrichmentEngine::new(&proteins, &allowed, config)?;
    println!(
        "engine: {:.2?}, {} tested terms",
        started.elapsed(),
        engine.tested_terms()
    );

    let started = Instant::now();
    let result = engine.run(&foregrounds)?;
    let elapsed = started.elapsed();
    let materialised: usize = result.units.iter().map(|u| u.tests.len()).sum();
    let significant: usize = result
        .units
        .iter()
        .flat_map(|u| &u.tests)
        .filter(|t| t.q() < 0.05)
        .count();
    println!(
        "{n_units} units: {elapsed:.2?} ({:.0} units/s, {:.2e} materialised tests/s); {} tests made, \
         {materialised} materialised, {significant} at q < 0.05 (all null)",
        f64::from(n_units) / elapsed.as_secs_f64(),
        materialised as f64 / elapsed.as_secs_f64(),
        result.total_tests,
    );
    Ok(())
}

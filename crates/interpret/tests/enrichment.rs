//! The enrichment engine: counts against a brute-force recount, planted-signal recovery, and
//! false-discovery control on shuffled controls.

use plmscope_interpret::enrichment::{
    AnnotatedProteins, Background, CorrectionMethod, CorrectionScope, EnrichmentConfig,
    EnrichmentEngine, EnrichmentResult, Foreground, TermSizeFilter,
};
use plmscope_interpret::hypergeom::ln_sf;
use plmscope_interpret::multiple_testing::benjamini_hochberg_ln_q;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_PROTEINS: u32 = 5000;
const N_TERMS: u32 = 300;

/// Random flat annotations: term sizes 5..500, members drawn uniformly from all but the last 150
/// proteins, which carry no term (they must be left out of the default background).
fn synthetic_population(rng: &mut ChaCha8Rng) -> (AnnotatedProteins, Vec<Vec<u32>>) {
    let mut sets = vec![Vec::new(); N_PROTEINS as usize];
    let mut members = Vec::new();
    let all: Vec<u32> = (0..N_PROTEINS - 150).collect();
    for term in 0..N_TERMS {
        let size = rng.random_range(5..=500);
        let mut chosen: Vec<u32> = all.choose_multiple(rng, size).copied().collect();
        chosen.sort_unstable();
        for &p in &chosen {
            sets[p as usize].push(term);
        }
        members.push(chosen);
    }
    let proteins = AnnotatedProteins::from_term_sets(N_TERMS, &sets).unwrap();
    (proteins, members)
}

fn config(scope: CorrectionScope) -> EnrichmentConfig {
    EnrichmentConfig {
        background: Background::AnnotatedOnly,
        term_size: TermSizeFilter {
            min_population_count: 10,
            max_population_count: 450,
        },
        method: CorrectionMethod::BenjaminiHochberg,
        scope,
    }
}

fn sorted(mut proteins: Vec<u32>) -> Vec<u32> {
    proteins.sort_unstable();
    proteins.dedup();
    proteins
}

/// Foreground = up to 40 members of the target term plus 40 random proteins.
fn planted_unit(unit: u32, target: &[u32], rng: &mut ChaCha8Rng) -> Foreground {
    let mut proteins: Vec<u32> = target
        .choose_multiple(rng, target.len().min(40))
        .copied()
        .collect();
    proteins.extend((0..40).map(|_| rng.random_range(0..N_PROTEINS)));
    Foreground {
        unit,
        proteins: sorted(proteins),
    }
}

fn significant(result: &EnrichmentResult, unit: u32) -> Vec<u32> {
    let found = result.units.iter().find(|u| u.unit == unit).unwrap();
    found
        .tests
        .iter()
        .filter(|t| t.q() < 0.05)
        .map(|t| t.term)
        .collect()
}

#[test]
fn counts_and_p_values_match_a_brute_force_recount() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (proteins, members) = synthetic_population(&mut rng);
    let mut allowed = vec![true; N_TERMS as usize];
    allowed[3] = false; // a "namespace" mask
    let engine =
        EnrichmentEngine::new(&proteins, &allowed, config(CorrectionScope::PerUnit)).unwrap();
    let background: Vec<u32> = (0..N_PROTEINS)
        .filter(|&p| proteins.terms_of(p).iter().any(|&t| allowed[t as usize]))
        .collect();
    assert_eq!(engine.population_size() as usize, background.len());
    assert!(
        background.len() < N_PROTEINS as usize,
        "some proteins carry no term"
    );

    let fg = planted_unit(7, &members[11], &mut rng);
    let unit = engine.test_unit(&fg).unwrap();
    let study: Vec<u32> = fg
        .proteins
        .iter()
        .copied()
        .filter(|p| background.binary_search(p).is_ok())
        .collect();
    assert_eq!(unit.study_size as usize, study.len());
    assert_eq!(
        unit.outside_background as usize,
        fg.proteins.len() - study.len()
    );

    let mut expected_tested = 0;
    for term in 0..N_TERMS {
        let pop_count = members[term as usize].len() as u32;
        let tested = allowed[term as usize] && (10..=450).contains(&pop_count);
        expected_tested += u32::from(tested);
        let study_count = study
            .iter()
            .filter(|p| members[term as usize].binary_search(p).is_ok())
            .count() as u32;
        let found = unit.tests.iter().find(|t| t.term == term);
        match found {
            Some(test) => {
                assert!(
                    tested && study_count > 0,
                    "term {term} materialised but not testable"
                );
                assert_eq!(
                    (test.study_count, test.population_count),
                    (study_count, pop_count)
                );
                let want = ln_sf(
                    study_count,
                    study.len() as u32,
                    pop_count,
                    background.len() as u32,
                )
                .unwrap();
                assert_eq!(test.ln_p, want);
            }
            None => assert!(
                !tested || study_count == 0,
                "term {term} with {study_count} hits not materialised"
            ),
        }
    }
    assert_eq!(engine.tested_terms(), expected_tested);
    assert_eq!(unit.tests_made, expected_tested);
}

#[test]
fn global_correction_is_bh_over_every_test_made() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (proteins, members) = synthetic_population(&mut rng);
    let allowed = vec![true; N_TERMS as usize];
    let engine =
        EnrichmentEngine::new(&proteins, &allowed, config(CorrectionScope::AllUnits)).unwrap();
    let mut foregrounds: Vec<Foreground> = (0..20)
        .map(|u| planted_unit(u, &members[u as usize], &mut rng))
        .collect();
    foregrounds.push(Foreground {
        unit: 20,
        proteins: vec![],
    }); // makes no tests
    let result = engine.run(&foregrounds).unwrap();
    assert_eq!(result.units[20].tests_made, 0);
    assert_eq!(result.total_tests, 20 * u64::from(engine.tested_terms()));
    let ln_p: Vec<f64> = result
        .units
        .iter()
        .flat_map(|u| u.tests.iter().map(|t| t.ln_p))
        .collect();
    let want = benjamini_hochberg_ln_q(&ln_p, result.total_tests as usize).unwrap();
    let got: Vec<f64> = result
        .units
        .iter()
        .flat_map(|u| u.tests.iter().map(|t| t.ln_q))
        .collect();
    assert_eq!(got, want);
}

/// Runs planted units and their shuffled copies through one global BH; returns
/// (planted units, planted units whose target is significant, false discoveries, all discoveries).
fn planted_and_shuffled(seed: u64) -> (usize, usize, usize, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (proteins, members) = synthetic_population(&mut rng);
    let allowed = vec![true; N_TERMS as usize];
    let engine =
        EnrichmentEngine::new(&proteins, &allowed, config(CorrectionScope::AllUnits)).unwrap();
    let targets: Vec<u32> = (0..N_TERMS)
        .filter(|&t| (30..=450).contains(&members[t as usize].len()))
        .take(30)
        .collect();
    let mut foregrounds: Vec<Foreground> = targets
        .iter()
        .enumerate()
        .map(|(u, &t)| planted_unit(u as u32, &members[t as usize], &mut rng))
        .collect();
    // Shuffled controls: the same study sets with protein labels permuted.
    let mut permutation: Vec<u32> = (0..N_PROTEINS).collect();
    permutation.shuffle(&mut rng);
    let n_planted = foregrounds.len() as u32;
    for u in 0..n_planted {
        let shuffled = foregrounds[u as usize]
            .proteins
            .iter()
            .map(|&p| permutation[p as usize])
            .collect();
        foregrounds.push(Foreground {
            unit: n_planted + u,
            proteins: sorted(shuffled),
        });
    }
    let result = engine.run(&foregrounds).unwrap();
    let (mut recovered, mut false_calls, mut calls) = (0, 0, 0);
    for unit in 0..2 * n_planted {
        let hits = significant(&result, unit);
        calls += hits.len();
        if unit < n_planted {
            let target = targets[unit as usize];
            recovered += usize::from(hits.contains(&target));
            false_calls += hits.iter().filter(|&&t| t != target).count();
        } else {
            false_calls += hits.len();
        }
    }
    (targets.len(), recovered, false_calls, calls)
}

#[test]
fn planted_terms_are_recovered_and_shuffled_controls_stay_within_the_fdr() {
    let mut fdp_sum = 0.0;
    let replicates = 12;
    for seed in 0..replicates {
        let (planted, recovered, false_calls, calls) = planted_and_shuffled(100 + seed);
        assert_eq!(
            recovered, planted,
            "seed {seed}: every planted term must be found at q < 0.05"
        );
        fdp_sum += false_calls as f64 / calls.max(1) as f64;
    }
    let mean_fdp = fdp_sum / replicates as f64;
    // BH guarantees FDR <= 0.05 (times the null fraction); the realised proportion is averaged
    // over replicates so that one unlucky draw cannot fail the test.
    assert!(
        mean_fdp <= 0.05,
        "mean false discovery proportion {mean_fdp}"
    );
}

#[test]
fn null_p_values_are_not_anticonservative() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (proteins, _) = synthetic_population(&mut rng);
    let allowed = vec![true; N_TERMS as usize];
    let engine =
        EnrichmentEngine::new(&proteins, &allowed, config(CorrectionScope::PerUnit)).unwrap();
    let foregrounds: Vec<Foreground> = (0..400)
        .map(|u| {
            let size = rng.random_range(10..=600);
            Foreground {
                unit: u,
                proteins: sorted((0..size).map(|_| rng.random_range(0..N_PROTEINS)).collect()),
            }
        })
        .collect();
    let result = engine.run(&foregrounds).unwrap();
    let total = result.total_tests as f64;
    for alpha in [0.001f64, 0.01, 0.05] {
        let below = result
            .units
            .iter()
            .flat_map(|u| &u.tests)
            .filter(|t| t.p() <= alpha)
            .count() as f64;
        // Discrete tests are conservative: the fraction must not exceed alpha beyond noise.
        let allowed_fraction = alpha + 4.0 * (alpha / total).sqrt();
        assert!(
            below / total <= allowed_fraction,
            "alpha {alpha}: fraction {}",
            below / total
        );
        assert!(
            below / total >= 0.2 * alpha,
            "alpha {alpha}: fraction {} is implausibly small",
            below / total
        );
    }
}

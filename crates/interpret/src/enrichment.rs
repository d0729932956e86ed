//! GO (or any term) enrichment of many units at once: for each unit (SAE feature or neuron) and
//! each tested term, the goatools quantities `study_count`, `study_size`, `population_count`,
//! `population_size`, fold enrichment, p (one-sided hypergeometric, see [`crate::hypergeom`]) and
//! q.
//!
//! Everything is on dense ids: proteins `0..n_proteins`, terms `0..n_terms`. Term sets are the
//! already propagated annotations (true-path rule applied by the caller), sorted and unique.
//!
//! # What counts as a test
//! - The **background** (population) is, by default, the proteins with at least one allowed term
//!   ([`Background::AnnotatedOnly`], as ARCHITECTURE.md states), or all proteins.
//! - A term is **tested** if the caller's namespace mask allows it and its population count lies
//!   in the [`TermSizeFilter`] range. The filter is applied before any test and is recorded in the
//!   result, together with the number of tested terms.
//! - For every unit with a non-empty study set (foreground ∩ background), **every tested term is
//!   one test**. Terms the unit's study set never touches have `study_count = 0` and `p = 1`
//!   exactly; they count in `m` for the correction but are not materialised (see
//!   [`crate::multiple_testing`] for why this is exact). A unit with an empty study set makes no
//!   tests. [`UnitEnrichment::tests_made`] records the count.
//! - q-values are Benjamini–Hochberg (or Bonferroni) over every test made across all units
//!   ([`CorrectionScope::AllUnits`], the architecture's rule) or within each unit
//!   ([`CorrectionScope::PerUnit`]).
//!
//! # Speed
//! Per unit the cost is `Σ over study proteins of |terms(protein)|` counter increments plus one
//! tail evaluation per touched term: counts are accumulated sparsely into a per-thread dense
//! counter with a list of touched terms, from a protein → tested-terms index built once with the
//! untested terms already removed. Units run in parallel with rayon. An inverted index
//! (term → proteins) would only help if study sets were larger than term sizes; here study sets
//! (10..600) are much smaller than the population, so scanning the study proteins' terms is the
//! minimum work.

use rayon::prelude::*;

use crate::hypergeom::ln_sf_unchecked;
use crate::multiple_testing::{benjamini_hochberg_ln_q, bonferroni_ln_q};
use crate::stats_error::{StatsError, StatsResult};

/// Proteins with their propagated term sets, stored flat (CSR).
#[derive(Debug, Clone)]
pub struct AnnotatedProteins {
    n_terms: u32,
    offsets: Vec<usize>,
    terms: Vec<u32>,
}

impl AnnotatedProteins {
    /// One sorted, duplicate-free term list per protein, in protein order; every term `< n_terms`.
    pub fn from_term_sets<I, S>(n_terms: u32, sets: I) -> StatsResult<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u32]>,
    {
        let mut offsets = vec![0];
        let mut terms = Vec::new();
        for (protein, set) in sets.into_iter().enumerate() {
            let set = set.as_ref();
            check_sorted_ids(set, n_terms, &format!("terms of protein {protein}"))?;
            terms.extend_from_slice(set);
            offsets.push(terms.len());
        }
        Ok(AnnotatedProteins {
            n_terms,
            offsets,
            terms,
        })
    }

    /// Number of proteins.
    pub fn n_proteins(&self) -> u32 {
        (self.offsets.len() - 1) as u32
    }

    /// Number of terms (the id range).
    pub fn n_terms(&self) -> u32 {
        self.n_terms
    }

    /// The terms of one protein, sorted.
    pub fn terms_of(&self, protein: u32) -> &[u32] {
        let p = protein as usize;
        &self.terms[self.offsets[p]..self.offsets[p + 1]]
    }
}

/// Checks that `ids` is strictly increasing and below `limit`.
pub(crate) fn check_sorted_ids(ids: &[u32], limit: u32, what: &str) -> StatsResult<()> {
    for (position, &id) in ids.iter().enumerate() {
        if id >= limit {
            return Err(StatsError::IdOutOfRange {
                what: what.to_string(),
                position,
                id: id.into(),
                limit: limit.into(),
            });
        }
        if position > 0 && ids[position - 1] >= id {
            return Err(StatsError::NotStrictlySorted {
                what: what.to_string(),
                position,
                value: id.into(),
            });
        }
    }
    Ok(())
}

/// Which proteins make up the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Background {
    /// Proteins with at least one allowed term (the architecture's rule).
    AnnotatedOnly,
    /// Every protein given.
    AllProteins,
}

/// Terms are tested only if `min_population_count <= population_count <= max_population_count`
/// (counted over the background). A term no background protein carries is never tested, whatever
/// the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TermSizeFilter {
    pub min_population_count: u32,
    pub max_population_count: u32,
}

/// How p-values are adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CorrectionMethod {
    BenjaminiHochberg,
    Bonferroni,
}

/// Over which tests the adjustment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CorrectionScope {
    /// Every test made, across all units (the architecture's rule).
    AllUnits,
    /// Each unit's tests separately.
    PerUnit,
}

/// Everything that decides which tests are made and how they are corrected; stored with results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnrichmentConfig {
    pub background: Background,
    pub term_size: TermSizeFilter,
    pub method: CorrectionMethod,
    pub scope: CorrectionScope,
}

/// The study set of one unit: sorted, unique protein ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreground {
    pub unit: u32,
    pub proteins: Vec<u32>,
}

/// One materialised test (a term touched by the unit's study set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TermTest {
    pub term: u32,
    pub study_count: u32,
    pub population_count: u32,
    /// ln of the one-sided hypergeometric p-value.
    pub ln_p: f64,
    /// ln of the adjusted p-value.
    pub ln_q: f64,
}

impl TermTest {
    /// p as `f64` (0 where it underflows; keep `ln_p` for storage).
    pub fn p(&self) -> f64 {
        self.ln_p.exp()
    }

    /// q as `f64` (0 where it underflows).
    pub fn q(&self) -> f64 {
        self.ln_q.exp()
    }

    /// `(study_count / study_size) / (population_count / population_size)`, goatools's ratio of
    /// ratios.
    pub fn fold_enrichment(&self, study_size: u32, population_size: u32) -> f64 {
        (f64::from(self.study_count) / f64::from(study_size))
            / (f64::from(self.population_count) / f64::from(population_size))
    }
}

/// All tests of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitEnrichment {
    pub unit: u32,
    /// Foreground proteins inside the background.
    pub study_size: u32,
    /// Foreground proteins left out because they are not in the background.
    pub outside_background: u32,
    /// Tests counted for the correction (tested terms, or 0 for an empty study set).
    pub tests_made: u32,
    /// Materialised tests (study_count >= 1), sorted by term.
    pub tests: Vec<TermTest>,
}

/// Results of one enrichment run, with the settings that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichmentResult {
    pub config: EnrichmentConfig,
    pub population_size: u32,
    /// Terms passing the namespace mask and the size filter.
    pub tested_terms: u32,
    /// Allowed terms removed by the size filter.
    pub terms_removed_by_size: u32,
    /// Σ `tests_made` over units.
    pub total_tests: u64,
    pub units: Vec<UnitEnrichment>,
}

/// Population statistics and the filtered protein → term index, built once and shared by all
/// units.
#[derive(Debug, Clone)]
pub struct EnrichmentEngine {
    config: EnrichmentConfig,
    n_proteins: u32,
    in_background: Vec<bool>,
    population_size: u32,
    population_counts: Vec<u32>,
    tested_terms: u32,
    terms_removed_by_size: u32,
    offsets: Vec<usize>,
    tested: Vec<u32>,
}

impl EnrichmentEngine {
    /// Prepares the population. `allowed_terms[t]` is the caller's namespace filter (e.g. BP only).
    pub fn new(
        proteins: &AnnotatedProteins,
        allowed_terms: &[bool],
        config: EnrichmentConfig,
    ) -> StatsResult<Self> {
        let n_terms = proteins.n_terms() as usize;
        if allowed_terms.len() != n_terms {
            return Err(StatsError::LengthMismatch {
                what: "allowed term mask".into(),
                expected: n_terms,
                actual: allowed_terms.len(),
            });
        }
        let n_proteins = proteins.n_proteins();
        let has_allowed = |p: u32| {
            proteins
                .terms_of(p)
                .iter()
                .any(|&t| allowed_terms[t as usize])
        };
        let in_background: Vec<bool> = (0..n_proteins)
            .map(|p| config.background == Background::AllProteins || has_allowed(p))
            .collect();
        let population_size = in_background.iter().filter(|&&b| b).count() as u32;
        let mut population_counts = vec![0u32; n_terms];
        for p in (0..n_proteins).filter(|&p| in_background[p as usize]) {
            for &t in proteins.terms_of(p) {
                population_counts[t as usize] += 1;
            }
        }
        let size = config.term_size;
        let mut is_tested = vec![false; n_terms];
        let (mut tested_terms, mut terms_removed_by_size) = (0, 0);
        for t in 0..n_terms {
            if !allowed_terms[t] {
                continue;
            }
            let count = population_counts[t];
            if count >= size.min_population_count.max(1) && count <= size.max_population_count {
                is_tested[t] = true;
                tested_terms += 1;
            } else {
                terms_removed_by_size += 1;
            }
        }
        let mut offsets = vec![0];
        let mut tested = Vec::new();
        for p in 0..n_proteins {
            if in_background[p as usize] {
                tested.extend(
                    proteins
                        .terms_of(p)
                        .iter()
                        .filter(|&&t| is_tested[t as usize]),
                );
            }
            offsets.push(tested.len());
        }
        Ok(EnrichmentEngine {
            config,
            n_proteins,
            in_background,
            population_size,
            population_counts,
            tested_terms,
            terms_removed_by_size,
            offsets,
            tested,
        })
    }

    /// Number of proteins in the population (background).
    pub fn population_size(&self) -> u32 {
        self.population_size
    }

    /// Population count of every term (over the background, before the size filter).
    pub fn population_counts(&self) -> &[u32] {
        &self.population_counts
    }

    /// Number of terms that are tested for each unit.
    pub fn tested_terms(&self) -> u32 {
        self.tested_terms
    }

    /// Tests one unit (p only: `ln_q` is left equal to `ln_p` until a correction runs).
    pub fn test_unit(&self, foreground: &Foreground) -> StatsResult<UnitEnrichment> {
        let mut counts = vec![0u32; self.population_counts.len()];
        self.test_unit_with(foreground, &mut counts)
    }

    fn test_unit_with(
        &self,
        foreground: &Foreground,
        counts: &mut [u32],
    ) -> StatsResult<UnitEnrichment> {
        let what = format!("foreground of unit {}", foreground.unit);
        check_sorted_ids(&foreground.proteins, self.n_proteins, &what)?;
        let mut touched = Vec::new();
        let mut study_size = 0u32;
        for &p in &foreground.proteins {
            if !self.in_background[p as usize] {
                continue;
            }
            study_size += 1;
            for &t in &self.tested[self.offsets[p as usize]..self.offsets[p as usize + 1]] {
                let slot = &mut counts[t as usize];
                if *slot == 0 {
                    touched.push(t);
                }
                *slot += 1;
            }
        }
        touched.sort_unstable();
        let tests = touched
            .iter()
            .map(|&term| {
                let study_count = std::mem::take(&mut counts[term as usize]);
                let population_count = self.population_counts[term as usize];
                let ln_p = ln_sf_unchecked(
                    study_count,
                    study_size,
                    population_count,
                    self.population_size,
                );
                TermTest {
                    term,
                    study_count,
                    population_count,
                    ln_p,
                    ln_q: ln_p,
                }
            })
            .collect();
        Ok(UnitEnrichment {
            unit: foreground.unit,
            study_size,
            outside_background: foreground.proteins.len() as u32 - study_size,
            tests_made: if study_size > 0 { self.tested_terms } else { 0 },
            tests,
        })
    }

    /// Tests every unit in parallel and applies the configured correction.
    pub fn run(&self, foregrounds: &[Foreground]) -> StatsResult<EnrichmentResult> {
        let n_terms = self.population_counts.len();
        let mut units = foregrounds
            .par_iter()
            .map_init(
                || vec![0u32; n_terms],
                |counts, fg| self.test_unit_with(fg, counts),
            )
            .collect::<StatsResult<Vec<_>>>()?;
        let total_tests = units.iter().map(|u| u64::from(u.tests_made)).sum();
        match self.config.scope {
            CorrectionScope::PerUnit => units.par_iter_mut().try_for_each(|unit| {
                let ln_p: Vec<f64> = unit.tests.iter().map(|t| t.ln_p).collect();
                let ln_q = self.correct(&ln_p, unit.tests_made as usize)?;
                unit.tests
                    .iter_mut()
                    .zip(ln_q)
                    .for_each(|(t, q)| t.ln_q = q);
                Ok::<(), StatsError>(())
            })?,
            CorrectionScope::AllUnits => {
                let ln_p: Vec<f64> = units
                    .iter()
                    .flat_map(|u| u.tests.iter().map(|t| t.ln_p))
                    .collect();
                let ln_q = self.correct(&ln_p, total_tests as usize)?;
                let mut next = ln_q.into_iter();
                for test in units.iter_mut().flat_map(|u| u.tests.iter_mut()) {
                    test.ln_q = next.next().unwrap_or(0.0);
                }
            }
        }
        Ok(EnrichmentResult {
            config: self.config,
            population_size: self.population_size,
            tested_terms: self.tested_terms,
            terms_removed_by_size: self.terms_removed_by_size,
            total_tests,
            units,
        })
    }

    fn correct(&self, ln_p: &[f64], total_tests: usize) -> StatsResult<Vec<f64>> {
        match self.config.method {
            CorrectionMethod::BenjaminiHochberg => benjamini_hochberg_ln_q(ln_p, total_tests),
            CorrectionMethod::Bonferroni => bonferroni_ln_q(ln_p, total_tests),
        }
    }
}

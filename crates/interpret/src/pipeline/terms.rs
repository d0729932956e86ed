//! Annotation term spaces (GO terms, Pfam families) over the analysed proteins, their
//! enrichment runs, and what gets written to the atlas.

use plmscope_bio::{GoDag, Namespace, PropagatedAnnotation};

use super::{StoreTests, TermSummary, UnitKind};
use crate::atlas::{AtlasWriter, EnrichmentRow};
use crate::enrichment::{
    AnnotatedProteins, Background, CorrectionMethod, CorrectionScope, EnrichmentConfig,
    EnrichmentEngine, EnrichmentResult, Foreground, TermSizeFilter,
};
use crate::error::{AnalysisError, AnalysisResult};
use crate::go_graph::{AccessionIndex, MappedAnnotations};

/// One annotation source, ready to test units against.
pub(crate) struct TermSpace {
    /// `go` or `pfam`: the atlas's `enrichment.annotation`.
    pub annotation: &'static str,
    pub ids: Vec<String>,
    /// GO namespace of each term (GO only).
    pub namespaces: Option<Vec<Namespace>>,
    pub engine: EnrichmentEngine,
    pub mapped: MappedAnnotations,
    pub allowed: Vec<bool>,
}

fn config(
    term_size: TermSizeFilter,
    method: CorrectionMethod,
    background: Background,
) -> EnrichmentConfig {
    EnrichmentConfig {
        background,
        term_size,
        method,
        // BH over every test of one kind and one annotation source: features and neurons are
        // separate families of tests, so neither changes the other's q-values.
        scope: CorrectionScope::AllUnits,
    }
}

pub(crate) fn go_space(
    dag: &GoDag,
    propagated: &[PropagatedAnnotation],
    index: &AccessionIndex,
    namespaces: &[Namespace],
    term_size: TermSizeFilter,
    method: CorrectionMethod,
    background: Background,
) -> AnalysisResult<TermSpace> {
    let mapped = index.map_go(propagated);
    let n_terms = dag.len() as u32;
    let proteins = AnnotatedProteins::from_term_sets(n_terms, &mapped.term_sets)
        .map_err(AnalysisError::stats("propagated GO sets"))?;
    let term_namespaces: Vec<Namespace> = dag.terms().map(|t| dag.namespace(t)).collect();
    let allowed: Vec<bool> = term_namespaces
        .iter()
        .map(|ns| namespaces.contains(ns))
        .collect();
    let engine = EnrichmentEngine::new(&proteins, &allowed, config(term_size, method, background))
        .map_err(AnalysisError::stats("GO enrichment setup"))?;
    Ok(TermSpace {
        annotation: "go",
        ids: dag.terms().map(|t| dag.id(t).to_string()).collect(),
        namespaces: Some(term_namespaces),
        engine,
        mapped,
        allowed,
    })
}

pub(crate) fn family_space(
    records: &[(String, Vec<String>)],
    index: &AccessionIndex,
    term_size: TermSizeFilter,
    method: CorrectionMethod,
    background: Background,
) -> AnalysisResult<TermSpace> {
    let (families, mapped) = index.map_families(records);
    let n_terms = u32::try_from(families.len())
        .map_err(|_| AnalysisError::input("more than 2^32 families", "split the family list"))?;
    let proteins = AnnotatedProteins::from_term_sets(n_terms, &mapped.term_sets)
        .map_err(AnalysisError::stats("family sets"))?;
    let allowed = vec![true; families.len()];
    let engine = EnrichmentEngine::new(&proteins, &allowed, config(term_size, method, background))
        .map_err(AnalysisError::stats("family enrichment setup"))?;
    Ok(TermSpace {
        annotation: "pfam",
        ids: families,
        namespaces: None,
        engine,
        mapped,
        allowed,
    })
}

impl TermSpace {
    /// Whether protein `p` has any allowed term (is in the annotated background).
    pub fn annotated(&self, p: usize) -> bool {
        self.mapped.term_sets[p]
            .iter()
            .any(|&t| self.allowed[t as usize])
    }

    /// Tested terms (allowed and passing the size filter), optionally of one namespace.
    pub fn tested_terms(&self, namespace: Option<Namespace>, filter: TermSizeFilter) -> Vec<u32> {
        let counts = self.engine.population_counts();
        (0..self.ids.len() as u32)
            .filter(|&t| {
                let c = counts[t as usize];
                self.allowed[t as usize]
                    && c >= filter.min_population_count.max(1)
                    && c <= filter.max_population_count
                    && namespace.is_none_or(|ns| {
                        self.namespaces.as_ref().map(|n| n[t as usize]) == Some(ns)
                    })
            })
            .collect()
    }

    /// Tests every foreground, writes the tests `store` keeps, and summarises at `alpha` (over
    /// every test, stored or not).
    #[allow(clippy::too_many_arguments)]
    pub fn run_and_write(
        &self,
        kind: UnitKind,
        foregrounds: &[Foreground],
        unit_offset: u32,
        alpha: f64,
        store: StoreTests,
        writer: &AtlasWriter,
    ) -> AnalysisResult<(EnrichmentResult, TermSummary)> {
        let result = self
            .engine
            .run(foregrounds)
            .map_err(AnalysisError::stats(format!(
                "{} enrichment of {}s",
                self.annotation,
                kind.as_str()
            )))?;
        let population_size = result.population_size;
        // Compared in log space: p and q underflow to 0 long before ln_p and ln_q do.
        let (ln_nominal, ln_alpha) = (0.05f64.ln(), alpha.ln());
        let keep = move |t: &&crate::enrichment::TermTest| match store {
            StoreTests::Nominal => t.ln_p < ln_nominal,
            StoreTests::Significant => t.ln_q < ln_alpha,
            StoreTests::All => true,
        };
        writer.insert_enrichment(result.units.iter().flat_map(|u| {
            u.tests.iter().filter(keep).map(move |t| EnrichmentRow {
                unit: unit_offset + u.unit,
                annotation: self.annotation,
                term: &self.ids[t.term as usize],
                study_count: t.study_count,
                study_size: u.study_size,
                population_count: t.population_count,
                population_size,
                fold: t.fold_enrichment(u.study_size, population_size),
                ln_p: t.ln_p,
                ln_q: t.ln_q,
            })
        }))?;
        let summary = self.summarize(&result, alpha);
        Ok((result, summary))
    }

    fn summarize(&self, result: &EnrichmentResult, alpha: f64) -> TermSummary {
        let ln_alpha = alpha.ln();
        let mut distinct = std::collections::BTreeSet::new();
        let mut units_with_significant = 0;
        let mut significant_tests = 0u64;
        for unit in &result.units {
            let before = significant_tests;
            for test in unit.tests.iter().filter(|t| t.ln_q < ln_alpha) {
                significant_tests += 1;
                distinct.insert(test.term);
            }
            units_with_significant += u32::from(significant_tests > before);
        }
        let mut by_namespace = std::collections::BTreeMap::new();
        if let Some(namespaces) = &self.namespaces {
            for &t in &distinct {
                *by_namespace
                    .entry(namespaces[t as usize].short().to_string())
                    .or_insert(0u32) += 1;
            }
        }
        TermSummary {
            tested_terms: result.tested_terms,
            terms_removed_by_size: result.terms_removed_by_size,
            population_size: result.population_size,
            total_tests: result.total_tests,
            units_tested: result.units.iter().filter(|u| u.study_size > 0).count() as u32,
            units_with_significant,
            significant_tests,
            distinct_terms: distinct.len() as u32,
            distinct_terms_by_namespace: by_namespace,
        }
    }
}

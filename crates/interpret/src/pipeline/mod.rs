//! The analysis: activations + annotations → atlas. [`analyze`] validates everything it can
//! before creating any file, then, per kind of unit (features, then neurons): summaries and
//! foregrounds, GO and family enrichment, GO coherence and residue concepts, each written to the
//! atlas as soon as it is computed. The atlas appears at `out` only when all of it is written.

mod coherence_stage;
mod concept_stage;
mod interprot_stage;
mod options;
pub mod parts;
mod rules;
mod terms;
mod units;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use plmscope_bio::Namespace;

pub use crate::atlas::UnitKind;
pub use options::{
    AnalysisInputs, AnalysisOptions, AnalysisSummary, CoherenceOptions, ConceptInput,
    ConceptSummary, FamilySpecificityOptions, FamilySpecificitySummary, GoInput, KindSummary,
    StoreTests, TermSummary,
};
pub use rules::ForegroundRule;

use crate::activations::Activations;
use crate::atlas::{AtlasWriter, CoherenceRow, ConceptRow, ProteinRow, UnitRow};
use crate::error::{AnalysisError, AnalysisResult};
use crate::go_graph::AccessionIndex;
use terms::TermSpace;

/// Runs the whole analysis and writes the atlas to `out` (see the module documentation).
pub fn analyze(
    inputs: AnalysisInputs,
    options: AnalysisOptions,
    out: &Path,
) -> AnalysisResult<AnalysisSummary> {
    let n_proteins = validate(&inputs, &options)?;
    let index = AccessionIndex::new(inputs.accessions)?;
    let go = inputs
        .go
        .map(|go| {
            terms::go_space(
                go.dag,
                go.propagated,
                &index,
                &options.namespaces,
                options.go_term_size,
                options.method,
                options.background,
            )
        })
        .transpose()?;
    let families = inputs
        .families
        .map(|records| {
            terms::family_space(
                records,
                &index,
                options.family_term_size,
                options.method,
                options.background,
            )
        })
        .transpose()?;

    let writer = AtlasWriter::create(out)?;
    write_meta(&writer, &inputs, &options, go.as_ref(), families.as_ref())?;
    write_proteins(&writer, &inputs, go.as_ref(), families.as_ref())?;
    if let (Some(space), Some(go_input)) = (&go, inputs.go) {
        let dag = go_input.dag;
        let tested = space.tested_terms(None, options.go_term_size);
        writer.insert_go_terms(tested.iter().map(|&t| {
            let term = plmscope_bio::TermIndex(t);
            (
                dag.id(term).to_string(),
                dag.name(term),
                dag.namespace(term).short(),
            )
        }))?;
    }
    let family_training = match (&families, options.family_specificity) {
        (Some(_), Some(f)) => Some(crate::family_f1::family_split(
            inputs.accessions,
            f.split_seed,
        )),
        _ => None,
    };
    let stages = Stages {
        inputs: &inputs,
        options: &options,
        writer: &writer,
        go: go.as_ref(),
        families: families.as_ref(),
        family_training: family_training.as_deref(),
        n_proteins,
    };
    let n_features = inputs.features.map_or(0, |f| f.n_units());
    let features = inputs
        .features
        .map(|acts| stages.run_kind(UnitKind::Feature, &acts, 0, options.feature_rule))
        .transpose()?;
    let neuron_rule = match options.neuron_rule {
        ForegroundRule::MatchFeatures => ForegroundRule::TopProteins(
            features
                .as_ref()
                .map(|f| f.median_study_size)
                .filter(|&m| m > 0)
                .unwrap_or(n_proteins.div_ceil(100).max(1)),
        ),
        rule => rule,
    };
    let neurons = inputs
        .neurons
        .map(|acts| stages.run_kind(UnitKind::Neuron, &acts, n_features, neuron_rule))
        .transpose()?;
    let summary = AnalysisSummary {
        atlas: out.to_path_buf(),
        proteins: n_proteins,
        go_unmatched_proteins: go.as_ref().map(|g| g.mapped.unmatched_proteins),
        family_unmatched_proteins: families.as_ref().map(|f| f.mapped.unmatched_proteins),
        features,
        neurons,
    };
    writer.set_meta("summary", json(&summary))?;
    writer.finish()?;
    Ok(summary)
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("unserialisable: {e}"))
}

/// Checks shapes and options; returns the number of proteins.
fn validate(inputs: &AnalysisInputs, options: &AnalysisOptions) -> AnalysisResult<u32> {
    let n = inputs.accessions.len();
    let n_proteins = u32::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
        AnalysisError::input(format!("{n} protein accessions"), "give 1..2^32 proteins")
    })?;
    if inputs.features.is_none() && inputs.neurons.is_none() {
        return Err(AnalysisError::input(
            "no features and no neurons",
            "give at least one kind of unit",
        ));
    }
    if let Some(f) = &inputs.features {
        f.validate(n, "features")?;
    }
    if let Some(f) = &inputs.neurons {
        f.validate(n, "neurons")?;
    }
    if let Some(lengths) = inputs.protein_lengths {
        if lengths.len() != n {
            return Err(AnalysisError::input(
                format!("{} protein lengths for {n} accessions", lengths.len()),
                "give one length per accession",
            ));
        }
    }
    options.feature_rule.validate("features")?;
    options.neuron_rule.validate("neurons")?;
    if options.feature_rule == ForegroundRule::MatchFeatures {
        return Err(AnalysisError::input(
            "features use MatchFeatures",
            "MatchFeatures is a neuron rule",
        ));
    }
    if !(options.alpha > 0.0 && options.alpha < 1.0) {
        return Err(AnalysisError::input(
            format!("alpha = {}", options.alpha),
            "alpha must be in (0, 1)",
        ));
    }
    if inputs.go.is_some() && options.namespaces.is_empty() {
        return Err(AnalysisError::input(
            "no GO namespace selected",
            "select BP, MF and/or CC",
        ));
    }
    for (name, f) in [
        ("GO", options.go_term_size),
        ("family", options.family_term_size),
    ] {
        if f.min_population_count > f.max_population_count {
            return Err(AnalysisError::input(
                format!(
                    "{name} term size filter {}..={}",
                    f.min_population_count, f.max_population_count
                ),
                "the minimum must not exceed the maximum",
            ));
        }
    }
    if let Some(c) = options.coherence {
        if c.max_terms < 2 || c.random_sets == 0 {
            return Err(AnalysisError::input(
                "coherence with fewer than 2 terms or no random sets",
                "use max_terms >= 2 and random_sets >= 1",
            ));
        }
    }
    Ok(n_proteins)
}

/// Shared context of the per-kind stages.
struct Stages<'a> {
    inputs: &'a AnalysisInputs<'a>,
    options: &'a AnalysisOptions,
    writer: &'a AtlasWriter,
    go: Option<&'a TermSpace>,
    families: Option<&'a TermSpace>,
    /// The family F1 split, when that stage runs.
    family_training: Option<&'a [bool]>,
    n_proteins: u32,
}

impl Stages<'_> {
    fn run_kind(
        &self,
        kind: UnitKind,
        activations: &Activations,
        unit_offset: u32,
        rule: ForegroundRule,
    ) -> AnalysisResult<KindSummary> {
        let options = self.options;
        let writer = self.writer;
        let prefix = kind.as_str();
        let processed = units::process_units(activations, self.n_proteins, rule, &options.summary)?;
        writer.insert_units(processed.summaries.iter().zip(&processed.foregrounds).map(
            |(s, f)| UnitRow {
                unit: unit_offset + s.unit,
                kind,
                index: s.unit,
                density: s.density,
                max: s.max,
                mean: s.mean,
                dead: s.is_dead(),
                active_proteins: s.active_proteins,
                study_size: f.proteins.len() as u32,
            },
        ))?;
        for s in &processed.summaries {
            writer.insert_examples(unit_offset + s.unit, &s.examples)?;
        }
        let mut sizes: Vec<u32> = processed
            .foregrounds
            .iter()
            .map(|f| f.proteins.len() as u32)
            .filter(|&n| n > 0)
            .collect();
        sizes.sort_unstable();
        let median_study_size = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
        writer.set_meta(&format!("{prefix}_level"), activations.level())?;
        writer.set_meta(&format!("{prefix}_units"), activations.n_units())?;
        writer.set_meta(
            &format!("{prefix}_unit_ids"),
            format!("units.unit = {unit_offset} + index"),
        )?;
        writer.set_meta(&format!("{prefix}_foreground_rule"), json(&rule))?;
        writer.set_meta(&format!("{prefix}_foreground_rule_text"), rule.describe())?;
        writer.set_meta(&format!("{prefix}_median_study_size"), median_study_size)?;

        let mut summary = KindSummary {
            kind: prefix.to_string(),
            units: activations.n_units(),
            dead_units: processed.summaries.iter().filter(|s| s.is_dead()).count() as u32,
            foreground_rule: rule.describe(),
            median_study_size,
            go: None,
            families: None,
            concepts: None,
            coherence_tests: 0,
            coherent: 0,
            family_specificity: None,
            patterns: None,
        };
        // A part tests only its own units and stores every materialised test: merge recomputes
        // q over all parts and applies `store_tests` then.
        let n = activations.n_units();
        let (local, store) = match &options.units {
            Some(range) => {
                let start = range.start.saturating_sub(unit_offset).min(n);
                let end = range.end.saturating_sub(unit_offset).min(n);
                (start..end.max(start), StoreTests::All)
            }
            None => (0..n, options.store_tests),
        };
        let tested = &processed.foregrounds[local.start as usize..local.end as usize];
        if let Some(space) = self.families {
            let (result, terms) =
                space.run_and_write(kind, tested, unit_offset, options.alpha, store, writer)?;
            writer.set_meta(&format!("{prefix}_pfam_total_tests"), result.total_tests)?;
            summary.families = Some(terms);
        }
        if let (Some(space), Some(go_input)) = (self.go, self.inputs.go) {
            let (result, terms) =
                space.run_and_write(kind, tested, unit_offset, options.alpha, store, writer)?;
            writer.set_meta(&format!("{prefix}_go_total_tests"), result.total_tests)?;
            summary.go = Some(terms);
            let coherence = options.coherence.filter(|_| options.units.is_none());
            if let (Some(coherence), Some(namespaces)) = (coherence, &space.namespaces) {
                let candidates: BTreeMap<Namespace, Vec<u32>> = options
                    .namespaces
                    .iter()
                    .map(|&ns| (ns, space.tested_terms(Some(ns), options.go_term_size)))
                    .filter(|(_, pool)| pool.len() >= 2)
                    .collect();
                let tests = coherence_stage::coherence_tests(
                    go_input.dag,
                    &result,
                    namespaces,
                    &candidates,
                    options.alpha,
                    &coherence,
                );
                summary.coherence_tests = tests.len() as u32;
                summary.coherent = tests
                    .iter()
                    .filter(|t| t.2.p_shortest_path.is_some_and(|p| p < options.alpha))
                    .count() as u32;
                writer.insert_coherence(tests.iter().map(|(unit, ns, test)| CoherenceRow {
                    unit: unit_offset + unit,
                    namespace: ns.short(),
                    test: *test,
                }))?;
            }
        }
        if let Some(input) = self.inputs.concepts {
            let scores = concept_stage::concept_scores(
                activations,
                input,
                self.n_proteins as usize,
                &options.concepts,
                local.clone(),
            )?;
            if let Some(scores) = scores {
                writer.insert_concepts(scores.iter().map(|s| ConceptRow {
                    unit: unit_offset + s.unit,
                    concept: &input.names[s.concept as usize],
                    threshold: s.threshold,
                    precision: s.precision,
                    recall: s.recall,
                    f1: s.f1,
                    domain_recall: s.domain_recall,
                    domain_f1: s.domain_f1,
                    train_score: s.train_score,
                }))?;
                let good: Vec<_> = scores
                    .iter()
                    .filter(|s| s.f1 >= options.concept_min_f1)
                    .collect();
                summary.concepts = Some(ConceptSummary {
                    pairs: scores.len() as u32,
                    units_with_concept: good.iter().map(|s| s.unit).collect::<BTreeSet<_>>().len()
                        as u32,
                    distinct_concepts: good
                        .iter()
                        .map(|s| s.concept)
                        .collect::<BTreeSet<_>>()
                        .len() as u32,
                });
            } else {
                writer.set_meta(
                    &format!("{prefix}_concepts"),
                    "not computed: protein-level activations have no residues",
                )?;
            }
        }
        let family_task = match (self.families, self.family_training) {
            (Some(space), Some(is_training)) => Some((
                interprot_stage::FamilyTask {
                    families_of: &space.mapped.term_sets,
                    is_training,
                },
                space,
            )),
            _ => None,
        };
        (summary.family_specificity, summary.patterns) = interprot_stage::run_and_write(
            activations,
            self.n_proteins,
            self.inputs.protein_lengths,
            family_task
                .as_ref()
                .map(|(task, space)| (task, &space.ids[..])),
            options.patterns.as_ref(),
            unit_offset,
            options.concept_min_f1,
            writer,
            local,
        )?;
        writer.set_meta(&format!("{prefix}_summary"), json(&summary))?;
        Ok(summary)
    }
}

fn write_meta(
    writer: &AtlasWriter,
    inputs: &AnalysisInputs,
    options: &AnalysisOptions,
    go: Option<&TermSpace>,
    families: Option<&TermSpace>,
) -> AnalysisResult<()> {
    let set = |k: &str, v: String| writer.set_meta(k, v);
    set("format", "plmscope.atlas".into())?;
    set("plmscope_version", env!("CARGO_PKG_VERSION").into())?;
    set("options", json(options))?;
    set("proteins", inputs.accessions.len().to_string())?;
    set("correction_method", json(&options.method))?;
    set(
        "correction_scope",
        "over every test of one kind (feature | neuron) and one annotation source (go | pfam)"
            .into(),
    )?;
    set("alpha", options.alpha.to_string())?;
    set("background", json(&options.background))?;
    set("store_tests", json(&options.store_tests))?;
    set(
        "enrichment_rows",
        format!(
            "{}; every test counts in the correction's m (meta <kind>_<source>_total_tests), \
             stored or not; a tested term a unit's study set never touches has p = 1 exactly and \
             is never stored",
            match options.store_tests {
                StoreTests::Nominal => "tests with p < 0.05",
                StoreTests::Significant => "tests with q < alpha",
                StoreTests::All => "every test with study_count >= 1",
            }
        ),
    )?;
    set("inputs", json(&options.inputs))?;
    set("test", "one-sided hypergeometric (Fisher's exact test, alternative greater), exact, in log space; ln_p/ln_q keep values below 1e-308".into())?;
    if let (Some(space), Some(g)) = (go, inputs.go) {
        let ns: Vec<&str> = options.namespaces.iter().map(|n| n.short()).collect();
        set("go_namespaces", ns.join(","))?;
        set("go_term_size", json(&options.go_term_size))?;
        set("go_tested_terms", space.engine.tested_terms().to_string())?;
        set(
            "go_population_size",
            space.engine.population_size().to_string(),
        )?;
        set(
            "go_unmatched_proteins",
            space.mapped.unmatched_proteins.to_string(),
        )?;
        set(
            "go_records_without_protein",
            space.mapped.records_without_protein.to_string(),
        )?;
        set(
            "go_ontology_version",
            g.dag.data_version().unwrap_or("unknown").into(),
        )?;
        set(
            "go_propagation",
            "is_a and part_of (true-path rule); obsolete ids dropped, alt_ids mapped".into(),
        )?;
        let r = g.report;
        set("go_annotations_read", r.annotations.to_string())?;
        set(
            "go_obsolete_ids_dropped",
            r.obsolete_dropped.len().to_string(),
        )?;
        set(
            "go_obsolete_annotations_dropped",
            r.obsolete_dropped.values().sum::<usize>().to_string(),
        )?;
        set("go_alt_ids_mapped", r.alt_ids_mapped.len().to_string())?;
        set("go_unknown_ids", r.unknown.len().to_string())?;
        set(
            "go_unknown_annotations",
            r.unknown.values().sum::<usize>().to_string(),
        )?;
        set(
            "go_proteins_without_terms",
            r.proteins_without_terms.to_string(),
        )?;
    }
    if let Some(space) = families {
        set("pfam_term_size", json(&options.family_term_size))?;
        set("pfam_tested_terms", space.engine.tested_terms().to_string())?;
        set(
            "pfam_population_size",
            space.engine.population_size().to_string(),
        )?;
        set(
            "pfam_unmatched_proteins",
            space.mapped.unmatched_proteins.to_string(),
        )?;
        set(
            "pfam_records_without_protein",
            space.mapped.records_without_protein.to_string(),
        )?;
    }
    if inputs.concepts.is_some() {
        set("concept_options", format!("{:?}", options.concepts))?;
        set("concept_min_f1", options.concept_min_f1.to_string())?;
    }
    if let (Some(_), Some(f)) = (families, options.family_specificity) {
        set("family_specificity", format!(
            "InterProt (interprot/make_viz_files/compute_family_specificity.py): per unit, the families of its top protein; activation / unit max >= t predicts membership, t from 0.3..0.9 step 0.1 by F1 on the training half, scores on the other half; split: proteins ordered by sha256(\"{}:<accession>\"), the first floor(n/2) train",
            f.split_seed
        ))?;
    }
    if let Some(p) = options.patterns {
        set("patterns", format!(
            "InterProt (interprot/make_viz_files/analyze_viz_files.py classify_into_type): residue-level units only; examples = proteins above 0.75 of the unit max, at most {}; fewer than {} = not_enough_data",
            p.max_examples, p.min_examples
        ))?;
    }
    if let Some(c) = options.coherence {
        set("coherence", format!(
            "per unit and namespace: the {} most significant terms (q < alpha); mean pairwise undirected shortest path and deepest-common-ancestor depth over is_a/part_of; p against {} random sets of tested terms of the same size and namespace (seed {})",
            c.max_terms, c.random_sets, c.seed
        ))?;
    }
    Ok(())
}

fn write_proteins(
    writer: &AtlasWriter,
    inputs: &AnalysisInputs,
    go: Option<&TermSpace>,
    families: Option<&TermSpace>,
) -> AnalysisResult<()> {
    writer
        .insert_proteins(
            inputs
                .accessions
                .iter()
                .enumerate()
                .map(|(p, accession)| ProteinRow {
                    protein: p as u32,
                    accession,
                    length: inputs.protein_lengths.map(|l| l[p]),
                    organism: None,
                    families: families.map(|f| {
                        f.mapped.term_sets[p]
                            .iter()
                            .map(|&t| f.ids[t as usize].as_str())
                            .collect::<Vec<_>>()
                            .join(";")
                    }),
                    go_annotated: go.is_some_and(|g| g.annotated(p)),
                }),
        )
        .map(drop)
}

//! Inputs, options and the summary of [`super::analyze`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use plmscope_bio::{GoDag, Namespace, PropagatedAnnotation, PropagationReport};

use super::rules::ForegroundRule;
use crate::activations::Activations;
use crate::concepts::{ConceptOptions, ConceptSegment};
use crate::enrichment::{Background, CorrectionMethod, TermSizeFilter};
use crate::patterns::PatternOptions;
use crate::provenance::InputFile;
use crate::summaries::SummaryOptions;

/// GO annotations propagated by `bio` (`GoDag::propagate`), with its report.
#[derive(Debug, Clone, Copy)]
pub struct GoInput<'a> {
    pub dag: &'a GoDag,
    pub propagated: &'a [PropagatedAnnotation],
    pub report: &'a PropagationReport,
}

/// Residue concept labels for InterPLM-style scores. Segments index proteins by their position
/// in [`AnalysisInputs::accessions`]; concept `c` is called `names[c]`.
#[derive(Debug, Clone)]
pub struct ConceptInput {
    pub protein_lengths: Vec<u32>,
    pub names: Vec<String>,
    pub segments: Vec<ConceptSegment>,
    /// Proteins whose residues choose each pair's threshold; the others report the scores.
    pub is_training: Vec<bool>,
}

/// Everything one analysis reads. Features and neurons may both be given: they land in one atlas
/// as `units.kind` = `feature` and `neuron`.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisInputs<'a> {
    /// Protein accessions: row `r` of protein-level activations is `accessions[r]`; residue
    /// rows name their protein by this index.
    pub accessions: &'a [String],
    /// Protein lengths for the `proteins` table (optional).
    pub protein_lengths: Option<&'a [u32]>,
    /// SAE (or transcoder) features.
    pub features: Option<Activations<'a>>,
    /// Model neurons (raw dimensions): the baseline.
    pub neurons: Option<Activations<'a>>,
    pub go: Option<GoInput<'a>>,
    /// `(accession, Pfam family ids)`: family enrichment with the same machinery.
    pub families: Option<&'a [(String, Vec<String>)]>,
    pub concepts: Option<&'a ConceptInput>,
}

/// GO coherence settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoherenceOptions {
    /// A unit's most significant terms per namespace that enter the measure.
    pub max_terms: usize,
    /// Random term sets of the same size (drawn from the namespace's tested terms).
    pub random_sets: u32,
    pub seed: u64,
}

/// Which enrichment tests become `enrichment` rows. Every test counts in the correction
/// whatever is stored (`meta.<kind>_<source>_total_tests` records m); storing every test was
/// measured at 93% of a 259 MB atlas (ARCHITECTURE.md), hence the nominal default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreTests {
    /// Tests with p < 0.05.
    #[default]
    Nominal,
    /// Tests with q < `alpha`.
    Significant,
    /// Every materialised test (study_count >= 1; the others have p = 1 exactly).
    All,
}

/// InterProt's family specificity ([`crate::family_f1`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FamilySpecificityOptions {
    /// Seed of the protein split ([`crate::family_f1::family_split`]).
    pub split_seed: u64,
}

impl Default for FamilySpecificityOptions {
    /// Seed 42, InterProt's `random_state`.
    fn default() -> Self {
        FamilySpecificityOptions { split_seed: 42 }
    }
}

/// Every choice of an analysis; all of it is recorded in the atlas `meta` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnalysisOptions {
    pub feature_rule: ForegroundRule,
    pub neuron_rule: ForegroundRule,
    /// GO namespaces tested (short names BP, MF, CC in `meta`).
    #[serde(skip)]
    pub namespaces: Vec<Namespace>,
    pub go_term_size: TermSizeFilter,
    pub family_term_size: TermSizeFilter,
    pub method: CorrectionMethod,
    pub background: Background,
    /// Significance level on q for the summary counts and coherence.
    pub alpha: f64,
    pub summary: SummaryOptions,
    /// `None` skips coherence.
    pub coherence: Option<CoherenceOptions>,
    #[serde(skip)]
    pub concepts: ConceptOptions,
    /// A (unit, concept) pair counts in the summary when its held-out F1 reaches this.
    pub concept_min_f1: f64,
    /// Which enrichment tests are stored.
    pub store_tests: StoreTests,
    /// InterProt family F1, run when families are given; `None` skips it.
    pub family_specificity: Option<FamilySpecificityOptions>,
    /// InterProt pattern classes, run on residue-level units; `None` skips them.
    pub patterns: Option<PatternOptions>,
    /// The files the caller read (see [`crate::provenance::describe_file`]), written to
    /// `meta.inputs` as a JSON array.
    #[serde(skip)]
    pub inputs: Vec<InputFile>,
    /// `Some(range)`: this run is one part of a sharded analysis ([`super::parts`]) and owns the
    /// units `range` (atlas unit ids: features first, then neurons). Every unit is still
    /// summarised (the neurons' matched rule needs the features' median study size), but only
    /// the part's units are tested for enrichment, every materialised test is stored (merge
    /// recomputes q over all parts), coherence is left to merge, and [`super::parts::trim_to_units`]
    /// keeps only the part's rows. Not recorded in `meta.options`.
    #[serde(skip)]
    pub units: Option<std::ops::Range<u32>>,
}

fn all_namespaces() -> Vec<Namespace> {
    vec![
        Namespace::BiologicalProcess,
        Namespace::MolecularFunction,
        Namespace::CellularComponent,
    ]
}

impl Default for AnalysisOptions {
    /// - features: TopK membership (the seed paper's study set);
    /// - neurons: top proteins matched to the features' median study-set size, so a neuron is
    ///   tested with as much power as a typical feature (a fixed percentile would give every
    ///   neuron 1% of the proteome whatever the feature sparsity);
    /// - all three namespaces (the seed paper used BP only: pass `[BiologicalProcess]`);
    /// - GO terms with 5..=1000 background proteins: below 5 a term cannot carry a convincing
    ///   overlap and only adds tests; above 1000 terms are near-root ("cytoplasm", "metabolic
    ///   process") in proteomes of 5,000-20,000 and say nothing specific about a unit;
    /// - families with 3..=1000 members (most Pfam families are small within one proteome);
    /// - Benjamini-Hochberg at 0.05 over all tests of one kind and annotation source;
    /// - background: proteins with at least one allowed annotation (ARCHITECTURE.md);
    /// - enrichment rows stored for p < 0.05; InterProt family F1 and pattern classes on.
    fn default() -> Self {
        AnalysisOptions {
            feature_rule: ForegroundRule::TopKMember,
            neuron_rule: ForegroundRule::MatchFeatures,
            namespaces: all_namespaces(),
            go_term_size: TermSizeFilter {
                min_population_count: 5,
                max_population_count: 1000,
            },
            family_term_size: TermSizeFilter {
                min_population_count: 3,
                max_population_count: 1000,
            },
            method: CorrectionMethod::BenjaminiHochberg,
            background: Background::AnnotatedOnly,
            alpha: 0.05,
            summary: SummaryOptions::default(),
            coherence: Some(CoherenceOptions {
                max_terms: 10,
                random_sets: 100,
                seed: 0,
            }),
            concepts: ConceptOptions::default(),
            concept_min_f1: 0.5,
            store_tests: StoreTests::default(),
            family_specificity: Some(FamilySpecificityOptions::default()),
            patterns: Some(PatternOptions::default()),
            inputs: Vec::new(),
            units: None,
        }
    }
}

/// Enrichment counts of one kind against one annotation source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TermSummary {
    pub tested_terms: u32,
    pub terms_removed_by_size: u32,
    pub population_size: u32,
    /// Tests counted for the correction (tested terms × units with a non-empty study set).
    pub total_tests: u64,
    /// Units with a non-empty study set.
    pub units_tested: u32,
    /// Units with at least one term at q < alpha.
    pub units_with_significant: u32,
    pub significant_tests: u64,
    /// Distinct terms significant for at least one unit.
    pub distinct_terms: u32,
    /// The same per GO namespace (BP, MF, CC); empty for families.
    pub distinct_terms_by_namespace: BTreeMap<String, u32>,
}

/// Concept counts of one kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConceptSummary {
    pub pairs: u32,
    /// Units with a concept at held-out F1 >= `concept_min_f1`.
    pub units_with_concept: u32,
    pub distinct_concepts: u32,
}

/// What one kind of unit yielded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KindSummary {
    /// `feature` or `neuron`.
    pub kind: String,
    pub units: u32,
    pub dead_units: u32,
    /// The rule as applied (MatchFeatures resolved).
    pub foreground_rule: String,
    pub median_study_size: u32,
    pub go: Option<TermSummary>,
    pub families: Option<TermSummary>,
    pub concepts: Option<ConceptSummary>,
    /// Unit-namespace pairs with a coherence test, and those with shortest-path p < alpha.
    pub coherence_tests: u32,
    pub coherent: u32,
    pub family_specificity: Option<FamilySpecificitySummary>,
    /// Units per pattern class (atlas spelling), at residue level.
    pub patterns: Option<BTreeMap<String, u32>>,
}

/// Family F1 counts of one kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FamilySpecificitySummary {
    /// (unit, family) pairs scored.
    pub pairs: u32,
    /// Units with a family at held-out F1 >= `concept_min_f1`, and the distinct families.
    pub units_with_family: u32,
    pub distinct_families: u32,
}

/// What [`super::analyze`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisSummary {
    pub atlas: PathBuf,
    pub proteins: u32,
    /// Analysed proteins without a GO record / without a family record.
    pub go_unmatched_proteins: Option<usize>,
    pub family_unmatched_proteins: Option<usize>,
    pub features: Option<KindSummary>,
    pub neurons: Option<KindSummary>,
}

//! The analyze stage: activation or code sets + annotations → one atlas (SQLite).
//!
//! Everything that can be checked is read and checked before the analysis starts: the sets
//! (and that features and neurons hold the same proteins in the same order), every annotation
//! and residue-label file (format told from its content, errors naming file and line), the GO
//! DAG. Each annotation source is optional: GO enrichment runs when an ontology and GO
//! annotations are given, Pfam enrichment when a file carries Pfam, residue concepts when
//! residue-level units meet residue labels. The statistics and the atlas belong to
//! `plmscope-interpret`, which writes the atlas under a temporary name and renames it only when
//! complete, so a failed run leaves no atlas.
//!
//! # Sharding
//! With [`AnalyzeRequest::shard`] (`--shard i/N`), part `i` owns a contiguous run of the units
//! (features `0..F`, then neurons; [`crate::shard::balanced_ranges`] with weight 1 per unit)
//! and writes the directory `out` with [`PART_ATLAS`] and `part.json`. Every part reads all
//! inputs and summarises every unit (the neurons' matched study-set size is the features'
//! median), but tests enrichment, scores concepts, family F1 and pattern classes only for its
//! units; it keeps every materialised enrichment test (merge recomputes q over all parts and
//! then applies `--store-tests`) and leaves coherence to merge. Tables without a `unit` column
//! are written whole by every part; the describe tables (`protein_activations`,
//! `residue_windows`) are computed whole and trimmed to the part's units, and `similar_units`
//! only for the part's features.
//! [`crate::merge`] joins the parts (`plmscope_interpret::pipeline::parts`).
//!
//! ```no_run
//! use plmscope_pipeline::analyze::{analyze, AnalyzeRequest};
//! use plmscope_pipeline::NoProgress;
//! # fn main() -> anyhow::Result<()> {
//! let mut request = AnalyzeRequest::new("atlas.sqlite".into());
//! request.neurons = Some("acts/layer6.resid_post.residue".into());
//! request.residue_labels = vec!["tmbed=tmbed/alpha.fasta".parse()?];
//! let outcome = analyze(&request, &NoProgress)?;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

mod annotations;
mod concepts;
mod describe_tables;
mod parse;
mod summary;
mod units;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use plmscope_bio::{GoDag, Namespace};
use plmscope_interpret::atlas::export_tsv;
use plmscope_interpret::enrichment::{CorrectionMethod, TermSizeFilter};
use plmscope_interpret::pipeline::{ForegroundRule, GoInput, StoreTests};
use plmscope_interpret::provenance::{describe_file, InputFile};
use plmscope_interpret::{AnalysisInputs, AnalysisOptions};
use plmscope_store::MANIFEST_FILE;

use crate::shard::{
    balanced_ranges, input_hash, prepare_part_dir, write_part, PartStage, PartWrite, ShardSpec,
};
use crate::Progress;
use annotations::Annotations;
use units::{load_codes, load_dense, open_set, Proteins};

pub use annotations::{detect_format, AnnotationFormat};
pub(crate) use describe_tables::staging_path;
pub use parse::{
    parse_correction, parse_namespaces, parse_rule, parse_store_tests, LabelKind, LabelSource,
    LigandClass,
};
pub use summary::{write_description_rows, AnalyzeOutcome, ConceptCounts, GoIdsDropped, TsvExport};

/// Everything one analysis reads and every choice it makes.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeRequest {
    /// Code set (from encode): its dictionary latents are the features.
    pub codes: Option<PathBuf>,
    /// Activation set whose dimensions are analysed as the features (instead of `codes`).
    pub activations: Option<PathBuf>,
    /// Activation set whose dimensions are the neuron baseline.
    pub neurons: Option<PathBuf>,
    /// Activation set listing the proteins of `codes` (default: `neurons`).
    pub proteins_from: Option<PathBuf>,
    /// Annotation files (UniProt TSV or flat file, GAF, GO list CSV; format told from content).
    pub annotations: Vec<PathBuf>,
    /// The Gene Ontology (OBO); needed exactly when some annotation carries GO.
    pub go: Option<PathBuf>,
    /// Extra GO annotation files read as GAF.
    pub gaf: Vec<PathBuf>,
    /// Residue label files for concept scores (residue-level units only).
    pub residue_labels: Vec<LabelSource>,
    /// GO namespaces tested.
    pub namespaces: Vec<Namespace>,
    /// GO terms tested, by annotated background proteins.
    pub go_term_size: TermSizeFilter,
    pub correction: CorrectionMethod,
    /// Significance level on the corrected q.
    pub alpha: f64,
    /// `None`: TopK membership for codes, the top 1% of proteins for dense features.
    pub feature_rule: Option<ForegroundRule>,
    pub neuron_rule: ForegroundRule,
    /// The atlas to write.
    pub out: PathBuf,
    /// Which enrichment tests become atlas rows (all of them count in the correction).
    pub store_tests: StoreTests,
    /// Also export every atlas table as `<dir>/<table>.tsv`.
    pub tsv: Option<PathBuf>,
    /// FASTA files whose UniProt headers (`sp|P12345|NAME Protein name OS=... GN=...`) give
    /// protein names, genes and organisms for `describe` prompts (`protein_info`).
    pub fasta: Vec<PathBuf>,
    /// Also store residue windows of residue-level units (what `describe --protocol delphi`
    /// reads; sequences from `fasta`). Off by default: up to 250 windows per unit.
    pub residue_windows: bool,
    /// `--shard i/N`: analyse only part `i` of the units and write a part into the directory
    /// `out` (`atlas.sqlite` + `part.json`) for [`crate::merge`]; see the module docs
    /// ("Sharding").
    pub shard: Option<ShardSpec>,
}

impl AnalyzeRequest {
    /// A request with the command line's defaults and no inputs: all GO namespaces, terms of
    /// 5..=1000 proteins, Benjamini-Hochberg at 0.05, neurons matched to the features.
    pub fn new(out: PathBuf) -> Self {
        let defaults = AnalysisOptions::default();
        AnalyzeRequest {
            codes: None,
            activations: None,
            neurons: None,
            proteins_from: None,
            annotations: Vec::new(),
            go: None,
            gaf: Vec::new(),
            residue_labels: Vec::new(),
            namespaces: defaults.namespaces,
            go_term_size: defaults.go_term_size,
            correction: defaults.method,
            alpha: defaults.alpha,
            feature_rule: None,
            neuron_rule: defaults.neuron_rule,
            out,
            store_tests: defaults.store_tests,
            tsv: None,
            fasta: Vec::new(),
            residue_windows: false,
            shard: None,
        }
    }

    /// Refuses requests that cannot run, before any file is read.
    fn check(&self) -> Result<()> {
        if self.codes.is_none() && self.activations.is_none() && self.neurons.is_none() {
            bail!("nothing to analyse: give --codes or --activations (features) and/or --neurons");
        }
        if self.codes.is_some() && self.activations.is_some() {
            bail!("give the features once: --codes or --activations, not both");
        }
        if self.proteins_from.is_some() && self.codes.is_none() {
            bail!("--proteins-from lists the proteins of --codes; give --codes too");
        }
        if self.annotations.is_empty() && self.gaf.is_empty() && self.residue_labels.is_empty() {
            bail!(
                "nothing to test the units against: give --annotations (GO, Pfam, UniProt \
                 features), --gaf or --residue-labels"
            );
        }
        if let (Some(spec), Some(dir)) = (self.shard, &self.tsv) {
            bail!(
                "--shard {spec} writes a part, which holds only some units: leave out --tsv {} \
                 and export the merged atlas (plmscope merge, then plmscope export)",
                dir.display()
            );
        }
        Ok(())
    }

    /// Every file the request names, with its role, for the atlas's provenance; an activation
    /// or code set is named by its manifest, which holds every shard's sha256.
    pub fn input_files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut files = Vec::new();
        let sets = [
            ("codes", &self.codes),
            ("activations", &self.activations),
            ("neurons", &self.neurons),
            ("proteins_from", &self.proteins_from),
        ];
        for (role, dir) in sets {
            if let Some(dir) = dir {
                files.push((role, dir.join(MANIFEST_FILE)));
            }
        }
        files.extend(self.annotations.iter().map(|p| ("annotations", p.clone())));
        files.extend(self.go.iter().map(|p| ("go", p.clone())));
        files.extend(self.gaf.iter().map(|p| ("gaf", p.clone())));
        files.extend(self.fasta.iter().map(|p| ("fasta", p.clone())));
        for source in &self.residue_labels {
            let role = match source.kind {
                LabelKind::Tmbed => "residue_labels:tmbed",
                LabelKind::Binding(_) => "residue_labels:binding",
                LabelKind::UniProt => "residue_labels:uniprot",
            };
            files.push((role, source.path.clone()));
        }
        files
    }
}

/// Size, sha256 and version of every input file, each with its role.
fn describe_inputs(req: &AnalyzeRequest) -> Result<Vec<InputFile>> {
    req.input_files()
        .into_iter()
        .map(|(role, path)| {
            let mut file = describe_file(&path)
                .with_context(|| format!("recording the provenance of {}", path.display()))?;
            file.role = Some(role.to_string());
            Ok(file)
        })
        .collect()
}

/// Runs the analysis of `req` and writes its atlas (and TSV export); see the module docs.
pub fn analyze(req: &AnalyzeRequest, progress: &dyn Progress) -> Result<AnalyzeOutcome> {
    req.check()?;
    progress.start("analyze", None, "");
    let outcome = match req.shard {
        Some(spec) => run_part(req, spec, progress),
        None => run(req, None, progress),
    };
    progress.finish();
    outcome
}

/// The part atlas inside a part directory.
pub const PART_ATLAS: &str = "atlas.sqlite";

/// `--shard i/N`: the analysis of part `i`'s units into the part directory `req.out`.
fn run_part(
    req: &AnalyzeRequest,
    spec: ShardSpec,
    progress: &dyn Progress,
) -> Result<AnalyzeOutcome> {
    let dir = &req.out;
    if dir.is_file() {
        bail!(
            "--shard {spec}: --out {} is a file; a part is a directory (atlas.sqlite and \
             part.json), merged by plmscope merge PART... --out ATLAS",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    prepare_part_dir(dir)?;
    let mut inner = req.clone();
    inner.out = dir.join(PART_ATLAS);
    inner.shard = None;
    run(&inner, Some((spec, req)), progress)
}

/// The sha256 of what a part depends on: the request (less `out` and `shard`, which differ
/// between parts) and the content of every input file.
fn part_input_hash(req: &AnalyzeRequest, files: &[InputFile]) -> String {
    let mut common = req.clone();
    common.out = PathBuf::new();
    common.shard = None;
    let request = format!("{common:?}");
    let mut hashed: Vec<(&str, &[u8])> = vec![("request", request.as_bytes())];
    for file in files {
        hashed.push((file.role.as_deref().unwrap_or(""), file.sha256.as_bytes()));
    }
    input_hash(&hashed)
}

fn run(
    req: &AnalyzeRequest,
    part: Option<(ShardSpec, &AnalyzeRequest)>,
    progress: &dyn Progress,
) -> Result<AnalyzeOutcome> {
    progress.message("opening activation sets");
    let neuron_set = req.neurons.as_deref().map(open_set).transpose()?;
    let feature_set = req.activations.as_deref().map(open_set).transpose()?;
    let proteins_set = req.proteins_from.as_deref().map(open_set).transpose()?;
    let reference = proteins_set
        .as_ref()
        .or(feature_set.as_ref())
        .or(neuron_set.as_ref())
        .ok_or_else(|| {
            anyhow!(
                "--codes needs the list of its proteins: pass --neurons DIR or --proteins-from \
                 DIR (the activation set the codes were encoded from)"
            )
        })?;
    let proteins = Proteins::of(reference)?;
    for set in feature_set.iter().chain(&neuron_set) {
        proteins.check_same(set, reference)?;
    }

    let mut annotations = Annotations::default();
    for path in &req.annotations {
        progress.message(&format!("reading {}", path.display()));
        annotations.read(path, detect_format(path)?)?;
    }
    for path in &req.gaf {
        progress.message(&format!("reading {}", path.display()));
        annotations.read(path, AnnotationFormat::Gaf)?;
    }
    let dag = read_go(req, &annotations, progress)?;
    let go = dag.as_ref().map(|dag| {
        dag.propagate(
            annotations
                .table
                .go_sets()
                .filter(|(accession, _)| annotations.go_records.contains(*accession)),
        )
    });
    let families: Vec<(String, Vec<String>)> = annotations
        .table
        .iter()
        .filter(|p| annotations.pfam_records.contains(&p.accession))
        .map(|p| (p.accession.clone(), p.pfam.iter().cloned().collect()))
        .collect();

    // The activations last: they may be gigabytes, and every cheaper check has passed.
    let features = match (&req.codes, &feature_set) {
        (Some(dir), _) => {
            progress.message(&format!("reading codes {}", dir.display()));
            Some(load_codes(dir, &proteins, reference)?)
        }
        (None, Some(set)) => {
            progress.message(&format!("reading {}", set.dir().display()));
            Some(load_dense(set)?)
        }
        (None, None) => None,
    };
    let neurons = neuron_set
        .as_ref()
        .map(|set| {
            progress.message(&format!("reading {}", set.dir().display()));
            load_dense(set)
        })
        .transpose()?;

    let residue_level = features
        .iter()
        .chain(&neurons)
        .any(|u| u.residue_rows.is_some());
    let mut warnings = Vec::new();
    let concepts = concepts::concept_input(
        &proteins,
        &annotations.table,
        &req.residue_labels,
        residue_level,
        &mut warnings,
    )?;

    progress.message("hashing the input files");
    let input_files = describe_inputs(req)?;
    // A part's units: the combined list (features, then neurons) cut into N contiguous runs
    // of about equal unit count.
    let n_units = features.as_ref().map_or(0, |u| u.activations().n_units())
        + neurons.as_ref().map_or(0, |u| u.activations().n_units());
    let unit_weights = vec![1u64; n_units as usize];
    let unit_ranges = part.map(|(spec, _)| balanced_ranges(&unit_weights, spec.count));
    let part_units = part
        .zip(unit_ranges.as_ref())
        .map(|((spec, _), ranges)| ranges[spec.index].start as u32..ranges[spec.index].end as u32);
    let default_feature_rule = match (&features, req.codes.is_some()) {
        (Some(_), false) => ForegroundRule::TopProteins(proteins.len().div_ceil(100).max(1) as u32),
        _ => ForegroundRule::TopKMember,
    };
    let options = AnalysisOptions {
        feature_rule: req.feature_rule.unwrap_or(default_feature_rule),
        neuron_rule: req.neuron_rule,
        namespaces: req.namespaces.clone(),
        go_term_size: req.go_term_size,
        method: req.correction,
        alpha: req.alpha,
        store_tests: req.store_tests,
        inputs: input_files.clone(),
        units: part_units.clone(),
        ..AnalysisOptions::default()
    };
    let inputs = AnalysisInputs {
        accessions: &proteins.accessions,
        protein_lengths: Some(&proteins.lengths),
        features: features.as_ref().map(|u| u.activations()),
        neurons: neurons.as_ref().map(|u| u.activations()),
        go: dag
            .as_ref()
            .zip(go.as_ref())
            .map(|(dag, (propagated, report))| GoInput {
                dag,
                propagated,
                report,
            }),
        families: (!annotations.pfam_records.is_empty()).then_some(&families[..]),
        concepts: concepts.as_ref(),
    };
    if let Some(parent) = req.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder of {}", req.out.display()))?;
    }
    progress.message("analysing units");
    // The atlas is finished under a staging name (the analysis, then what `describe` prompts
    // need) and moved into place only when complete, so a failed run leaves no atlas.
    let staging = describe_tables::staging_path(&req.out);
    let mut summary = plmscope_interpret::analyze(inputs, options.clone(), &staging)
        .with_context(|| format!("analysis for {}", req.out.display()))?;
    progress.message("writing per-protein activations and protein names for describe");
    describe_tables::write(
        &staging,
        &proteins,
        features.as_ref().map(|u| u.activations()),
        neurons.as_ref().map(|u| u.activations()),
        &annotations.table,
        dag.as_ref(),
        req,
    )?;
    record_source(req, &staging)?;
    if let Some(warning) = record_similar_units(req, &staging, part_units.clone())? {
        warnings.push(warning);
    }
    if let (Some(units), Some((spec, _))) = (&part_units, part) {
        warnings.push(format!(
            "part {spec} holds units {}..{}: its q-values, significance counts and coherence \
             are not final; plmscope merge recomputes them over all {} parts",
            units.start, units.end, spec.count
        ));
        plmscope_interpret::pipeline::parts::trim_to_units(&staging, units.clone())
            .with_context(|| format!("keeping the part's units in {}", req.out.display()))?;
    }
    plmscope_interpret::atlas::gather_statistics(&staging)?;
    plmscope_fsutil::persist(&staging, &req.out)?;
    if let (Some((spec, outer)), Some(ranges)) = (part, &unit_ranges) {
        write_part(
            &outer.out,
            PartWrite {
                stage: PartStage::Analyze,
                spec,
                input_sha256: part_input_hash(outer, &input_files),
                weight: "units",
                ranges,
                weights: &unit_weights,
                sets: Vec::new(),
                files: vec![PART_ATLAS.to_string()],
                go: req.go.clone(),
            },
        )?;
    }
    summary.atlas = req.out.clone();
    let descriptions = plmscope_interpret::describe::description_stats(&req.out)
        .with_context(|| format!("reading the descriptions of {}", req.out.display()))?;
    let tsv = match &req.tsv {
        Some(dir) => {
            progress.message(&format!("exporting tables to {}", dir.display()));
            let files = export_tsv(&req.out, dir)?;
            Some(TsvExport {
                dir: dir.clone(),
                files,
            })
        }
        None => None,
    };
    Ok(AnalyzeOutcome {
        summary,
        options,
        feature_source: features.map(|u| u.source),
        neuron_source: neurons.map(|u| u.source),
        go_ids_dropped: go.as_ref().map(|(_, report)| GoIdsDropped::of(report)),
        concepts: concepts.as_ref().map(ConceptCounts::of),
        tsv,
        warnings,
        descriptions,
    })
}

/// Meta `source`: the model, layer, site, level and dictionary (with its recorded FVE, L0 and
/// dead fraction) the atlas describes, from the code set's (or neuron set's) manifest, so
/// `plmscope compare` needs no file beside the atlas.
fn record_source(req: &AnalyzeRequest, atlas: &std::path::Path) -> Result<()> {
    let Some(dir) = req.codes.as_deref().or(req.neurons.as_deref()) else {
        return Ok(());
    };
    let manifest = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let source = plmscope_interpret::compare::source_from_manifest(&json, &manifest, &req.out);
    plmscope_interpret::compare::record_source(atlas, &source)
        .with_context(|| format!("recording the source of {}", req.out.display()))
}

/// Features nearest each feature by decoder cosine (table `similar_units`, shown by `serve`), from
/// the dictionary the code set records. A dictionary that cannot be found or read is a warning,
/// not an error: the atlas is complete without the table. A part (`units`, over features then
/// neurons) computes only its own features' rows.
fn record_similar_units(
    req: &AnalyzeRequest,
    atlas: &std::path::Path,
    units: Option<std::ops::Range<u32>>,
) -> Result<Option<String>> {
    const NEIGHBOURS: usize = 10;
    let Some(codes) = req.codes.as_deref() else {
        return Ok(None);
    };
    let manifest = codes.join("manifest.json");
    let recorded = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| {
            json.pointer("/dictionary/id")
                .and_then(|id| id.as_str())
                .map(str::to_string)
        });
    let Some(recorded) = recorded else {
        return Ok(Some(format!(
            "{} names no dictionary; no similar features stored",
            manifest.display()
        )));
    };
    let found = plmscope_interpret::compare::resolve_recorded_path(&recorded, &req.out)
        .or_else(|| plmscope_interpret::compare::resolve_recorded_path(&recorded, &manifest));
    let dictionary = match found.map(|dir| plmscope_sae::io::load(&dir)) {
        Some(Ok(dictionary)) => dictionary,
        Some(Err(e)) => {
            return Ok(Some(format!(
                "dictionary {recorded} could not be read ({e}); no similar features stored"
            )))
        }
        None => {
            return Ok(Some(format!(
                "dictionary {recorded} not found; no similar features stored"
            )))
        }
    };
    let latents = units.map_or(0..dictionary.d_sae, |u| u.start as usize..u.end as usize);
    let first = latents.start.min(dictionary.d_sae);
    let neighbours = plmscope_interpret::similar::decoder_neighbours_of(
        &dictionary.w_dec,
        dictionary.d_sae,
        NEIGHBOURS,
        latents,
    );
    plmscope_interpret::similar::store_similar_units(atlas, &neighbours, first)
        .with_context(|| format!("writing similar_units into {}", atlas.display()))?;
    Ok(None)
}

/// The Gene Ontology when GO is to be tested: an ontology and GO annotations go together, and
/// either without the other is refused (GO annotations would silently go untested; an
/// ontology without annotations tests nothing).
fn read_go(
    req: &AnalyzeRequest,
    annotations: &Annotations,
    progress: &dyn Progress,
) -> Result<Option<GoDag>> {
    match (&req.go, annotations.go_records.is_empty()) {
        (None, true) => Ok(None),
        (None, false) => bail!(
            "{} carr{} GO annotations but no Gene Ontology was given: pass --go go-basic.obo \
             to test them, or leave out the GO annotation files",
            annotations.go_files.join(", "),
            if annotations.go_files.len() == 1 {
                "ies"
            } else {
                "y"
            }
        ),
        (Some(go), true) => bail!(
            "--go {} given, but none of the annotation files carries GO annotations (a GO list \
             CSV, a GAF, or a UniProt TSV/.dat with a Gene Ontology column is needed)",
            go.display()
        ),
        (Some(go), false) => {
            progress.message(&format!("reading {}", go.display()));
            let dag = GoDag::open(go).context("reading the Gene Ontology (--go)")?;
            Ok(Some(dag))
        }
    }
}

//! `plmscope analyze`: activation or code sets + annotations → one atlas (SQLite).
//!
//! Everything that can be checked is read and checked before the analysis starts: the sets
//! (and that features and neurons hold the same proteins in the same order), the GO DAG, every
//! annotation and residue-label file (format told from its content, errors naming file and
//! line). The statistics and the atlas belong to `plmscope-interpret`, which writes the atlas
//! under a temporary name and renames it only when complete, so a failed run leaves no atlas.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use plmscope_bio::input::{open_text, Lines};
use plmscope_bio::{
    uniprot_accession, AnnotationTable, BindingResiduesReader, FeatureKind, GafReader, GoCsvReader,
    GoDag, Namespace, ResidueClass, TmbedReader, UniProtDatReader, UniProtTsvReader,
};
use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::atlas::export_tsv;
use plmscope_interpret::concepts::ConceptSegment;
use plmscope_interpret::enrichment::CorrectionMethod;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::pipeline::{
    ConceptInput, ForegroundRule, GoInput, KindSummary, TermSummary,
};
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions, AnalysisSummary};
use plmscope_model::alphabet::MAX_RESIDUES;
use plmscope_store::{split_by_protein, ActivationSet, CodeSet, Level, ProteinRecord};

/// Held-out fraction of proteins for concept scores: thresholds are chosen on the other half.
const CONCEPT_HOLDOUT: f64 = 0.5;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Correction {
    /// Benjamini-Hochberg false discovery rate.
    Bh,
    /// Bonferroni family-wise error rate.
    Bonferroni,
}

/// Test which GO terms, Pfam families and residue concepts each unit stands for; write the atlas.
///
/// Features and neurons are tested the same way into one atlas (`units.kind`), so "how many
/// features vs neurons map to a term" is one query. Defaults: GO terms with 5..=1000 annotated
/// proteins, all namespaces, Benjamini-Hochberg at 0.05 over all tests of one kind and source.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("features").args(["codes", "activations"]))]
pub struct AnalyzeArgs {
    /// Code set (from `plmscope encode`): its dictionary latents are the features.
    #[arg(long)]
    codes: Option<PathBuf>,
    /// Activation set whose dimensions are analysed as the features.
    #[arg(long)]
    activations: Option<PathBuf>,
    /// Activation set whose dimensions are the neuron baseline.
    #[arg(long)]
    neurons: Option<PathBuf>,
    /// Activation set listing the proteins of --codes (the set they were encoded from, or any
    /// set of the same proteins in the same order). Default: --neurons.
    #[arg(long, requires = "codes")]
    proteins_from: Option<PathBuf>,
    /// Annotation files, format told from the content: UniProt TSV (columns by header name),
    /// UniProt flat file (.dat), GAF (`!gaf-version`), GO list CSV (`Protein ID,GO ID`).
    #[arg(long, required = true)]
    annotations: Vec<PathBuf>,
    /// Gene Ontology (OBO, e.g. go-basic.obo).
    #[arg(long)]
    go: PathBuf,
    /// Extra GO annotation files read as GAF (NOT-qualified lines are left out).
    #[arg(long)]
    gaf: Vec<PathBuf>,
    /// Residue labels KIND=FILE for concept scores (residue-level units only): tmbed (3-line
    /// TMbed labels), metal | nuclear | small | binding (bindEmbed21 binding residues; binding
    /// takes the class from the file name), uniprot (feature columns of a TSV or .dat).
    #[arg(long = "residue-labels", value_name = "KIND=FILE")]
    residue_labels: Vec<String>,
    /// GO namespaces tested.
    #[arg(long, value_delimiter = ',', default_value = "BP,MF,CC")]
    namespace: Vec<String>,
    /// Smallest GO term tested (annotated background proteins).
    #[arg(long, default_value_t = 5)]
    min_term_size: u32,
    /// Largest GO term tested.
    #[arg(long, default_value_t = 1000)]
    max_term_size: u32,
    #[arg(long, value_enum, default_value = "bh")]
    correction: Correction,
    /// Significance level on the corrected q (FDR for bh).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Feature study sets: topk (the latent is stored in the protein's code; residue level: on
    /// any residue), above:T, top:N, quantile:Q. Default: topk for --codes; for
    /// --activations the top 1% of proteins (a dense unit is nonzero almost everywhere).
    #[arg(long)]
    foreground: Option<String>,
    /// Neuron study sets: match (top N proteins, N = the features' median study-set size), or
    /// any --foreground rule.
    #[arg(long, default_value = "match")]
    neuron_foreground: String,
    /// The atlas (SQLite) to write.
    #[arg(long)]
    out: PathBuf,
    /// Also export every atlas table as DIR/<table>.tsv.
    #[arg(long, value_name = "DIR")]
    tsv: Option<PathBuf>,
}

pub fn run(args: AnalyzeArgs) -> Result<()> {
    // Options first: a typo must not cost the minutes of reading the inputs.
    let namespaces = parse_namespaces(&args.namespace)?;
    let feature_rule = args
        .foreground
        .as_deref()
        .map(|r| parse_rule(r, false))
        .transpose()?;
    let neuron_rule = parse_rule(&args.neuron_foreground, true)?;
    let labels = args
        .residue_labels
        .iter()
        .map(|l| LabelSource::parse(l))
        .collect::<Result<Vec<_>>>()?;
    if args.codes.is_none() && args.activations.is_none() && args.neurons.is_none() {
        bail!("nothing to analyse: give --codes or --activations (features) and/or --neurons");
    }
    let spinner = spinner();

    spinner.set_message("opening activation sets");
    let neuron_set = args.neurons.as_deref().map(open_set).transpose()?;
    let feature_set = args.activations.as_deref().map(open_set).transpose()?;
    let proteins_set = args.proteins_from.as_deref().map(open_set).transpose()?;
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
    spinner.set_message(format!("reading {}", args.go.display()));
    let dag = GoDag::open(&args.go).context("reading the Gene Ontology (--go)")?;
    let mut annotations = Annotations::default();
    for path in &args.annotations {
        spinner.set_message(format!("reading {}", path.display()));
        annotations.read(path, detect_format(path)?)?;
    }
    for path in &args.gaf {
        annotations.read(path, Format::Gaf)?;
    }
    if annotations.go_records.is_empty() {
        bail!(
            "none of the annotation files carries GO annotations (a GO list CSV, a GAF, or a \
             UniProt TSV/.dat with a Gene Ontology column is needed)"
        );
    }
    let (propagated, report) = dag.propagate(
        annotations
            .table
            .go_sets()
            .filter(|(accession, _)| annotations.go_records.contains(*accession)),
    );
    let families: Vec<(String, Vec<String>)> = annotations
        .table
        .iter()
        .filter(|p| annotations.pfam_records.contains(&p.accession))
        .map(|p| (p.accession.clone(), p.pfam.iter().cloned().collect()))
        .collect();

    // The activations last: they may be gigabytes, and every cheaper check has passed.
    let features = match (&args.codes, &feature_set) {
        (Some(dir), _) => {
            spinner.set_message(format!("reading codes {}", dir.display()));
            Some(load_codes(dir, &proteins, reference)?)
        }
        (None, Some(set)) => {
            spinner.set_message(format!("reading {}", set.dir().display()));
            Some(load_dense(set)?)
        }
        (None, None) => None,
    };
    let neurons = neuron_set
        .as_ref()
        .map(|set| {
            spinner.set_message(format!("reading {}", set.dir().display()));
            load_dense(set)
        })
        .transpose()?;

    let residue_level = features
        .iter()
        .chain(&neurons)
        .any(|u| u.residue_rows.is_some());
    let concepts = concept_input(&proteins, &annotations.table, &labels, residue_level)?;

    let default_feature_rule = match (&features, args.codes.is_some()) {
        (Some(_), false) => ForegroundRule::TopProteins(proteins.len().div_ceil(100).max(1) as u32),
        _ => ForegroundRule::TopKMember,
    };
    let mut options = AnalysisOptions {
        feature_rule: feature_rule.unwrap_or(default_feature_rule),
        neuron_rule,
        namespaces,
        method: match args.correction {
            Correction::Bh => CorrectionMethod::BenjaminiHochberg,
            Correction::Bonferroni => CorrectionMethod::Bonferroni,
        },
        alpha: args.alpha,
        ..AnalysisOptions::default()
    };
    options.go_term_size.min_population_count = args.min_term_size;
    options.go_term_size.max_population_count = args.max_term_size;
    let inputs = AnalysisInputs {
        accessions: &proteins.accessions,
        protein_lengths: Some(&proteins.lengths),
        features: features.as_ref().map(Units::activations),
        neurons: neurons.as_ref().map(Units::activations),
        go: Some(GoInput {
            dag: &dag,
            propagated: &propagated,
            report: &report,
        }),
        families: (!annotations.pfam_records.is_empty()).then_some(&families[..]),
        concepts: concepts.as_ref(),
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder of {}", args.out.display()))?;
    }
    spinner.set_message("analysing units");
    let summary = analyze(inputs, options.clone(), &args.out)
        .with_context(|| format!("analysis for {}", args.out.display()))?;
    spinner.finish_and_clear();
    println!("atlas: {}", summary.atlas.display());
    for (kind, units) in [("features", &features), ("neurons", &neurons)] {
        if let Some(units) = units {
            println!("{kind}: {}", units.source);
        }
    }
    print_summary(&summary, &options, &report, concepts.as_ref());
    if let Some(dir) = &args.tsv {
        let written = export_tsv(&args.out, dir)?;
        println!("exported {} tables to {}", written.len(), dir.display());
    }
    Ok(())
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("[{elapsed_precise}] {spinner} {msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn open_set(dir: &Path) -> Result<ActivationSet> {
    ActivationSet::open(dir).with_context(|| format!("opening activation set {}", dir.display()))
}

fn parse_namespaces(names: &[String]) -> Result<Vec<Namespace>> {
    let mut out = Vec::new();
    for name in names {
        let ns = match name.trim().to_ascii_uppercase().as_str() {
            "BP" | "P" | "BIOLOGICAL_PROCESS" => Namespace::BiologicalProcess,
            "MF" | "F" | "MOLECULAR_FUNCTION" => Namespace::MolecularFunction,
            "CC" | "C" | "CELLULAR_COMPONENT" => Namespace::CellularComponent,
            _ => bail!("--namespace {name}: expected BP, MF or CC (comma-separated)"),
        };
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    Ok(out)
}

/// `topk`, `above:T`, `top:N`, `quantile:Q`, and for neurons `match`.
fn parse_rule(text: &str, neurons: bool) -> Result<ForegroundRule> {
    let expected = "expected topk, above:T, top:N or quantile:Q (neurons also: match)";
    let bad = |why: &str| anyhow!("foreground rule '{text}': {why}; {expected}");
    let (name, value) = text.split_once(':').unwrap_or((text, ""));
    let rule = match (name.trim(), value.trim()) {
        ("topk", "") => ForegroundRule::TopKMember,
        ("match", "") if neurons => ForegroundRule::MatchFeatures,
        ("match", "") => return Err(bad("match is a neuron rule")),
        ("above", t) => ForegroundRule::Above(
            t.parse::<f32>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| bad("T must be a finite number"))?,
        ),
        ("top", n) => ForegroundRule::TopProteins(
            n.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("N must be a positive integer"))?,
        ),
        ("quantile", q) => ForegroundRule::AboveQuantile(
            q.parse::<f64>()
                .ok()
                .filter(|q| *q > 0.0 && *q < 1.0)
                .ok_or_else(|| bad("Q must lie strictly between 0 and 1"))?,
        ),
        _ => return Err(bad("unknown rule")),
    };
    Ok(rule)
}

/// The analysed proteins in activation-row order; accessions come from the set's ids
/// (`sp|P12345|NAME` → `P12345`; an id without an accession is used as it is).
struct Proteins {
    ids: Vec<String>,
    accessions: Vec<String>,
    lengths: Vec<u32>,
}

impl Proteins {
    fn of(set: &ActivationSet) -> Result<Self> {
        let records = set.proteins();
        let lengths = records
            .iter()
            .map(|p| u32::try_from(p.length))
            .collect::<Result<Vec<u32>, _>>()
            .with_context(|| format!("{}: protein length over 2^32", set.dir().display()))?;
        Ok(Proteins {
            ids: records.iter().map(|p| p.id.clone()).collect(),
            accessions: records
                .iter()
                .map(|p| uniprot_accession(&p.id).unwrap_or(&p.id).to_string())
                .collect(),
            lengths,
        })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Features and neurons must describe the same proteins in the same order.
    fn check_same(&self, set: &ActivationSet, reference: &ActivationSet) -> Result<()> {
        let records = set.proteins();
        let differ = |what: String| {
            anyhow!(
                "{} and {} do not hold the same proteins: {what}; analyse sets embedded from \
                 the same FASTA",
                set.dir().display(),
                reference.dir().display()
            )
        };
        if records.len() != self.len() {
            return Err(differ(format!(
                "{} vs {} proteins",
                records.len(),
                self.len()
            )));
        }
        for (i, p) in records.iter().enumerate() {
            if p.id != self.ids[i] || p.length as u64 != u64::from(self.lengths[i]) {
                return Err(differ(format!(
                    "protein {i} is {} ({} residues) vs {} ({} residues)",
                    p.id, p.length, self.ids[i], self.lengths[i]
                )));
            }
        }
        Ok(())
    }
}

/// One kind of unit, held in memory for the analysis.
struct Units {
    /// Where the units come from, for the summary.
    source: String,
    data: UnitData,
    /// Residue level: the protein and 0-based position of every row.
    residue_rows: Option<(Vec<u32>, Vec<u32>)>,
}

enum UnitData {
    Dense {
        values: Vec<f32>,
        n_units: u32,
    },
    Sparse {
        row_ptr: Vec<u64>,
        feature: Vec<u32>,
        value: Vec<f32>,
        n_units: u32,
    },
}

impl Units {
    fn activations(&self) -> Activations<'_> {
        let rows = self
            .residue_rows
            .as_ref()
            .map(|(protein, position)| ResidueRows { protein, position });
        match (&self.data, rows) {
            (UnitData::Dense { values, n_units }, None) => Activations::DenseProteins {
                values,
                n_units: *n_units,
            },
            (UnitData::Dense { values, n_units }, Some(rows)) => Activations::DenseResidues {
                values,
                n_units: *n_units,
                rows,
            },
            (
                UnitData::Sparse {
                    row_ptr,
                    feature,
                    value,
                    n_units,
                },
                rows,
            ) => {
                let codes = SparseCodes {
                    row_ptr,
                    feature,
                    value,
                    n_units: *n_units,
                };
                match rows {
                    None => Activations::SparseProteins(codes),
                    Some(rows) => Activations::SparseResidues { codes, rows },
                }
            }
        }
    }
}

/// Residue rows of proteins stored one after another, `rows[p]` rows each.
fn residue_rows(rows: impl Iterator<Item = usize>) -> (Vec<u32>, Vec<u32>) {
    let (mut protein, mut position) = (Vec::new(), Vec::new());
    for (p, n) in rows.enumerate() {
        protein.resize(protein.len() + n, p as u32);
        position.extend(0..n as u32);
    }
    (protein, position)
}

fn load_dense(set: &ActivationSet) -> Result<Units> {
    let dir = set.dir().display();
    let mut values = Vec::new();
    set.read_rows(0, set.rows(), &mut values)
        .with_context(|| format!("reading {dir}"))?;
    let d = set.d_model().max(1);
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{dir}: row {} holds a non-finite value ({}); re-embed the proteins",
            i / d,
            values[i]
        );
    }
    let residue_rows = match set.level() {
        Level::Residue => Some(residue_rows(
            set.proteins().iter().map(|p: &ProteinRecord| p.rows),
        )),
        Level::Protein => None,
    };
    let h = set.header();
    Ok(Units {
        source: format!(
            "{} ({} dimensions of {} layer {} {}, {} level)",
            set.dir().display(),
            set.d_model(),
            h.model.id,
            h.layer,
            h.site,
            h.level
        ),
        data: UnitData::Dense {
            values,
            n_units: u32::try_from(set.d_model())?,
        },
        residue_rows,
    })
}

/// Codes in CSR form; their rows are the proteins of `reference` (one row each at protein
/// level, one per residue at residue level).
fn load_codes(dir: &Path, proteins: &Proteins, reference: &ActivationSet) -> Result<Units> {
    let codes =
        CodeSet::open(dir).with_context(|| format!("opening code set {}", dir.display()))?;
    let source = &codes.manifest().source;
    let residues: usize = proteins.lengths.iter().map(|&l| l as usize).sum();
    let expected_rows = match source.level {
        Level::Residue => residues,
        Level::Protein => proteins.len(),
    };
    if source.total_proteins != proteins.len() || codes.rows() != expected_rows {
        bail!(
            "{} encodes {} proteins in {} {}-level rows, but {} lists {} proteins ({} rows \
             expected); pass --proteins-from with the activation set the codes came from",
            dir.display(),
            source.total_proteins,
            codes.rows(),
            source.level,
            reference.dir().display(),
            proteins.len(),
            expected_rows
        );
    }
    let mut row_ptr = Vec::with_capacity(codes.rows() + 1);
    let mut feature = Vec::with_capacity(codes.nnz());
    let mut value = Vec::with_capacity(codes.nnz());
    row_ptr.push(0u64);
    for (f, v) in codes.iter_rows() {
        feature.extend_from_slice(f);
        value.extend_from_slice(v);
        row_ptr.push(feature.len() as u64);
    }
    let dictionary = &codes.manifest().dictionary;
    let description = format!(
        "{} ({} latents of {} {}, layer {} {}, {} level, {:.1} codes per row)",
        dir.display(),
        dictionary.d_sae,
        dictionary.architecture,
        dictionary.id,
        source.layer,
        source.site,
        source.level,
        codes.nnz() as f64 / codes.rows().max(1) as f64
    );
    let residue_rows = (source.level == Level::Residue)
        .then(|| residue_rows(proteins.lengths.iter().map(|&l| l as usize)));
    Ok(Units {
        source: description,
        data: UnitData::Sparse {
            row_ptr,
            feature,
            value,
            n_units: u32::try_from(codes.d_sae())?,
        },
        residue_rows,
    })
}

/// Annotation file formats `--annotations` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    UniProtTsv,
    UniProtDat,
    Gaf,
    GoCsv,
}

/// Tells the format from the first line that is neither empty nor a `!` comment (plain or
/// gzip) and from the comments before it, the extension breaking ties. GAF files open with a
/// comment block that holds `!gaf-version` somewhere, not necessarily first.
fn detect_format(path: &Path) -> Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let mut lines = Lines::new(open_text(path)?, path.to_path_buf());
    let mut gaf_version = false;
    let first = loop {
        match lines.next_line()? {
            Some(line) if line.trim().is_empty() => continue,
            Some(line) if line.starts_with('!') => {
                gaf_version |= line.starts_with("!gaf-version");
            }
            Some(line) => break line.to_string(),
            None => bail!("{}: holds no annotation line", path.display()),
        }
    };
    Ok(if gaf_version || name.ends_with(".gaf") {
        Format::Gaf
    } else if first.starts_with("ID   ") || name.ends_with(".dat") {
        Format::UniProtDat
    } else if name.ends_with(".csv") || first.contains("Protein ID,") {
        Format::GoCsv
    } else if first.contains('\t') || name.ends_with(".tsv") || name.ends_with(".tab") {
        Format::UniProtTsv
    } else if first.starts_with('>') {
        bail!(
            "{}: looks like FASTA or TMbed labels, not annotations; residue labels go to \
             --residue-labels tmbed={}",
            path.display(),
            path.display()
        )
    } else {
        bail!(
            "{}:{}: unknown annotation format; expected a UniProt TSV (tab-separated, header \
             with Entry), a UniProt flat file (ID lines), a GAF (!gaf-version) or a GO list CSV \
             (Protein ID,GO ID)",
            path.display(),
            lines.line_number()
        )
    })
}

/// Merged annotations, and which accessions some GO / Pfam source has a record for: a protein
/// counts as unmatched only when no source of that kind lists it.
#[derive(Default)]
struct Annotations {
    table: AnnotationTable,
    go_records: BTreeSet<String>,
    pfam_records: BTreeSet<String>,
}

impl Annotations {
    fn read(&mut self, path: &Path, format: Format) -> Result<()> {
        let (mut has_go, mut has_pfam) = (true, false);
        let before = self.table.len();
        let mut records = 0usize;
        let mut accessions = Vec::new();
        match format {
            Format::UniProtTsv => {
                let reader = UniProtTsvReader::open(path)?;
                let header: Vec<String> = reader
                    .header()
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect();
                has_go = header.iter().any(|h| h.starts_with("gene ontology"));
                has_pfam = header
                    .iter()
                    .any(|h| h == "pfam" || h == "cross-reference (pfam)");
                let has_features = reader
                    .header()
                    .iter()
                    .any(|h| FeatureKind::from_column_name(h).is_some());
                if !has_go && !has_pfam && !has_features {
                    bail!(
                        "{}: no column analyze uses (Gene Ontology IDs / Gene ontology (...), \
                         Pfam / Cross-reference (Pfam), or residue feature columns); columns \
                         found: {:?}",
                        path.display(),
                        reader.header()
                    );
                }
                for protein in reader {
                    let protein = protein?;
                    accessions.push(protein.accession.clone());
                    self.table.insert(protein);
                    records += 1;
                }
            }
            Format::UniProtDat => {
                has_pfam = true;
                for protein in UniProtDatReader::open(path)? {
                    let protein = protein?;
                    accessions.push(protein.accession.clone());
                    self.table.insert(protein);
                    records += 1;
                }
            }
            Format::GoCsv => {
                for row in GoCsvReader::open(path)? {
                    let row = row?;
                    accessions.push(row.accession.clone());
                    self.table.insert(row.into_annotation());
                    records += 1;
                }
            }
            Format::Gaf => {
                let mut reader = GafReader::open(path)?;
                for record in reader.by_ref() {
                    let record = record?;
                    self.table.entry(&record.accession).go.insert(record.go);
                    accessions.push(record.accession);
                    records += 1;
                }
                let s = reader.summary();
                tracing::info!(
                    "{}: GAF {}, {} NOT-qualified lines left out",
                    path.display(),
                    s.version.as_deref().unwrap_or("(no version)"),
                    s.not_excluded
                );
            }
        }
        if has_go {
            self.go_records.extend(accessions.iter().cloned());
        }
        if has_pfam {
            self.pfam_records.extend(accessions);
        }
        tracing::info!(
            "{}: {format:?}, {records} records, {} new proteins",
            path.display(),
            self.table.len() - before
        );
        Ok(())
    }
}

/// One `--residue-labels KIND=FILE`.
struct LabelSource {
    kind: LabelKind,
    path: PathBuf,
}

enum LabelKind {
    Tmbed,
    /// bindEmbed21 binding residues of one ligand class.
    Binding(String),
    UniProt,
}

impl LabelSource {
    fn parse(text: &str) -> Result<Self> {
        let usage = "expected KIND=FILE with KIND tmbed, metal, nuclear, small, binding or uniprot";
        let (kind, file) = text
            .split_once('=')
            .ok_or_else(|| anyhow!("--residue-labels {text}: {usage}"))?;
        let path = PathBuf::from(file);
        let kind = match kind.trim() {
            "tmbed" => LabelKind::Tmbed,
            class @ ("metal" | "nuclear" | "small") => LabelKind::Binding(class.to_string()),
            "binding" => {
                // bindEmbed21 names its files binding_residues_<cutoff>_<class>.txt.
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                let class = stem
                    .as_deref()
                    .and_then(|s| s.rsplit('_').next())
                    .filter(|c| ["metal", "nuclear", "small"].contains(c))
                    .ok_or_else(|| {
                        anyhow!(
                            "--residue-labels {text}: no ligand class (metal, nuclear, small) \
                             at the end of the file name; write metal={file} etc."
                        )
                    })?;
                LabelKind::Binding(class.to_string())
            }
            "uniprot" => LabelKind::UniProt,
            other => bail!("--residue-labels {text}: unknown kind '{other}'; {usage}"),
        };
        Ok(LabelSource { kind, path })
    }
}

/// Concept segments over the analysed proteins, with what had to be left out.
struct ConceptBuilder<'a> {
    protein_of: HashMap<&'a str, u32>,
    lengths: &'a [u32],
    names: BTreeMap<String, u32>,
    segments: Vec<ConceptSegment>,
    /// Labelled residues beyond the embedded protein (other release, truncation).
    residues_outside: usize,
    /// Proteins whose labelled sequence has another length than the embedded one: their
    /// positions may not line up, so their labels are left out.
    length_mismatches: usize,
}

impl<'a> ConceptBuilder<'a> {
    fn new(proteins: &'a Proteins) -> Self {
        ConceptBuilder {
            protein_of: (0u32..)
                .zip(&proteins.accessions)
                .map(|(i, a)| (a.as_str(), i))
                .collect(),
            lengths: &proteins.lengths,
            names: BTreeMap::new(),
            segments: Vec::new(),
            residues_outside: 0,
            length_mismatches: 0,
        }
    }

    /// Adds 1-based residues of `concept` on protein `protein`, as maximal runs.
    fn add_residues(&mut self, concept: &str, protein: u32, residues: &[u32]) {
        let length = self.lengths[protein as usize];
        let mut inside: Vec<u32> = residues
            .iter()
            .filter(|&&r| r >= 1)
            .map(|&r| r - 1)
            .filter(|&r| r < length)
            .collect();
        self.residues_outside += residues.len() - inside.len();
        inside.sort_unstable();
        inside.dedup();
        let Some(&first) = inside.first() else {
            return;
        };
        let next_id = self.names.len() as u32;
        let id = *self.names.entry(concept.to_string()).or_insert(next_id);
        let mut start = first;
        for pair in inside.windows(2) {
            if pair[1] != pair[0] + 1 {
                self.push(id, protein, start, pair[0] + 1);
                start = pair[1];
            }
        }
        let end = inside.last().map_or(start, |&r| r + 1);
        self.push(id, protein, start, end);
    }

    /// The protein index of `accession` when its labels can be used: the label file's sequence
    /// (if it gives one) has the embedded length, or is longer and the protein was truncated to
    /// ESM2's context (positions inside it still line up).
    fn protein(&mut self, accession: &str, labelled_length: Option<usize>) -> Option<u32> {
        let p = *self.protein_of.get(accession)?;
        let embedded = self.lengths[p as usize] as usize;
        match labelled_length {
            Some(n) if n != embedded && !(embedded == MAX_RESIDUES && n > embedded) => {
                self.length_mismatches += 1;
                None
            }
            _ => Some(p),
        }
    }

    fn push(&mut self, concept: u32, protein: u32, start: u32, end: u32) {
        self.segments.push(ConceptSegment {
            concept,
            protein,
            start,
            end,
        });
    }

    /// UniProt residue features, one concept per feature type (`uniprot:BINDING` ...); the
    /// `Chain` feature covers the whole protein and says nothing about residues.
    fn add_table(&mut self, table: &AnnotationTable) {
        for protein in table.iter() {
            if protein.features.is_empty() {
                continue;
            }
            let length = protein.sequence.as_ref().map(String::len);
            let Some(p) = self.protein(&protein.accession, length) else {
                continue;
            };
            for feature in protein.features.iter() {
                if feature.kind != FeatureKind::Chain {
                    let name = format!("uniprot:{}", feature.kind.key());
                    self.add_residues(&name, p, &feature.residues());
                }
            }
        }
    }

    fn add_source(&mut self, source: &LabelSource) -> Result<()> {
        let path = &source.path;
        match &source.kind {
            LabelKind::Tmbed => {
                for record in TmbedReader::open(path)? {
                    let record = record?;
                    let accession = record.accession().unwrap_or(&record.id).to_string();
                    let Some(p) = self.protein(&accession, Some(record.sequence.len())) else {
                        continue;
                    };
                    for (class, name) in [
                        (ResidueClass::TmHelix, "tmbed:tm_helix"),
                        (ResidueClass::TmStrand, "tmbed:tm_strand"),
                        (ResidueClass::SignalPeptide, "tmbed:signal_peptide"),
                    ] {
                        self.add_residues(name, p, &record.positions(class));
                    }
                }
            }
            LabelKind::Binding(class) => {
                let name = format!("binding:{class}");
                for row in BindingResiduesReader::open(path)? {
                    let row = row?;
                    if let Some(p) = self.protein(&row.accession, None) {
                        self.add_residues(&name, p, &row.positions);
                    }
                }
            }
            LabelKind::UniProt => {
                let mut annotations = Annotations::default();
                annotations.read(path, detect_format(path)?)?;
                self.add_table(&annotations.table);
            }
        }
        Ok(())
    }
}

/// Residue concepts from UniProt feature columns of the annotations and from `--residue-labels`;
/// `None` when there is nothing to score.
fn concept_input(
    proteins: &Proteins,
    table: &AnnotationTable,
    labels: &[LabelSource],
    residue_level: bool,
) -> Result<Option<ConceptInput>> {
    if !residue_level {
        if !labels.is_empty() {
            eprintln!("warning: --residue-labels ignored: no residue-level units to score");
        }
        return Ok(None);
    }
    let mut builder = ConceptBuilder::new(proteins);
    builder.add_table(table);
    for source in labels {
        builder.add_source(source)?;
    }
    if builder.residues_outside > 0 {
        eprintln!(
            "warning: {} labelled residues lie beyond the embedded proteins and were left out",
            builder.residues_outside
        );
    }
    if builder.length_mismatches > 0 {
        eprintln!(
            "warning: {} labelled proteins have another length than the embedded sequence \
             (another release?); their labels were left out",
            builder.length_mismatches
        );
    }
    if builder.segments.is_empty() {
        if !labels.is_empty() {
            eprintln!("warning: no residue label matches an analysed protein; no concept scores");
        }
        return Ok(None);
    }
    let mut names = vec![String::new(); builder.names.len()];
    for (name, id) in builder.names {
        names[id as usize] = name;
    }
    let (train, _) = split_by_protein(proteins.len(), CONCEPT_HOLDOUT, 0);
    let mut is_training = vec![false; proteins.len()];
    for p in train {
        is_training[p] = true;
    }
    Ok(Some(ConceptInput {
        protein_lengths: proteins.lengths.clone(),
        names,
        segments: builder.segments,
        is_training,
    }))
}

/// The run's result, one row per quantity, features and neurons side by side.
fn print_summary(
    summary: &AnalysisSummary,
    options: &AnalysisOptions,
    report: &plmscope_bio::PropagationReport,
    concepts: Option<&ConceptInput>,
) {
    let matched = |unmatched: Option<usize>| {
        unmatched.map_or("-".to_string(), |u| {
            format!("{} matched, {u} unmatched", summary.proteins as usize - u)
        })
    };
    println!("proteins analysed: {}", summary.proteins);
    println!("GO records: {}", matched(summary.go_unmatched_proteins));
    println!(
        "Pfam records: {}",
        matched(summary.family_unmatched_proteins)
    );
    if !report.unknown.is_empty() || !report.obsolete_dropped.is_empty() {
        println!(
            "GO ids dropped: {} unknown to the ontology, {} obsolete",
            report.unknown.len(),
            report.obsolete_dropped.len()
        );
    }
    if let Some(c) = concepts {
        let labelled: BTreeSet<u32> = c.segments.iter().map(|s| s.protein).collect();
        println!(
            "residue concepts: {} ({} labelled segments on {} proteins)",
            c.names.len(),
            c.segments.len(),
            labelled.len()
        );
    }
    let alpha = options.alpha;
    let kinds = [summary.features.as_ref(), summary.neurons.as_ref()];
    let row = |label: String, value: &dyn Fn(&KindSummary) -> Option<String>| {
        let cells: Vec<String> = kinds
            .iter()
            .map(|k| k.and_then(value).unwrap_or_else(|| "-".into()))
            .collect();
        println!("{label:<48}{:>10}{:>10}", cells[0], cells[1]);
    };
    println!("{:<48}{:>10}{:>10}", "", "features", "neurons");
    row("units analysed".into(), &|k| Some(k.units.to_string()));
    row("dead units".into(), &|k| Some(k.dead_units.to_string()));
    row("median study-set size".into(), &|k| {
        Some(k.median_study_size.to_string())
    });
    let term_rows = |source: &str, get: fn(&KindSummary) -> Option<&TermSummary>| {
        row(format!("{source} units with a term at q < {alpha}"), &|k| {
            get(k).map(|t| t.units_with_significant.to_string())
        });
        row(format!("{source} distinct significant terms"), &|k| {
            get(k).map(|t| t.distinct_terms.to_string())
        });
        row(format!("{source} significant tests"), &|k| {
            get(k).map(|t| t.significant_tests.to_string())
        });
    };
    term_rows("GO", |k| k.go.as_ref());
    for ns in &options.namespaces {
        row(
            format!("GO distinct significant terms {}", ns.short()),
            &|k| {
                k.go.as_ref().map(|t| {
                    t.distinct_terms_by_namespace
                        .get(ns.short())
                        .copied()
                        .unwrap_or(0)
                        .to_string()
                })
            },
        );
    }
    term_rows("Pfam", |k| k.families.as_ref());
    row(
        format!("concept units with F1 >= {}", options.concept_min_f1),
        &|k| {
            k.concepts
                .as_ref()
                .map(|c| c.units_with_concept.to_string())
        },
    );
    row("concept distinct concepts".into(), &|k| {
        k.concepts.as_ref().map(|c| c.distinct_concepts.to_string())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

    #[test]
    fn formats_are_told_from_real_files() {
        let format = |path: &str| detect_format(Path::new(&format!("{DATA}/{path}")));
        // The GAF opens with a comment block; its version line is not the first line.
        assert_eq!(
            format("ecoli_k12/gene_association.ecocyc").unwrap(),
            Format::Gaf
        );
        assert_eq!(
            format("ecoli_k12/UP000000625_83333_go.csv").unwrap(),
            Format::GoCsv
        );
        assert_eq!(
            format("ecoli_k12/Ecoli_metadata.txt").unwrap(),
            Format::UniProtTsv
        );
        assert_eq!(
            format("uniprot_tsv_example/sample_uniprot.tsv").unwrap(),
            Format::UniProtTsv
        );
        let err = format("tmbed/alpha.fasta").unwrap_err().to_string();
        assert!(err.contains("alpha.fasta") && err.contains("--residue-labels tmbed="));
    }

    #[test]
    fn foreground_rules_and_label_kinds_parse() {
        assert_eq!(
            parse_rule("topk", false).unwrap(),
            ForegroundRule::TopKMember
        );
        assert_eq!(
            parse_rule("above:0.5", false).unwrap(),
            ForegroundRule::Above(0.5)
        );
        assert_eq!(
            parse_rule("top:30", true).unwrap(),
            ForegroundRule::TopProteins(30)
        );
        assert_eq!(
            parse_rule("quantile:0.99", false).unwrap(),
            ForegroundRule::AboveQuantile(0.99)
        );
        assert_eq!(
            parse_rule("match", true).unwrap(),
            ForegroundRule::MatchFeatures
        );
        for bad in ["match", "above:nan", "top:0", "quantile:1", "top", "best:3"] {
            assert!(parse_rule(bad, false).is_err(), "{bad}");
        }
        let binding = LabelSource::parse("binding=dev/binding_residues_2.5_nuclear.txt").unwrap();
        assert!(matches!(binding.kind, LabelKind::Binding(ref c) if c == "nuclear"));
        assert!(LabelSource::parse("binding=labels.txt").is_err());
        assert!(LabelSource::parse("tmbed").is_err());
        assert!(LabelSource::parse("pfam=x.txt").is_err());
    }

    fn proteins(lengths: &[u32]) -> Proteins {
        Proteins {
            ids: (0..lengths.len()).map(|i| format!("id{i}")).collect(),
            accessions: (0..lengths.len()).map(|i| format!("P{i}")).collect(),
            lengths: lengths.to_vec(),
        }
    }

    #[test]
    fn labelled_residues_become_maximal_zero_based_runs() {
        let proteins = proteins(&[10, 1022]);
        let mut builder = ConceptBuilder::new(&proteins);
        // 1-based 2,3,4 and 7 → [1, 4) and [6, 7); 11 and 0 lie outside a 10-residue protein.
        builder.add_residues("c", 0, &[4, 2, 3, 7, 7, 11, 0]);
        let runs: Vec<(u32, u32)> = builder.segments.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(runs, [(1, 4), (6, 7)]);
        assert_eq!(builder.residues_outside, 2);
        // Labels of another length do not line up, unless the protein was truncated to 1022.
        assert_eq!(builder.protein("P0", Some(10)), Some(0));
        assert_eq!(builder.protein("P0", Some(12)), None);
        assert_eq!(builder.protein("P1", Some(1500)), Some(1));
        assert_eq!(builder.protein("P1", Some(900)), None);
        assert_eq!(builder.protein("Q9", None), None);
        assert_eq!(builder.length_mismatches, 2);
    }

    #[test]
    fn uniprot_feature_columns_become_concepts() {
        let tsv = format!("{DATA}/uniprot_tsv_example/sample_uniprot.tsv");
        let mut annotations = Annotations::default();
        annotations
            .read(Path::new(&tsv), Format::UniProtTsv)
            .unwrap();
        let first = annotations.table.iter().next().unwrap();
        let length = first.sequence.as_ref().unwrap().len() as u32;
        let mut proteins = proteins(&[length]);
        proteins.accessions[0] = first.accession.clone();
        let mut builder = ConceptBuilder::new(&proteins);
        builder.add_table(&annotations.table);
        let mut expected: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for feature in first
            .features
            .iter()
            .filter(|f| f.kind != FeatureKind::Chain)
        {
            expected
                .entry(format!("uniprot:{}", feature.kind.key()))
                .or_default()
                .extend(feature.residues().iter().map(|r| r - 1));
        }
        assert!(!expected.is_empty());
        let mut found: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for (name, &id) in &builder.names {
            for s in builder.segments.iter().filter(|s| s.concept == id) {
                found
                    .entry(name.clone())
                    .or_default()
                    .extend(s.start..s.end);
            }
        }
        assert_eq!(found, expected);
    }
}

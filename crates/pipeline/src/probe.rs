//! The `probe` stage: sparse L1 logistic probes on activation sets (neurons) and code sets
//! (features) against protein or residue labels. This module owns reading the label files
//! (TMbed, bindEmbed21 binding residues, a protein TSV), choosing the labelled rows of the sets,
//! loading them as dense matrices, and writing the results (atlas tables, JSON); the probe
//! itself is `plmscope_interpret::probe`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_bio::{uniprot_accession, BindingResiduesReader, ResidueClass, TmbedReader};
use plmscope_interpret::probe::{
    atlas::write_probes, run_probe, ProbeData, ProbeOptions, ProbeReport, UnitKind, UnitValues,
};
use plmscope_store::{ActivationSet, CodeSet, Level};
use rayon::prelude::*;

/// Where the labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    /// A TMbed 3-line file; residues of `class` are positive, `U` residues are left out.
    Tmbed { path: PathBuf, class: ResidueClass },
    /// A bindEmbed21 `binding_residues_*.txt` file; listed positions are positive.
    Binding { path: PathBuf },
    /// A protein TSV `accession<TAB>class`; `positive` defaults to the rarer of two classes.
    ProteinTsv {
        path: PathBuf,
        positive: Option<String>,
    },
}

impl LabelSource {
    /// Reads the command-line form: `tmbed=FILE` (with `tmbed_class` helix, strand or signal),
    /// `binding=FILE`, or a protein TSV path (with `positive`, its positive class).
    pub fn parse(text: &str, tmbed_class: &str, positive: Option<String>) -> Result<LabelSource> {
        if let Some(path) = text.strip_prefix("tmbed=") {
            let class = match tmbed_class {
                "helix" => ResidueClass::TmHelix,
                "strand" => ResidueClass::TmStrand,
                "signal" => ResidueClass::SignalPeptide,
                other => bail!("--tmbed-class {other}: use helix, strand or signal"),
            };
            return Ok(LabelSource::Tmbed {
                path: path.into(),
                class,
            });
        }
        if let Some(path) = text.strip_prefix("binding=") {
            return Ok(LabelSource::Binding { path: path.into() });
        }
        Ok(LabelSource::ProteinTsv {
            path: text.into(),
            positive,
        })
    }

    /// Residue labels (TMbed, binding) or protein labels (TSV).
    pub fn level(&self) -> Level {
        match self {
            LabelSource::ProteinTsv { .. } => Level::Protein,
            _ => Level::Residue,
        }
    }
}

/// The command-line form (`tmbed=FILE`, `binding=FILE`, `FILE`), as the atlas records it.
impl fmt::Display for LabelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelSource::Tmbed { path, .. } => write!(f, "tmbed={}", path.display()),
            LabelSource::Binding { path } => write!(f, "binding={}", path.display()),
            LabelSource::ProteinTsv { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// One probing run: which sets, which labels, the probe's settings and where results go.
#[derive(Clone, Debug)]
pub struct ProbeRequest {
    /// Activation sets: their neurons are probed.
    pub activations: Vec<PathBuf>,
    /// Code sets: their features are probed.
    pub codes: Vec<PathBuf>,
    pub labels: LabelSource,
    /// Default: the labels' level. Must match it.
    pub level: Option<Level>,
    /// Activation set whose protein list the code sets share (default: the first activation
    /// set of the same level).
    pub proteins_from: Option<PathBuf>,
    /// scikit-learn's C (inverse L1 strength).
    pub c: f64,
    pub test_fraction: f64,
    pub seed: u64,
    /// At most this many rows (whole proteins in seeded order), to bound memory.
    pub max_rows: usize,
    /// Write the results into this atlas (tables `probes`, `probe_units`).
    pub atlas: Option<PathBuf>,
    /// Write every report as JSON (atomically).
    pub json: Option<PathBuf>,
}

/// What a probing run found.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    /// One report per set, best held-out AUROC (then F1) first.
    pub reports: Vec<ProbeReport>,
    pub level: Level,
    /// Labelled rows probed (residues, or proteins at protein level).
    pub rows: usize,
    /// Labelled proteins those rows come from.
    pub proteins: usize,
    /// Positive rows.
    pub positives: usize,
}

impl fmt::Display for ProbeOutcome {
    /// The results table, one line per set, best first: rank, held-out AUROC and F1, nonzero
    /// units, fewest units reaching 95% of the best AUROC, that best, kind, units, the three
    /// best single units (held-out AUROC), set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rank\tauroc\tf1\tnonzero\tunits_for_95%\tbest_auroc\tkind\tunits\ttop single units (held-out AUROC)\tset")?;
        for (i, r) in self.reports.iter().enumerate() {
            let singles: Vec<String> = r
                .single_units
                .iter()
                .take(3)
                .map(|s| format!("{}:{:.3}", s.unit, s.test_auroc))
                .collect();
            writeln!(
                f,
                "{}\t{:.4}\t{:.4}\t{}\t{}\t{:.4}\t{}\t{}\t{}\t{}",
                i + 1,
                r.auroc,
                r.f1,
                r.nonzero,
                r.units_for_95,
                r.best_auroc,
                r.kind.as_str(),
                r.units,
                singles.join(" "),
                r.name
            )?;
        }
        Ok(())
    }
}

/// Per-residue (or per-protein) labels of the labelled proteins, by protein id.
struct Labels {
    residue: bool,
    /// One label per residue of the whole protein (TMbed), not positions up to the last one.
    full_length: bool,
    /// id → labels (one per residue, or one); `None` entries are excluded (TMbed `U`).
    by_id: HashMap<String, Vec<Option<bool>>>,
}

fn read_labels(source: &LabelSource) -> Result<Labels> {
    let mut by_id = HashMap::new();
    match source {
        LabelSource::Tmbed { path, class } => {
            for record in TmbedReader::open(path)? {
                let record = record?;
                let labels = record
                    .labels
                    .iter()
                    .map(|l| match l.class() {
                        ResidueClass::Unknown => None,
                        c => Some(c == *class),
                    })
                    .collect();
                by_id.insert(record.id.clone(), labels);
            }
            Ok(Labels {
                residue: true,
                full_length: true,
                by_id,
            })
        }
        LabelSource::Binding { path } => {
            for row in BindingResiduesReader::open(path)? {
                let row = row?;
                // Lengths come from the set; positions are stored 1-based, sized on use.
                let max = row.positions.iter().copied().max().unwrap_or(0) as usize;
                let mut labels = vec![Some(false); max];
                for p in &row.positions {
                    let slot = (*p as usize).checked_sub(1).and_then(|i| labels.get_mut(i));
                    if let Some(slot) = slot {
                        *slot = Some(true);
                    }
                }
                by_id.insert(row.accession.clone(), labels);
            }
            Ok(Labels {
                residue: true,
                full_length: false,
                by_id,
            })
        }
        LabelSource::ProteinTsv { path, positive } => {
            for (accession, label) in read_protein_tsv(path, positive.as_deref())? {
                by_id.insert(accession, vec![Some(label)]);
            }
            Ok(Labels {
                residue: false,
                full_length: false,
                by_id,
            })
        }
    }
}

/// `accession<TAB>class` lines (blank and `#` lines skipped) as (accession, is positive).
fn read_protein_tsv(path: &Path, positive: Option<&str>) -> Result<Vec<(String, bool)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading labels {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cells = line.split('\t');
        let (Some(accession), Some(class)) = (cells.next(), cells.next()) else {
            bail!("{}:{}: expected accession<TAB>class", path.display(), i + 1);
        };
        rows.push((accession.trim().to_string(), class.trim().to_string()));
    }
    let mut classes: Vec<(String, usize)> = Vec::new();
    for (_, c) in &rows {
        match classes.iter_mut().find(|(k, _)| k == c) {
            Some(entry) => entry.1 += 1,
            None => classes.push((c.clone(), 1)),
        }
    }
    let positive = match positive {
        Some(p) => p.to_string(),
        None if classes.len() == 2 => classes.iter().min_by_key(|(_, n)| *n).unwrap().0.clone(),
        None => bail!(
            "{}: {} classes; name the positive one with --positive",
            path.display(),
            classes.len()
        ),
    };
    Ok(rows
        .into_iter()
        .map(|(accession, class)| (accession, class == positive))
        .collect())
}

/// The labels of one set's protein (by id, then by its UniProt accession).
fn labels_of<'a>(labels: &'a Labels, id: &str) -> Option<&'a Vec<Option<bool>>> {
    labels
        .by_id
        .get(id)
        .or_else(|| uniprot_accession(id).and_then(|a| labels.by_id.get(a)))
}

/// Rows chosen for probing: (row, protein index), their labels and protein groups.
struct Selection {
    rows: Vec<(usize, usize)>,
    labels: Vec<bool>,
    groups: Vec<u32>,
}

fn select(set: &ActivationSet, labels: &Labels, max_rows: usize, seed: u64) -> Selection {
    // Seeded order of the proteins (splitmix64 of seed and index), so `max_rows` takes a
    // random subset of whole proteins.
    let mix = |i: u64| {
        let mut z = (seed ^ 0x5eed).wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut proteins: Vec<usize> = (0..set.proteins().len()).collect();
    proteins.sort_by_key(|&p| mix(p as u64));
    let mut chosen = Vec::new();
    let mut total = 0;
    for p in proteins {
        let record = &set.proteins()[p];
        let Some(l) = labels_of(labels, &record.id) else {
            continue;
        };
        let fits = match (labels.residue, labels.full_length) {
            (false, _) => true,
            (true, true) => l.len() == record.length,
            (true, false) => l.len() <= record.length,
        };
        if !fits {
            continue;
        }
        if total + record.rows > max_rows && total > 0 {
            break;
        }
        total += record.rows;
        chosen.push(p);
    }
    chosen.sort_unstable();
    let mut selection = Selection {
        rows: Vec::new(),
        labels: Vec::new(),
        groups: Vec::new(),
    };
    for p in chosen {
        let record = &set.proteins()[p];
        let l = labels_of(labels, &record.id).expect("chosen proteins are labelled");
        let range = set.protein_rows(p);
        for (k, row) in range.enumerate() {
            let label = if labels.residue {
                l.get(k).copied().unwrap_or(Some(false))
            } else {
                l[0]
            };
            if let Some(label) = label {
                selection.rows.push((row, p));
                selection.labels.push(label);
                selection.groups.push(p as u32);
            }
        }
    }
    selection
}

fn dense_data(set: &ActivationSet, sel: &Selection) -> Result<ProbeData> {
    let (n, d) = (sel.rows.len(), set.d_model());
    let mut values = vec![0f32; n * d];
    let mut row = Vec::new();
    for (i, &(r, _)) in sel.rows.iter().enumerate() {
        set.read_rows(r, 1, &mut row)?;
        for (j, v) in row.iter().enumerate() {
            values[j * n + i] = *v;
        }
    }
    Ok(ProbeData {
        name: set.dir().display().to_string(),
        kind: UnitKind::Neuron,
        units: d,
        values: UnitValues::Dense(values),
        labels: sel.labels.clone(),
        groups: sel.groups.clone(),
    })
}

fn code_data(dir: &Path, rows_of: &ActivationSet, sel: &Selection) -> Result<ProbeData> {
    let codes = CodeSet::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    if codes.rows() != rows_of.rows() {
        bail!(
            "{} has {} rows but {} has {}; pass --proteins-from with the set it was encoded from",
            dir.display(),
            codes.rows(),
            rows_of.dir().display(),
            rows_of.rows()
        );
    }
    // Kept as sparse rows: a code set's units are zero on most rows, and the solver keeps
    // them sparse (a dense copy of 40,000 rows x 10,240 features would be 1.6 GB).
    let (mut row_ptr, mut unit, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for &(r, _) in &sel.rows {
        let (features, vals) = codes.row(r);
        unit.extend_from_slice(features);
        value.extend_from_slice(vals);
        row_ptr.push(unit.len() as u64);
    }
    Ok(ProbeData {
        name: dir.display().to_string(),
        kind: UnitKind::Feature,
        units: codes.d_sae(),
        values: UnitValues::Sparse {
            row_ptr,
            unit,
            value,
        },
        labels: sel.labels.clone(),
        groups: sel.groups.clone(),
    })
}

fn open_set(dir: &Path) -> Result<ActivationSet> {
    ActivationSet::open(dir).with_context(|| format!("opening {}", dir.display()))
}

/// Probes every set of `req` against its labels; writes the atlas tables and the JSON when
/// asked. Reports come back sorted by held-out AUROC, then F1, best first.
pub fn probe(req: &ProbeRequest) -> Result<ProbeOutcome> {
    let labels = read_labels(&req.labels)?;
    let level = req.level.unwrap_or(req.labels.level());
    if labels.residue != (level == Level::Residue) {
        bail!("residue labels need --level residue, protein labels --level protein");
    }
    let sets: Vec<ActivationSet> = req
        .activations
        .iter()
        .map(|d| open_set(d))
        .collect::<Result<_>>()?;
    let reference = req.proteins_from.as_deref().map(open_set).transpose()?;
    let reference = reference
        .as_ref()
        .or_else(|| sets.iter().find(|s| s.level() == level));
    let Some(reference) = reference else {
        bail!("no {level}-level activation set: pass --activations or --proteins-from");
    };
    for s in &sets {
        if s.level() != level {
            bail!(
                "{} is {}-level, the labels {level}-level",
                s.dir().display(),
                s.level()
            );
        }
    }
    let selection = select(reference, &labels, req.max_rows, req.seed);
    if selection.rows.is_empty() {
        bail!(
            "none of the {} labelled proteins of {} is in {} (whose ids look like {:?}); label \
             the proteins by the ids the set uses (UniProt accessions)",
            labels.by_id.len(),
            req.labels,
            reference.dir().display(),
            reference
                .proteins()
                .first()
                .map(|p| p.id.as_str())
                .unwrap_or("")
        );
    }
    let positives = selection.labels.iter().filter(|l| **l).count();
    let proteins = {
        let mut g = selection.groups.clone();
        g.dedup();
        g.len()
    };
    let options = ProbeOptions {
        c: req.c,
        test_fraction: req.test_fraction,
        seed: req.seed,
        ..ProbeOptions::default()
    };
    // Sets one after another (each probe is parallel inside), so one set's matrix is in memory.
    let mut reports: Vec<ProbeReport> = Vec::new();
    for dir in &req.codes {
        let data = code_data(dir, reference, &selection)?;
        reports.push(run_probe(&data, &options)?);
    }
    for set in &sets {
        if set.proteins().len() != reference.proteins().len() {
            bail!(
                "{} lists other proteins than {}",
                set.dir().display(),
                reference.dir().display()
            )
        }
        let data = dense_data(set, &selection)?;
        reports.push(run_probe(&data, &options)?);
    }
    reports.par_sort_by(|a, b| b.auroc.total_cmp(&a.auroc).then(b.f1.total_cmp(&a.f1)));
    if let Some(atlas) = &req.atlas {
        let labels_text = req.labels.to_string();
        write_probes(atlas, &labels_text, &level.to_string(), &options, &reports)?;
    }
    if let Some(path) = &req.json {
        let json = serde_json::to_string_pretty(&reports)?;
        plmscope_fsutil::write_atomic(path, json.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ProbeOutcome {
        reports,
        level,
        rows: selection.rows.len(),
        proteins,
        positives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_sources_and_renders_them_back() {
        let t = LabelSource::parse("tmbed=a.fasta", "strand", None).unwrap();
        assert_eq!(
            t,
            LabelSource::Tmbed {
                path: "a.fasta".into(),
                class: ResidueClass::TmStrand
            }
        );
        assert_eq!(t.to_string(), "tmbed=a.fasta");
        assert_eq!(t.level(), Level::Residue);
        let b = LabelSource::parse("binding=b.txt", "nonsense", None).unwrap();
        assert_eq!(b.to_string(), "binding=b.txt");
        let p = LabelSource::parse("p.tsv", "helix", Some("x".into())).unwrap();
        assert_eq!(p.level(), Level::Protein);
        assert_eq!(p.to_string(), "p.tsv");
        let err = LabelSource::parse("tmbed=a", "coil", None).unwrap_err();
        assert!(err.to_string().contains("--tmbed-class coil"), "{err}");
    }

    #[test]
    fn protein_tsv_positive_is_the_rarer_class_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.tsv");
        std::fs::write(&path, "# comment\n#accession\tclass\nA\tx\nB\ty\n\nC\ty\n").unwrap();
        let rows = read_protein_tsv(&path, None).unwrap();
        assert_eq!(
            rows,
            [("A".into(), true), ("B".into(), false), ("C".into(), false)]
        );
        std::fs::write(&path, "A\tx\nB y\n").unwrap();
        let err = read_protein_tsv(&path, None).unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
        std::fs::write(&path, "A\tx\nB\ty\nC\tz\n").unwrap();
        let err = read_protein_tsv(&path, None).unwrap_err().to_string();
        assert!(err.contains("3 classes"), "{err}");
    }
}

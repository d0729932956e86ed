//! `plmscope probe`: sparse logistic probes on code sets (features) and activation sets
//! (neurons) against protein or residue labels, ranked by held-out AUROC. Reading the sets and
//! the label files is here; the probe is `plmscope_interpret::probe`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use plmscope_bio::{uniprot_accession, BindingResiduesReader, TmbedReader};
use plmscope_interpret::probe::{
    atlas::write_probes, run_probe, ProbeData, ProbeOptions, ProbeReport, UnitKind,
};
use plmscope_store::{ActivationSet, CodeSet, Level};
use rayon::prelude::*;

#[derive(Args)]
pub struct ProbeArgs {
    /// Activation sets: their neurons are probed.
    #[arg(long, num_args = 1..)]
    activations: Vec<PathBuf>,
    /// Code sets: their features are probed.
    #[arg(long, num_args = 1..)]
    codes: Vec<PathBuf>,
    /// Labels: `tmbed=FILE` (TMbed 3-line file; residues in a TM helix, or --tmbed-class),
    /// `binding=FILE` (bindEmbed21 binding_residues_*.txt), or a protein TSV `accession<TAB>class`.
    #[arg(long)]
    labels: String,
    /// protein or residue (default: residue for TMbed and binding labels, protein for a TSV).
    #[arg(long)]
    level: Option<String>,
    /// With a TSV: the positive class (default: the rarer of two classes).
    #[arg(long)]
    positive: Option<String>,
    /// With TMbed labels: helix, strand or signal.
    #[arg(long, default_value = "helix")]
    tmbed_class: String,
    /// Activation set whose protein list the code sets share (default: the first --activations
    /// set of the same level).
    #[arg(long)]
    proteins_from: Option<PathBuf>,
    /// scikit-learn's C (inverse L1 strength).
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    #[arg(long, default_value_t = 0.3)]
    test_fraction: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// At most this many rows (whole proteins in seeded order), to bound memory.
    #[arg(long, default_value_t = 40000)]
    max_rows: usize,
    /// Write the results into this atlas (tables `probes`, `probe_units`).
    #[arg(long)]
    atlas: Option<PathBuf>,
    /// Write every report (path, coefficients, single units) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Per-residue (or per-protein) labels of the labelled proteins, by protein id.
struct Labels {
    residue: bool,
    /// One label per residue of the whole protein (TMbed), not positions up to the last one.
    full_length: bool,
    /// id → labels (one per residue, or one); `None` entries are excluded (TMbed `U`).
    by_id: HashMap<String, Vec<Option<bool>>>,
}

fn read_labels(args: &ProbeArgs) -> Result<Labels> {
    let mut by_id = HashMap::new();
    if let Some(path) = args.labels.strip_prefix("tmbed=") {
        use plmscope_bio::tmbed::ResidueClass;
        let class = match args.tmbed_class.as_str() {
            "helix" => ResidueClass::TmHelix,
            "strand" => ResidueClass::TmStrand,
            "signal" => ResidueClass::SignalPeptide,
            other => bail!("--tmbed-class {other}: use helix, strand or signal"),
        };
        for record in TmbedReader::open(path)? {
            let record = record?;
            let labels = record
                .labels
                .iter()
                .map(|l| match l.class() {
                    ResidueClass::Unknown => None,
                    c => Some(c == class),
                })
                .collect();
            by_id.insert(record.id.clone(), labels);
        }
        return Ok(Labels {
            residue: true,
            full_length: true,
            by_id,
        });
    }
    if let Some(path) = args.labels.strip_prefix("binding=") {
        for row in BindingResiduesReader::open(path)? {
            let row = row?;
            // Lengths come from the set; positions are stored 1-based, sized on use.
            let max = row.positions.iter().copied().max().unwrap_or(0) as usize;
            let mut labels = vec![Some(false); max];
            for p in &row.positions {
                if let Some(slot) = (*p as usize).checked_sub(1).and_then(|i| labels.get_mut(i)) {
                    *slot = Some(true);
                }
            }
            by_id.insert(row.accession.clone(), labels);
        }
        return Ok(Labels {
            residue: true,
            full_length: false,
            by_id,
        });
    }
    let text = std::fs::read_to_string(&args.labels)
        .with_context(|| format!("reading labels {}", args.labels))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut cells = line.split('\t');
        let (Some(accession), Some(class)) = (cells.next(), cells.next()) else {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            bail!("{}:{}: expected accession<TAB>class", args.labels, i + 1);
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
    // A header line names no class of the data: drop it when it occurs once in the first row.
    let positive = match &args.positive {
        Some(p) => p.clone(),
        None if classes.len() == 2 => classes.iter().min_by_key(|(_, n)| *n).unwrap().0.clone(),
        None => bail!(
            "{}: {} classes; name the positive one with --positive",
            args.labels,
            classes.len()
        ),
    };
    for (accession, class) in rows {
        by_id.insert(accession, vec![Some(class == positive)]);
    }
    Ok(Labels {
        residue: false,
        full_length: false,
        by_id,
    })
}

/// The labels of one set's protein (by id, then by its UniProt accession).
fn labels_of<'a>(labels: &'a Labels, id: &str) -> Option<&'a Vec<Option<bool>>> {
    labels
        .by_id
        .get(id)
        .or_else(|| uniprot_accession(id).and_then(|a| labels.by_id.get(a)))
}

/// Rows chosen for probing: (protein index, first row, rows, labels per row).
struct Selection {
    rows: Vec<(usize, usize)>,
    labels: Vec<bool>,
    groups: Vec<u32>,
}

fn select(set: &ActivationSet, labels: &Labels, max_rows: usize, seed: u64) -> Selection {
    // Seeded order of the proteins (splitmix64 of seed and index), so --max-rows takes a
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
        values,
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
    let (n, d) = (sel.rows.len(), codes.d_sae());
    let mut values = vec![0f32; n * d];
    for (i, &(r, _)) in sel.rows.iter().enumerate() {
        let (features, vals) = codes.row(r);
        for (f, v) in features.iter().zip(vals) {
            values[*f as usize * n + i] = *v;
        }
    }
    Ok(ProbeData {
        name: dir.display().to_string(),
        kind: UnitKind::Feature,
        units: d,
        values,
        labels: sel.labels.clone(),
        groups: sel.groups.clone(),
    })
}

pub fn run(args: ProbeArgs) -> Result<()> {
    let labels = read_labels(&args)?;
    let level = match args.level.as_deref() {
        Some("residue") => Level::Residue,
        Some("protein") => Level::Protein,
        Some(other) => bail!("--level {other}: use protein or residue"),
        None if labels.residue => Level::Residue,
        None => Level::Protein,
    };
    if labels.residue != (level == Level::Residue) {
        bail!("residue labels need --level residue, protein labels --level protein");
    }
    let sets: Vec<ActivationSet> = args
        .activations
        .iter()
        .map(|d| ActivationSet::open(d).with_context(|| format!("opening {}", d.display())))
        .collect::<Result<_>>()?;
    let reference = match &args.proteins_from {
        Some(d) => {
            Some(ActivationSet::open(d).with_context(|| format!("opening {}", d.display()))?)
        }
        None => None,
    };
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
    let selection = select(reference, &labels, args.max_rows, args.seed);
    let positives = selection.labels.iter().filter(|l| **l).count();
    let proteins = {
        let mut g = selection.groups.clone();
        g.dedup();
        g.len()
    };
    eprintln!(
        "{} rows of {proteins} labelled proteins ({positives} positive)",
        selection.rows.len()
    );
    let options = ProbeOptions {
        c: args.c,
        test_fraction: args.test_fraction,
        seed: args.seed,
        ..ProbeOptions::default()
    };
    // Sets one after another (each probe is parallel inside), so one set's matrix is in memory.
    let mut reports: Vec<ProbeReport> = Vec::new();
    for dir in &args.codes {
        let data = code_data(dir, reference, &selection)?;
        reports.push(run_probe(&data, &options)?);
    }
    for set in &sets {
        let data = if set.proteins().len() == reference.proteins().len() {
            dense_data(set, &selection)?
        } else {
            bail!(
                "{} lists other proteins than {}",
                set.dir().display(),
                reference.dir().display()
            )
        };
        reports.push(run_probe(&data, &options)?);
    }
    reports.par_sort_by(|a, b| b.auroc.total_cmp(&a.auroc).then(b.f1.total_cmp(&a.f1)));
    println!("rank\tauroc\tf1\tnonzero\tunits_for_95%\tbest_auroc\tkind\tunits\ttop single units (held-out AUROC)\tset");
    for (i, r) in reports.iter().enumerate() {
        let singles: Vec<String> = r
            .single_units
            .iter()
            .take(3)
            .map(|s| format!("{}:{:.3}", s.unit, s.test_auroc))
            .collect();
        println!(
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
        );
    }
    if let Some(atlas) = &args.atlas {
        write_probes(atlas, &args.labels, &level.to_string(), &options, &reports)?;
        eprintln!("probes written to {}", atlas.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

//! The eval and encode stages: a dictionary's reconstruction metrics on an activation set
//! (optionally the spliced-in masked-LM test), and a set encoded into sparse codes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_sae::code_sets::{encode_set, EncodeSummary};
use plmscope_sae::metrics::{check_fvu, Evaluation};
use plmscope_sae::store_source::{check_dimensions, check_finite, evaluate_set, probe_sample};
use plmscope_sae::{io, Dictionary, Kind};
use plmscope_store::codes::codes_file_name;
use plmscope_store::{
    split_by_protein, ActivationSet, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef,
    MANIFEST_FILE,
};
use serde_json::{json, Value};

use crate::shard::{balanced_ranges, input_hash, write_part, PartStage, PartWrite, ShardSpec};
use crate::splice::{splice_report, SpliceOptions};
use crate::train::{open_set, set_identity, BLOCK_ROWS};
use crate::Progress;

/// Rows of the probe sample that eval and encode check the FVU on before the real work.
const PROBE_ROWS: usize = 8192;

/// Evaluate `sae` on `activations` (and `target`, for transcoders). With the `cli` feature it
/// is also `plmscope eval`'s flags (the field docs are their help), less the spliced-in test's.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvalRequest {
    /// Dictionary directory (ours, SAELens or sparsify).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sae: PathBuf,
    /// Activation set; when it is the set the dictionary was trained on, only its validation
    /// proteins are used.
    #[cfg_attr(feature = "cli", arg(long))]
    pub activations: PathBuf,
    /// Target set, for transcoders.
    #[cfg_attr(feature = "cli", arg(long))]
    pub target: Option<PathBuf>,
    /// Also write the evaluation (with every latent's density) as JSON.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: Option<PathBuf>,
    /// Evaluate even when a probe's FVU is far worse than recorded at training.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_fvu_check: bool,
    /// The spliced-in masked-LM test (residue-level SAEs on resid_post).
    #[cfg_attr(feature = "cli", arg(skip))]
    pub splice: Option<SpliceRequest>,
}

/// The spliced-in test's inputs.
#[derive(Clone, Debug)]
pub struct SpliceRequest {
    pub model: String,
    pub fasta: PathBuf,
    pub max_proteins: usize,
    pub mask_fraction: f64,
    pub mask_seed: u64,
}

/// An evaluation and which proteins it covers.
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    pub evaluation: Evaluation,
    /// `validation proteins`, `all proteins`, ...
    pub split: &'static str,
    pub proteins: usize,
    pub recorded_fvu: Option<f64>,
    /// The spliced-in report, when requested.
    pub splice: Option<Value>,
}

/// The proteins to evaluate on: the recorded validation split when `set` is the set the
/// dictionary was trained on, else every protein.
fn evaluation_proteins(dict: &Dictionary, set: &ActivationSet) -> (Vec<usize>, &'static str) {
    let t = &dict.meta.training;
    let all = (0..set.proteins().len()).collect();
    let v = &t["validation"];
    let (Some(fraction), Some(seed)) = (v["fraction"].as_f64(), v["seed"].as_u64()) else {
        return (all, "all proteins");
    };
    if t["source"] != set_identity(set) {
        return (all, "all proteins (not the training set)");
    }
    let (_, validation) = split_by_protein(set.proteins().len(), fraction, seed);
    if validation.is_empty() {
        (all, "all proteins (no validation split recorded)")
    } else {
        (validation, "validation proteins")
    }
}

/// Refuses, through `check_fvu`, a dictionary that reconstructs a probe of `proteins` far worse
/// than recorded, naming the set's and the dictionary's layers.
fn probe_fvu(
    dict: &Dictionary,
    source: &ActivationSet,
    target: Option<&ActivationSet>,
    proteins: &[usize],
) -> Result<f64> {
    let (x, y) = probe_sample(source, target, proteins, PROBE_ROWS)?;
    check_fvu(dict, &x, y.as_deref()).with_context(|| {
        let h = source.header();
        let s = &dict.meta.source;
        format!(
            "{} is layer {} {} ({} level); the dictionary was trained on layer {} {} ({} level); \
             pass --no-fvu-check to go on anyway",
            source.dir().display(),
            h.layer,
            h.site,
            h.level,
            s.layer.map_or("?".to_string(), |l| l.to_string()),
            s.site.map_or("?", |site| site.name()),
            s.level.map_or("?", |level| level.name())
        )
    })
}

/// Evaluates a dictionary; writes `req.json` atomically when asked.
pub fn evaluate(req: &EvalRequest, progress: &dyn Progress) -> Result<EvalOutcome> {
    let dict = io::load(&req.sae).with_context(|| format!("loading {}", req.sae.display()))?;
    let source = open_set(&req.activations)?;
    let target = req.target.as_deref().map(open_set).transpose()?;
    check_dimensions(&dict, &source, target.as_ref())?;
    check_finite(&source)?;
    if let Some(t) = &target {
        check_finite(t)?;
    }
    let (proteins, split) = evaluation_proteins(&dict, &source);
    if !req.no_fvu_check {
        probe_fvu(&dict, &source, target.as_ref(), &proteins)?;
    }
    let rows: usize = proteins.iter().map(|&p| source.proteins()[p].rows).sum();
    progress.start("eval", Some(rows as u64), "rows");
    let e = evaluate_set(
        &dict,
        &source,
        target.as_ref(),
        &proteins,
        BLOCK_ROWS,
        |n| progress.advance(n as u64),
    )?;
    progress.finish();
    let splice = match &req.splice {
        Some(s) => Some(splice_report(
            &dict,
            &SpliceOptions {
                model: &s.model,
                fasta: &s.fasta,
                max_proteins: s.max_proteins,
                mask_fraction: s.mask_fraction,
                seed: s.mask_seed,
            },
        )?),
        None => None,
    };
    if let Some(path) = &req.json {
        let out = json!({
            "spliced_in": splice,
            "sae": req.sae.display().to_string(),
            "activations": req.activations.display().to_string(),
            "target": req.target.as_ref().map(|p| p.display().to_string()),
            "split": split, "proteins": proteins.len(),
            "recorded_fvu": dict.meta.metrics.fvu,
            "evaluation": e,
        });
        crate::write_atomic(path, serde_json::to_string_pretty(&out)?.as_bytes())?;
    }
    Ok(EvalOutcome {
        evaluation: e,
        split,
        proteins: proteins.len(),
        recorded_fvu: dict.meta.metrics.fvu,
        splice,
    })
}

impl std::fmt::Display for EvalOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.evaluation;
        writeln!(
            f,
            "({}: {} proteins, {} rows)",
            self.split, self.proteins, e.rows
        )?;
        writeln!(f, "  MSE             {:.6e}", e.mse)?;
        writeln!(f, "  FVE             {:.4}   (FVU {:.4})", e.fve, e.fvu)?;
        writeln!(f, "  L0              {:.2}", e.l0)?;
        writeln!(f, "  dead fraction   {:.4}", e.density.dead_fraction)?;
        writeln!(
            f,
            "  dense fraction  {:.4}   (active on > {} of rows)",
            e.density.dense_fraction, e.density.dense_threshold
        )?;
        if let Some(recorded) = self.recorded_fvu {
            writeln!(f, "  recorded FVU    {recorded:.4}")?;
        }
        writeln!(f, "  log10 density histogram (dead latents excluded):")?;
        for (edge, count) in e.density.log10_histogram.iter().filter(|(_, c)| *c > 0) {
            writeln!(f, "    [{edge:>5.1}, {:>5.1})  {count}", edge + 0.5)?;
        }
        if let Some(s) = &self.splice {
            writeln!(
                f,
                "spliced-in test at layer {} resid_post ({} proteins, {} masked residues, seed {}):",
                s["layer"], s["proteins"], s["masked_tokens"], s["seed"]
            )?;
            for (label, key) in [
                ("CE original       ", "ce_original"),
                ("CE reconstruction ", "ce_reconstruction"),
                ("CE zero ablation  ", "ce_zero_ablation"),
            ] {
                writeln!(
                    f,
                    "  {label} {:.4} nats",
                    s[key].as_f64().unwrap_or(f64::NAN)
                )?;
            }
            writeln!(
                f,
                "  loss recovered     {:.4}",
                s["loss_recovered"].as_f64().unwrap_or(f64::NAN)
            )?;
        }
        Ok(())
    }
}

/// Encode `activations` with `sae` into a code set at `out` (resumable). With the `cli`
/// feature it is also `plmscope encode`'s flags (the field docs are their help).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EncodeRequest {
    /// Dictionary directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub sae: PathBuf,
    /// Activation set to encode.
    #[cfg_attr(feature = "cli", arg(long))]
    pub activations: PathBuf,
    /// Output code set directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Encode even when a probe's FVU is far worse than recorded at training.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_fvu_check: bool,
}

/// What `plmscope encode` prints: rows encoded into `out`, shards written and found complete,
/// and codes per row.
pub fn encode_report(summary: &EncodeSummary, out: &Path) -> String {
    format!(
        "encoded {} rows into {} ({} shards written, {} already complete; {:.2} codes per row)",
        summary.rows,
        out.display(),
        summary.written,
        summary.skipped,
        summary.nnz as f64 / summary.rows.max(1) as f64
    )
}

/// Encodes a set shard by shard; a rerun completes what a crash left.
pub fn encode(req: &EncodeRequest, progress: &dyn Progress) -> Result<EncodeSummary> {
    let (dict, set, dictionary) = prepare_encode(req)?;
    let n_shards = set.manifest().shards.len();
    progress.start("encode", Some(set.rows() as u64), "rows");
    let summary = encode_set(
        &dict,
        dictionary,
        &set,
        &req.out,
        json!({}),
        BLOCK_ROWS,
        |shard, rows, skipped| {
            progress.advance(rows as u64);
            progress.message(&format!(
                "shard {}/{n_shards}{}",
                shard + 1,
                if skipped { " (already done)" } else { "" }
            ));
        },
    )?;
    progress.finish();
    Ok(summary)
}

/// Part `shard` of an encode split N ways ([`crate::shard`]): encodes only the part's shards
/// (a contiguous run balanced by rows) into the code set at `req.out`, leaves it unfinished and
/// writes `part.json`; [`crate::merge::merge`] joins the parts. Resumable like [`encode`].
pub fn encode_part(
    req: &EncodeRequest,
    shard: ShardSpec,
    progress: &dyn Progress,
) -> Result<EncodeSummary> {
    let (dict, set, dictionary) = prepare_encode(req)?;
    if req.out.exists() {
        crate::shard::prepare_part_dir(&req.out)?;
    }
    let header = CodeSetHeader::for_activation_set(&set, dictionary, json!({}));
    let mut writer = CodeSetWriter::create_or_resume(&req.out, header)?;
    let shard_rows: Vec<u64> = set
        .manifest()
        .shards
        .iter()
        .map(|s| s.rows as u64)
        .collect();
    let ranges = balanced_ranges(&shard_rows, shard.count);
    let mine = ranges[shard.index].clone();
    let mut summary = EncodeSummary {
        shards: mine.len(),
        written: 0,
        skipped: 0,
        rows: 0,
        nnz: 0,
    };
    let part_rows: u64 = shard_rows[mine.clone()].iter().sum();
    progress.start("encode", Some(part_rows), "rows");
    let mut first_row: usize = shard_rows[..mine.start].iter().sum::<u64>() as usize;
    let mut x = Vec::new();
    for index in mine.clone() {
        let rows = shard_rows[index] as usize;
        if writer.is_shard_complete(index) {
            summary.skipped += 1;
        } else {
            // The same blocks as `encode_set`, so the codes are the same bytes.
            let mut csr = CsrRows::new();
            let mut start = first_row;
            while start < first_row + rows {
                let count = (first_row + rows - start).min(BLOCK_ROWS);
                set.read_rows(start, count, &mut x)?;
                let codes = dict.encode(&x)?;
                for r in 0..codes.rows() {
                    let (features, values) = codes.row(r);
                    csr.push_row(features, values);
                }
                start += count;
            }
            summary.nnz += csr.nnz() as u64;
            writer.write_shard(index, &csr)?;
            summary.written += 1;
            summary.rows += rows;
        }
        progress.advance(rows as u64);
        first_row += rows;
    }
    progress.finish();
    drop(writer);
    let activation_manifest = std::fs::read(req.activations.join(MANIFEST_FILE))?;
    let code_manifest = std::fs::read(req.out.join(MANIFEST_FILE))
        .with_context(|| format!("reading {}", req.out.join(MANIFEST_FILE).display()))?;
    write_part(
        &req.out,
        PartWrite {
            stage: PartStage::Encode,
            spec: shard,
            input_sha256: input_hash(&[
                ("activations", &activation_manifest),
                ("codes", &code_manifest),
            ]),
            weight: "rows",
            ranges: &ranges,
            weights: &shard_rows,
            sets: vec![(String::new(), mine.map(codes_file_name).collect())],
            files: Vec::new(),
            go: None,
        },
    )?;
    Ok(summary)
}

/// The dictionary, the set and the dictionary's record in the code set, checked (widths,
/// finite values, a probe's FVU) as `encode` checks them.
fn prepare_encode(req: &EncodeRequest) -> Result<(Dictionary, ActivationSet, DictionaryRef)> {
    let dict = io::load(&req.sae).with_context(|| format!("loading {}", req.sae.display()))?;
    let set = open_set(&req.activations)?;
    if dict.d_in != set.d_model() {
        bail!(
            "{} takes rows of width d_in = {}, but {} holds rows of width {}",
            req.sae.display(),
            dict.d_in,
            req.activations.display(),
            set.d_model()
        );
    }
    check_finite(&set)?;
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    if !req.no_fvu_check && dict.kind == Kind::Sae {
        probe_fvu(&dict, &set, None, &all)?;
    }
    let dictionary = DictionaryRef {
        id: req.sae.display().to_string(),
        architecture: dict.architecture.name().to_string(),
        d_sae: dict.d_sae,
        weights_sha256: io::weights_sha256(&req.sae)?,
    };
    Ok((dict, set, dictionary))
}

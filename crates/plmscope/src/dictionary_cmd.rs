//! `plmscope train | eval | encode`: sparse dictionaries on activation sets.
//!
//! The work lives in `plmscope-sae` (training, the checkpoint group, evaluation, encoding) and
//! `plmscope-store` (sets, shuffling, code sets); this module parses arguments, checks the
//! inputs before anything is written, and shows progress.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plmscope_sae::checkpoint_group::{CheckpointGroup, RUN_FILE};
use plmscope_sae::code_sets::encode_set;
use plmscope_sae::metrics::{check_fvu, Evaluation};
use plmscope_sae::store_source::{
    check_dimensions, check_finite, check_pair, evaluate_set, probe_sample, StoreBatches,
};
use plmscope_sae::trainer::{train_many, TrainConfig, TrainNorm, Trainer};
use plmscope_sae::{io, Architecture, Dictionary, Kind, SiteRef};
use plmscope_store::{split_by_protein, ActivationSet, DictionaryRef, Level, ShuffleConfig};
use serde_json::{json, Value};

/// Rows per block when evaluating or encoding: bounds memory to a few blocks × d_sae floats.
const BLOCK_ROWS: usize = 8192;
/// Rows of the probe sample that `eval` and `encode` check the FVU on before the real work.
const PROBE_ROWS: usize = 8192;
/// Default shuffle buffer, in bytes of f32 rows (source + target).
const SHUFFLE_BUFFER_BYTES: usize = 256 << 20;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Normalize {
    /// Raw activations.
    None,
    /// One constant scale so that E‖x‖² = d on the first batch (SAELens, dictionary_learning);
    /// folded into the saved weights.
    UnitMeanSquare,
    /// Per-row LayerNorm, undone after decoding (seed paper, InterProt); SAEs only.
    Layernorm,
}

/// Stated in `plmscope train --help`: where the defaults come from.
const TRAIN_DEFAULTS_NOTE: &str = "Defaults follow the papers: residue level k = 32 and \
expansion 32 (InterPLM's 10,240 latents on ESM2-8M); protein level k = 64 and 20,000 latents \
(the seed paper, Gujral et al.). Optimiser and TopK details follow sparsify: Adam \
2e-4/sqrt(latents/2^14), constant; unit-norm decoder rows; b_dec from the first batch's mean; \
AuxK 1/32. Several values of --arch, --k and --expansion train every combination from one \
read of the data.";

/// Train sparse autoencoders (or transcoders, with --target) on an activation set.
#[derive(Args, Debug)]
#[command(after_help = TRAIN_DEFAULTS_NOTE)]
pub struct TrainArgs {
    /// Activation set (a directory written by `plmscope embed`).
    #[arg(long)]
    pub activations: PathBuf,
    /// Target set for a transcoder (e.g. layerL.mlp_out.residue for --activations
    /// layerL.mlp_in.residue); must hold the same proteins in the same order.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Architectures: topk, batchtopk, relu, jumprelu (comma list: each is trained).
    #[arg(long, value_delimiter = ',', default_value = "topk")]
    pub arch: Vec<String>,
    /// Active latents per row (comma list). Default: 32 at residue level, 64 at protein level.
    #[arg(long, value_delimiter = ',')]
    pub k: Vec<usize>,
    /// Latents per input dimension (comma list). Default: 32 at residue level; at protein
    /// level the default is 20,000 latents (see --latents).
    #[arg(long, value_delimiter = ',', conflicts_with = "latents")]
    pub expansion: Vec<usize>,
    /// Number of latents, instead of --expansion (comma list).
    #[arg(long, value_delimiter = ',')]
    pub latents: Vec<usize>,
    /// Passes over the training proteins (default 1).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<u64>,
    /// Training steps (batches), instead of --epochs; the data cycles as needed.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Learning rate for every dictionary (default: 2e-4/√(latents/2^14)).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Rows per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Fraction of proteins held out for validation (split by protein, seeded).
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    /// Seed of the weights, the split and the row order.
    #[arg(long)]
    pub seed: u64,
    /// Output directory; with several dictionaries one sub-directory each,
    /// named <arch>-k<k>-x<expansion> (or -n<latents>).
    #[arg(long)]
    pub out: PathBuf,
    /// Write a checkpoint (train state, cfg.json, weights) every N steps.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Continue the run in --out from its last checkpoint (same arguments).
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value = "none")]
    pub normalize: Normalize,
    /// Let decoder rows take any norm (the seed paper) instead of keeping them unit norm.
    #[arg(long)]
    pub no_decoder_norm: bool,
    /// L1 coefficient of relu dictionaries.
    #[arg(long, default_value_t = 1e-3)]
    pub l1_coefficient: f32,
    /// L0 coefficient of jumprelu dictionaries.
    #[arg(long, default_value_t = 1e-3)]
    pub l0_coefficient: f32,
    /// Rows shuffled together in RAM (default: 256 MiB worth).
    #[arg(long)]
    pub shuffle_buffer: Option<usize>,
    /// A latent silent for this many rows is dead (AuxK revives it). Default: 10M rows or
    /// one epoch, whichever is smaller.
    #[arg(long)]
    pub dead_window: Option<u64>,
}

/// Evaluate a dictionary on an activation set.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Dictionary directory (ours, SAELens or sparsify).
    #[arg(long)]
    pub sae: PathBuf,
    /// Activation set; when it is the set the dictionary was trained on, only its validation
    /// proteins are used.
    #[arg(long)]
    pub activations: PathBuf,
    /// Target set, for transcoders.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Also write the evaluation (with every latent's density) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Evaluate even when a probe's FVU is far worse than recorded at training.
    #[arg(long)]
    pub no_fvu_check: bool,
    /// With --fasta: also run the spliced-in test (residue-level SAEs on resid_post): the
    /// masked-LM cross-entropy of this model with the layer replaced by the reconstruction,
    /// by zeros, and untouched, and the loss recovered.
    #[arg(long, requires = "fasta")]
    pub model: Option<String>,
    /// Proteins for the spliced-in test.
    #[arg(long, requires = "model")]
    pub fasta: Option<PathBuf>,
    /// Proteins used from --fasta (the first N valid ones).
    #[arg(long, default_value_t = 128)]
    pub max_proteins: usize,
    /// Fraction of residues masked per protein (seeded per protein).
    #[arg(long, default_value_t = 0.15)]
    pub mask_fraction: f64,
    #[arg(long, default_value_t = 0)]
    pub mask_seed: u64,
}

/// Encode an activation set into a sparse code set (CSR), shard by shard; rerun to resume.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Dictionary directory.
    #[arg(long)]
    pub sae: PathBuf,
    /// Activation set to encode.
    #[arg(long)]
    pub activations: PathBuf,
    /// Output code set directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Encode even when a probe's FVU is far worse than recorded at training.
    #[arg(long)]
    pub no_fvu_check: bool,
}

/// One dictionary of a training run: its sub-directory name and configuration.
struct Planned {
    name: String,
    config: TrainConfig,
}

fn open_set(dir: &Path) -> Result<ActivationSet> {
    ActivationSet::open(dir).with_context(|| format!("opening activation set {}", dir.display()))
}

fn site_ref(set: &ActivationSet) -> SiteRef {
    let h = set.header();
    SiteRef {
        model: h.model.id.clone(),
        layer: Some(h.layer as u32),
        site: h.site.clone(),
        level: h.level.to_string(),
    }
}

/// What identifies a set's content (not its path), for resume checks and the record.
fn set_identity(set: &ActivationSet) -> Value {
    let h = set.header();
    json!({
        "model": h.model, "layer": h.layer, "site": h.site, "level": h.level,
        "d_model": h.d_model, "proteins": h.total_proteins, "rows": set.rows(),
    })
}

fn plan(
    args: &TrainArgs,
    source: &ActivationSet,
    target: Option<&ActivationSet>,
) -> Result<Vec<Planned>> {
    let protein_level = source.level() == Level::Protein;
    let d_in = source.d_model();
    let ks = if args.k.is_empty() {
        vec![if protein_level { 64 } else { 32 }]
    } else {
        args.k.clone()
    };
    // (name suffix, latents)
    let sizes: Vec<(String, usize)> = if !args.latents.is_empty() {
        args.latents.iter().map(|&n| (format!("n{n}"), n)).collect()
    } else if !args.expansion.is_empty() {
        args.expansion
            .iter()
            .map(|&x| (format!("x{x}"), x * d_in))
            .collect()
    } else if protein_level {
        vec![("n20000".into(), 20_000)]
    } else {
        vec![("x32".into(), 32 * d_in)]
    };
    let mut planned: Vec<Planned> = Vec::new();
    for arch_name in &args.arch {
        let arch =
            Architecture::from_name(arch_name).map_err(|e| anyhow::anyhow!("--arch: {e}"))?;
        for (size_name, d_sae) in &sizes {
            let k_values: Vec<Option<usize>> = if arch.uses_k() {
                ks.iter().map(|&k| Some(k)).collect()
            } else {
                vec![None]
            };
            for k in k_values {
                let mut c =
                    TrainConfig::topk(d_in, *d_sae, k.unwrap_or(ks[0])).with_architecture(arch);
                c.seed = args.seed;
                if let Some(lr) = args.lr {
                    c.schedule.lr = lr;
                }
                if let Some(t) = target {
                    c.kind = Kind::Transcoder;
                    c.d_out = t.d_model();
                    c.apply_b_dec_to_input = false;
                }
                c.unit_norm_decoder = !args.no_decoder_norm;
                c.input_norm = match args.normalize {
                    Normalize::None => TrainNorm::None,
                    Normalize::UnitMeanSquare => TrainNorm::UnitMeanSquare,
                    Normalize::Layernorm => TrainNorm::LayerNorm { eps: 1e-5 },
                };
                c.l1_coefficient = args.l1_coefficient;
                c.l0_coefficient = args.l0_coefficient;
                let name = match k {
                    Some(k) => format!("{}-k{k}-{size_name}", arch.name()),
                    None => format!("{}-{size_name}", arch.name()),
                };
                planned.push(Planned { name, config: c });
            }
        }
    }
    if planned.len() == 1 {
        planned[0].name = String::new();
    }
    Ok(planned)
}

pub fn train(args: TrainArgs) -> Result<()> {
    // Everything is checked before the output directory is touched.
    let source = open_set(&args.activations)?;
    let target = args.target.as_deref().map(open_set).transpose()?;
    if let Some(t) = &target {
        check_pair(&source, t)?;
    }
    let mut planned = plan(&args, &source, target.as_ref())?;
    if args.batch == 0 {
        bail!("--batch must be positive");
    }
    check_finite(&source)?;
    if let Some(t) = &target {
        check_finite(t)?;
    }
    let n_proteins = source.proteins().len();
    let (train_proteins, val_proteins) = split_by_protein(n_proteins, args.val_fraction, args.seed);
    let d_rows = source.d_model() + target.as_ref().map_or(0, |t| t.d_model());
    let buffer_rows = args
        .shuffle_buffer
        .unwrap_or(SHUFFLE_BUFFER_BYTES / (4 * d_rows))
        .max(args.batch);
    let shuffle = ShuffleConfig {
        batch_size: args.batch,
        buffer_rows,
        seed: args.seed,
    };
    let mut batches = StoreBatches::new(&source, target.as_ref(), train_proteins.clone(), shuffle)?;
    let steps = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, e) => e.unwrap_or(1) * batches.steps_per_epoch(),
    };
    if let Some(e) = args.epochs {
        batches = batches.with_max_epochs(e);
    }
    let dead_window = args
        .dead_window
        .unwrap_or((batches.rows_per_epoch() as u64).min(10_000_000));
    for p in &mut planned {
        p.config.schedule.total_steps = steps;
        p.config.dead_window_rows = dead_window;
    }
    let mut trainers = planned
        .iter()
        .map(|p| Trainer::new(p.config.clone()).with_context(|| format!("dictionary {}", p.name)))
        .collect::<Result<Vec<_>>>()?;
    let settings = json!({
        "source": set_identity(&source),
        "target": target.as_ref().map(set_identity),
        "dictionaries": planned.iter().map(|p| json!({"name": p.name, "config": p.config})).collect::<Vec<_>>(),
        "shuffle": shuffle, "val_fraction": args.val_fraction, "seed": args.seed, "steps": steps,
    });
    let names: Vec<String> = planned.iter().map(|p| p.name.clone()).collect();
    let mut group = if args.resume && args.out.join(RUN_FILE).exists() {
        let resumed = CheckpointGroup::resume(&args.out, &settings)?;
        if resumed.group.record().complete {
            println!("{}: training already complete", args.out.display());
            return Ok(());
        }
        if let Some((loaded, position)) = resumed.state {
            trainers = loaded;
            batches.seek(&position)?;
            eprintln!(
                "resuming {} at step {}",
                args.out.display(),
                trainers[0].steps_done()
            );
        }
        resumed.group
    } else {
        CheckpointGroup::create(&args.out, names, settings)?
    };
    let training = json!({
        "activations": args.activations.display().to_string(),
        "source": set_identity(&source),
        "target_activations": args.target.as_ref().map(|p| p.display().to_string()),
        "target": target.as_ref().map(set_identity),
        "validation": {"fraction": args.val_fraction, "seed": args.seed,
                       "proteins": val_proteins.len(), "of_proteins": n_proteins},
        "batch": args.batch, "steps": steps, "epochs": args.epochs,
        "rows_per_epoch": batches.rows_per_epoch(), "shuffle_buffer_rows": buffer_rows,
    });
    let annotate = |mut d: Dictionary| {
        d.meta.source = site_ref(&source);
        d.meta.target = target
            .as_ref()
            .map(site_ref)
            .unwrap_or_else(|| site_ref(&source));
        d.meta.training = training.clone();
        d
    };
    run_steps(
        &mut trainers,
        &mut batches,
        &mut group,
        steps,
        args.checkpoint_every,
        &planned,
        &annotate,
    )?;

    // Final metrics on the validation proteins (or a training sample when there are none).
    let (eval_proteins, split) = if val_proteins.is_empty() {
        (train_proteins, "train")
    } else {
        (val_proteins, "validation")
    };
    let mut finals = Vec::new();
    for t in &trainers {
        let mut d = annotate(t.to_dictionary());
        let e = evaluate_set(
            &d,
            &source,
            target.as_ref(),
            &eval_proteins,
            BLOCK_ROWS,
            |_| {},
        )?;
        d.meta.metrics.fvu = Some(e.fvu);
        d.meta.metrics.mse = Some(e.mse);
        d.meta.metrics.l0 = Some(e.l0);
        d.meta.metrics.dead_fraction = Some(e.density.dead_fraction);
        d.meta.training["metrics_split"] = json!(split);
        d.meta.training["final_metrics"] = summary_json(&e);
        finals.push((d, e));
    }
    let dicts: Vec<Dictionary> = finals.iter().map(|(d, _)| d.clone()).collect();
    group.checkpoint(&trainers, &dicts, batches.position())?;
    group.finish()?;
    println!(
        "{:<28} {:>10} {:>8} {:>8} {:>8}   ({split} split)",
        "dictionary", "MSE", "FVE", "L0", "dead"
    );
    for (p, (_, e)) in planned.iter().zip(&finals) {
        let name = if p.name.is_empty() {
            args.out.display().to_string()
        } else {
            p.name.clone()
        };
        println!(
            "{name:<28} {:>10.4e} {:>8.4} {:>8.2} {:>8.4}",
            e.mse, e.fve, e.l0, e.density.dead_fraction
        );
    }
    Ok(())
}

/// Trains up to `steps` steps in chunks of `every`, checkpointing after each chunk.
fn run_steps(
    trainers: &mut [Trainer],
    batches: &mut StoreBatches,
    group: &mut CheckpointGroup,
    steps: u64,
    every: u64,
    planned: &[Planned],
    annotate: &dyn Fn(Dictionary) -> Dictionary,
) -> Result<()> {
    let multi = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:>20} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("valid template");
    let bars: Vec<ProgressBar> = planned
        .iter()
        .zip(trainers.iter())
        .map(|(p, t)| {
            let bar = multi.add(ProgressBar::new(steps).with_style(style.clone()));
            bar.set_prefix(if p.name.is_empty() {
                "dictionary".to_string()
            } else {
                p.name.clone()
            });
            bar.set_position(t.steps_done());
            bar
        })
        .collect();
    let mut done = trainers.first().map_or(0, Trainer::steps_done);
    let every = if every == 0 { steps.max(1) } else { every };
    while done < steps {
        let chunk = every.min(steps - done);
        let ran = train_many(trainers, batches, chunk, |i, step, s| {
            bars[i].set_position(step);
            bars[i].set_message(format!(
                "loss {:.4} FVE {:.3} L0 {:.1} dead {:.3}",
                s.loss,
                1.0 - s.fvu,
                s.l0,
                s.dead_fraction
            ));
        })?;
        done += ran;
        if ran == 0 {
            break;
        }
        let dicts: Vec<Dictionary> = trainers
            .iter()
            .map(|t| annotate(t.to_dictionary()))
            .collect();
        group.checkpoint(trainers, &dicts, batches.position())?;
        tracing::info!(step = done, "checkpoint written");
        if ran < chunk {
            break; // the epochs ran out
        }
    }
    bars.iter().for_each(ProgressBar::finish_and_clear);
    Ok(())
}

fn summary_json(e: &Evaluation) -> Value {
    json!({"rows": e.rows, "mse": e.mse, "fvu": e.fvu, "fve": e.fve, "l0": e.l0,
           "dead_fraction": e.density.dead_fraction, "dense_fraction": e.density.dense_fraction})
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
            s.site,
            s.level
        )
    })
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let dict = io::load(&args.sae).with_context(|| format!("loading {}", args.sae.display()))?;
    let source = open_set(&args.activations)?;
    let target = args.target.as_deref().map(open_set).transpose()?;
    check_dimensions(&dict, &source, target.as_ref())?;
    check_finite(&source)?;
    if let Some(t) = &target {
        check_finite(t)?;
    }
    let (proteins, split) = evaluation_proteins(&dict, &source);
    if !args.no_fvu_check {
        probe_fvu(&dict, &source, target.as_ref(), &proteins)?;
    }
    let rows: usize = proteins.iter().map(|&p| source.proteins()[p].rows).sum();
    let bar = ProgressBar::new(rows as u64).with_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:40} {pos}/{len} rows, ETA {eta}")
            .expect("valid template"),
    );
    let e = evaluate_set(
        &dict,
        &source,
        target.as_ref(),
        &proteins,
        BLOCK_ROWS,
        |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    println!(
        "{} on {} ({split}: {} proteins, {} rows)",
        args.sae.display(),
        args.activations.display(),
        proteins.len(),
        e.rows
    );
    println!("  MSE             {:.6e}", e.mse);
    println!("  FVE             {:.4}   (FVU {:.4})", e.fve, e.fvu);
    println!("  L0              {:.2}", e.l0);
    println!("  dead fraction   {:.4}", e.density.dead_fraction);
    println!(
        "  dense fraction  {:.4}   (active on > {} of rows)",
        e.density.dense_fraction, e.density.dense_threshold
    );
    if let Some(recorded) = dict.meta.metrics.fvu {
        println!("  recorded FVU    {recorded:.4}");
    }
    println!("  log10 density histogram (dead latents excluded):");
    for (edge, count) in e.density.log10_histogram.iter().filter(|(_, c)| *c > 0) {
        println!("    [{edge:>5.1}, {:>5.1})  {count}", edge + 0.5);
    }
    let splice = match (&args.model, &args.fasta) {
        (Some(model), Some(fasta)) => Some(crate::splice_cmd::splice_report(
            &dict,
            &crate::splice_cmd::SpliceOptions {
                model,
                fasta,
                max_proteins: args.max_proteins,
                mask_fraction: args.mask_fraction,
                seed: args.mask_seed,
            },
        )?),
        _ => None,
    };
    if let Some(path) = &args.json {
        let out = json!({
            "spliced_in": splice,
            "sae": args.sae.display().to_string(),
            "activations": args.activations.display().to_string(),
            "target": args.target.as_ref().map(|p| p.display().to_string()),
            "split": split, "proteins": proteins.len(),
            "recorded_fvu": dict.meta.metrics.fvu,
            "evaluation": e,
        });
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub fn encode(args: EncodeArgs) -> Result<()> {
    let dict = io::load(&args.sae).with_context(|| format!("loading {}", args.sae.display()))?;
    let set = open_set(&args.activations)?;
    if dict.d_in != set.d_model() {
        bail!(
            "{} takes rows of width d_in = {}, but {} holds rows of width {}",
            args.sae.display(),
            dict.d_in,
            args.activations.display(),
            set.d_model()
        );
    }
    check_finite(&set)?;
    let all: Vec<usize> = (0..set.proteins().len()).collect();
    if !args.no_fvu_check && dict.kind == Kind::Sae {
        probe_fvu(&dict, &set, None, &all)?;
    }
    let dictionary = DictionaryRef {
        id: args.sae.display().to_string(),
        architecture: dict.architecture.name().to_string(),
        d_sae: dict.d_sae,
        weights_sha256: io::weights_sha256(&args.sae)?,
    };
    let bar = ProgressBar::new(set.rows() as u64).with_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:40} {pos}/{len} rows, {msg}, ETA {eta}",
        )
        .expect("valid template"),
    );
    let n_shards = set.manifest().shards.len();
    let summary = encode_set(
        &dict,
        dictionary,
        &set,
        &args.out,
        json!({}),
        BLOCK_ROWS,
        |shard, rows, skipped| {
            bar.inc(rows as u64);
            bar.set_message(format!(
                "shard {}/{n_shards}{}",
                shard + 1,
                if skipped { " (already done)" } else { "" }
            ));
        },
    )?;
    bar.finish_and_clear();
    println!(
        "encoded {} rows into {} ({} shards written, {} already complete; {:.2} codes per row)",
        summary.rows,
        args.out.display(),
        summary.written,
        summary.skipped,
        summary.nnz as f64 / summary.rows.max(1) as f64
    );
    Ok(())
}

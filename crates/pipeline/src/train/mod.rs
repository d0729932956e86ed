//! The train stage: one or more sparse dictionaries (SAEs or transcoders) from one read of an
//! activation set, checkpointed every N steps and resumable to the bit.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_sae::checkpoint_group::{CheckpointGroup, RUN_FILE};
use plmscope_sae::metrics::Evaluation;
use plmscope_sae::store_source::{check_finite, check_pair, evaluate_set, StoreBatches};
use plmscope_sae::trainer::{train_many, TrainConfig, TrainNorm, Trainer};
use plmscope_sae::{Architecture, Dictionary, Kind, SiteRef};
use plmscope_store::{split_by_protein, ActivationSet, Level, ShuffleConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Progress;

/// Rows per block when evaluating or encoding: bounds memory to a few blocks × d_sae floats.
pub const BLOCK_ROWS: usize = 8192;
/// Default shuffle buffer, in bytes of f32 rows (source + target).
const SHUFFLE_BUFFER_BYTES: usize = 256 << 20;

/// Input normalisation while training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Raw activations.
    #[default]
    None,
    /// One constant scale so that E‖x‖² = d on the first batch (SAELens, dictionary_learning);
    /// folded into the saved weights.
    UnitMeanSquare,
    /// Per-row LayerNorm, undone after decoding (seed paper, InterProt); SAEs only.
    Layernorm,
}

/// How many latents a dictionary has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DictionarySize {
    /// Latents per input dimension.
    Expansion(usize),
    /// An absolute number of latents.
    Latents(usize),
}

impl DictionarySize {
    /// The sizes of a request given as two lists: absolute `latents` when there are any,
    /// else `expansions` (both empty: the papers' default for the set's level).
    pub fn list(latents: Vec<usize>, expansions: Vec<usize>) -> Vec<DictionarySize> {
        if latents.is_empty() {
            expansions
                .into_iter()
                .map(DictionarySize::Expansion)
                .collect()
        } else {
            latents.into_iter().map(DictionarySize::Latents).collect()
        }
    }
}

/// One training run: every combination of `archs` × `sizes` × `ks` is trained from one read
/// of the data. Empty `ks` / `sizes` take the papers' defaults for the set's level.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub activations: PathBuf,
    /// Target set for a transcoder (same proteins in the same order).
    pub target: Option<PathBuf>,
    pub archs: Vec<Architecture>,
    pub ks: Vec<usize>,
    pub sizes: Vec<DictionarySize>,
    /// Passes over the training proteins (default 1 when `steps` is not given).
    pub epochs: Option<u64>,
    pub steps: Option<u64>,
    /// Default: 2e-4/√(latents/2^14).
    pub lr: Option<f32>,
    pub batch: usize,
    pub val_fraction: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub checkpoint_every: u64,
    /// Continue a run in `out` from its last checkpoint.
    pub resume: bool,
    pub normalize: Normalize,
    pub decoder_norm: bool,
    pub l1_coefficient: f32,
    pub l0_coefficient: f32,
    /// Rows shuffled together in RAM (default: 256 MiB worth).
    pub shuffle_buffer: Option<usize>,
    /// A latent silent for this many rows is dead. Default: 10M rows or one epoch.
    pub dead_window: Option<u64>,
    /// Applied to every dictionary's configuration last (presets).
    pub adjust: Option<fn(&mut TrainConfig, Level)>,
}

impl TrainRequest {
    /// A request with the command line's defaults.
    pub fn new(activations: PathBuf, out: PathBuf, seed: u64) -> Self {
        TrainRequest {
            activations,
            target: None,
            archs: vec![Architecture::TopK],
            ks: Vec::new(),
            sizes: Vec::new(),
            epochs: None,
            steps: None,
            lr: None,
            batch: 4096,
            val_fraction: 0.05,
            seed,
            out,
            checkpoint_every: 1000,
            resume: false,
            normalize: Normalize::None,
            decoder_norm: true,
            l1_coefficient: 1e-3,
            l0_coefficient: 1e-3,
            shuffle_buffer: None,
            dead_window: None,
            adjust: None,
        }
    }
}

/// One trained dictionary and its final metrics.
#[derive(Clone, Debug)]
pub struct TrainedDictionary {
    /// Sub-directory name (empty when the run trained one dictionary into `out` itself).
    pub name: String,
    pub dir: PathBuf,
    pub evaluation: Evaluation,
}

/// What a training run did.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The run in `out` had already finished; nothing was trained.
    pub already_complete: bool,
    /// Which proteins the final metrics are on: `validation` or `train`.
    pub split: &'static str,
    pub dictionaries: Vec<TrainedDictionary>,
}

impl std::fmt::Display for TrainOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<28} {:>10} {:>8} {:>8} {:>8}   ({} split)",
            "dictionary", "MSE", "FVE", "L0", "dead", self.split
        )?;
        for d in &self.dictionaries {
            let e = &d.evaluation;
            let name = if d.name.is_empty() {
                d.dir.display().to_string()
            } else {
                d.name.clone()
            };
            writeln!(
                f,
                "{name:<28} {:>10.4e} {:>8.4} {:>8.2} {:>8.4}",
                e.mse, e.fve, e.l0, e.density.dead_fraction
            )?;
        }
        Ok(())
    }
}

/// One dictionary of a training run: its sub-directory name and configuration.
struct Planned {
    name: String,
    config: TrainConfig,
}

pub(crate) fn open_set(dir: &Path) -> Result<ActivationSet> {
    ActivationSet::open(dir).with_context(|| format!("opening activation set {}", dir.display()))
}

pub(crate) fn site_ref(set: &ActivationSet) -> SiteRef {
    let h = set.header();
    SiteRef {
        model: h.model.id.clone(),
        layer: Some(h.layer as u32),
        site: Some(h.site),
        level: Some(h.level),
    }
}

/// What identifies a set's content (not its path), for resume checks and the record.
pub(crate) fn set_identity(set: &ActivationSet) -> Value {
    let h = set.header();
    json!({
        "model": h.model, "layer": h.layer, "site": h.site, "level": h.level,
        "d_model": h.d_model, "proteins": h.total_proteins, "rows": set.rows(),
    })
}

fn plan(
    req: &TrainRequest,
    source: &ActivationSet,
    target: Option<&ActivationSet>,
) -> Result<Vec<Planned>> {
    let level = source.level();
    let protein_level = level == Level::Protein;
    let d_in = source.d_model();
    let ks = if req.ks.is_empty() {
        vec![if protein_level { 64 } else { 32 }]
    } else {
        req.ks.clone()
    };
    let sizes: Vec<DictionarySize> = if !req.sizes.is_empty() {
        req.sizes.clone()
    } else if protein_level {
        vec![DictionarySize::Latents(20_000)]
    } else {
        vec![DictionarySize::Expansion(32)]
    };
    if req.archs.is_empty() {
        bail!("no architecture to train");
    }
    let mut planned: Vec<Planned> = Vec::new();
    for &arch in &req.archs {
        for size in &sizes {
            let (size_name, d_sae) = match *size {
                DictionarySize::Expansion(x) => (format!("x{x}"), x * d_in),
                DictionarySize::Latents(n) => (format!("n{n}"), n),
            };
            if d_sae == 0 {
                bail!("a dictionary needs at least one latent");
            }
            let k_values: Vec<Option<usize>> = if arch.uses_k() {
                ks.iter().map(|&k| Some(k)).collect()
            } else {
                vec![None]
            };
            for k in k_values {
                let mut c =
                    TrainConfig::topk(d_in, d_sae, k.unwrap_or(ks[0])).with_architecture(arch);
                c.seed = req.seed;
                if let Some(lr) = req.lr {
                    c.schedule.lr = lr;
                }
                if let Some(t) = target {
                    c.kind = Kind::Transcoder;
                    c.d_out = t.d_model();
                    c.apply_b_dec_to_input = false;
                }
                c.unit_norm_decoder = req.decoder_norm;
                c.input_norm = match req.normalize {
                    Normalize::None => TrainNorm::None,
                    Normalize::UnitMeanSquare => TrainNorm::UnitMeanSquare,
                    Normalize::Layernorm => TrainNorm::LayerNorm { eps: 1e-5 },
                };
                c.l1_coefficient = req.l1_coefficient;
                c.l0_coefficient = req.l0_coefficient;
                if let Some(adjust) = req.adjust {
                    adjust(&mut c, level);
                }
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

/// Trains every planned dictionary; with `req.resume` continues a run from its checkpoint.
pub fn train(req: &TrainRequest, progress: &dyn Progress) -> Result<TrainOutcome> {
    // Everything is checked before the output directory is touched.
    let source = open_set(&req.activations)?;
    let target = req.target.as_deref().map(open_set).transpose()?;
    if let Some(t) = &target {
        check_pair(&source, t)?;
    }
    let planned = plan(req, &source, target.as_ref())?;
    if req.batch == 0 {
        bail!("the batch size must be positive");
    }
    progress.message("checking the activations are finite");
    check_finite(&source)?;
    if let Some(t) = &target {
        check_finite(t)?;
    }
    let n_proteins = source.proteins().len();
    let (train_proteins, val_proteins) = split_by_protein(n_proteins, req.val_fraction, req.seed);
    let d_rows = source.d_model() + target.as_ref().map_or(0, |t| t.d_model());
    let buffer_rows = req
        .shuffle_buffer
        .unwrap_or(SHUFFLE_BUFFER_BYTES / (4 * d_rows))
        .max(req.batch);
    let shuffle = ShuffleConfig {
        batch_size: req.batch,
        buffer_rows,
        seed: req.seed,
    };
    let mut batches = StoreBatches::new(&source, target.as_ref(), train_proteins.clone(), shuffle)?;
    let steps = match (req.steps, req.epochs) {
        (Some(s), _) => s,
        (None, e) => e.unwrap_or(1) * batches.steps_per_epoch(),
    };
    if let Some(e) = req.epochs {
        batches = batches.with_max_epochs(e);
    }
    let dead_window = req
        .dead_window
        .unwrap_or((batches.rows_per_epoch() as u64).min(10_000_000));
    let mut planned = planned;
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
        "shuffle": shuffle, "val_fraction": req.val_fraction, "seed": req.seed, "steps": steps,
    });
    let names: Vec<String> = planned.iter().map(|p| p.name.clone()).collect();
    let dir_of = |name: &str| {
        if name.is_empty() {
            req.out.clone()
        } else {
            req.out.join(name)
        }
    };
    let mut group = if req.resume && req.out.join(RUN_FILE).exists() {
        let resumed = CheckpointGroup::resume(&req.out, &settings)?;
        if resumed.group.record().complete {
            return Ok(TrainOutcome {
                already_complete: true,
                split: "validation",
                dictionaries: Vec::new(),
            });
        }
        if let Some((loaded, position)) = resumed.state {
            trainers = loaded;
            batches.seek(&position)?;
            progress.message(&format!(
                "resuming {} at step {}",
                req.out.display(),
                trainers[0].steps_done()
            ));
        }
        resumed.group
    } else {
        CheckpointGroup::create(&req.out, names, settings)?
    };
    let training = json!({
        "activations": req.activations.display().to_string(),
        "source": set_identity(&source),
        "target_activations": req.target.as_ref().map(|p| p.display().to_string()),
        "target": target.as_ref().map(set_identity),
        "validation": {"fraction": req.val_fraction, "seed": req.seed,
                       "proteins": val_proteins.len(), "of_proteins": n_proteins},
        "batch": req.batch, "steps": steps, "epochs": req.epochs,
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
        req.checkpoint_every,
        &annotate,
        progress,
    )?;

    // Final metrics on the validation proteins (or a training sample when there are none).
    let (eval_proteins, split) = if val_proteins.is_empty() {
        (train_proteins, "train")
    } else {
        (val_proteins, "validation")
    };
    progress.start(
        "final evaluation",
        Some(trainers.len() as u64),
        "dictionaries",
    );
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
        progress.advance(1);
    }
    progress.finish();
    let dicts: Vec<Dictionary> = finals.iter().map(|(d, _)| d.clone()).collect();
    group.checkpoint(&trainers, &dicts, batches.position())?;
    group.finish()?;
    Ok(TrainOutcome {
        already_complete: false,
        split,
        dictionaries: planned
            .iter()
            .zip(finals)
            .map(|(p, (_, e))| TrainedDictionary {
                name: p.name.clone(),
                dir: dir_of(&p.name),
                evaluation: e,
            })
            .collect(),
    })
}

/// Trains up to `steps` steps in chunks of `every`, checkpointing after each chunk.
fn run_steps(
    trainers: &mut [Trainer],
    batches: &mut StoreBatches,
    group: &mut CheckpointGroup,
    steps: u64,
    every: u64,
    annotate: &dyn Fn(Dictionary) -> Dictionary,
    progress: &dyn Progress,
) -> Result<()> {
    let mut done = trainers.first().map_or(0, Trainer::steps_done);
    progress.start("train", Some(steps), "steps");
    progress.advance(done);
    let every = if every == 0 { steps.max(1) } else { every };
    while done < steps {
        let chunk = every.min(steps - done);
        let ran = train_many(trainers, batches, chunk, |i, _step, s| {
            // Every dictionary steps together; the first one's numbers stand for the bar.
            if i == 0 {
                progress.advance(1);
                progress.message(&format!(
                    "loss {:.4} FVE {:.3} L0 {:.1} dead {:.3}",
                    s.loss,
                    1.0 - s.fvu,
                    s.l0,
                    s.dead_fraction
                ));
            }
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
        if ran < chunk {
            break; // the epochs ran out
        }
    }
    progress.finish();
    Ok(())
}

pub(crate) fn summary_json(e: &Evaluation) -> Value {
    json!({"rows": e.rows, "mse": e.mse, "fvu": e.fvu, "fve": e.fve, "l0": e.l0,
           "dead_fraction": e.density.dead_fraction, "dense_fraction": e.density.dense_fraction})
}

/// `plmscope train`'s flags (the `cli` feature): lists and switches as typed, mapped onto a
/// [`TrainRequest`] by [`TrainArgs::into_request`].
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
pub use cli::TrainArgs;

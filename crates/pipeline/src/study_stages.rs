//! The stages of a study, in the order they run, and what each one executes.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_bio::{FastaReader, TmbedReader};
use plmscope_interpret::describe::{DescribeEvent, DescribeOptions};
use plmscope_model::{init, EsmConfig};
use plmscope_sae::Architecture;
use serde_json::{json, Value};

use crate::analyze::{analyze, AnalyzeRequest};
use crate::describe::{describe_atlas, Protocol};
use crate::embed::{
    embed, parse_level, parse_site, set_dir_name, EmbedRequest, LongPolicy, OnInvalid,
};
use crate::evaluate::{encode, EncodeRequest};
use crate::presets::Preset;
use crate::runner::{check_unique_outputs, settings_of, Action, InputFile, PlannedStage};
use crate::study::{DictionarySpec, EmbedSection, ProteinFormat, ProteinSource, Study};
use crate::study_analyze::analyze_request;
use crate::train::{train, DictionarySize, Normalize, TrainRequest};
use crate::Progress;

/// The work of one stage.
#[derive(Clone, Debug)]
pub(crate) enum StageWork {
    Proteins {
        sources: Vec<ProteinSource>,
    },
    InitModel {
        arch: String,
        seed: u64,
    },
    /// Requests are built (and their settings checked) when the study is planned, so a typo
    /// fails before any stage runs.
    Embed {
        request: Box<EmbedRequest>,
        local_model: Option<PathBuf>,
    },
    Train {
        request: Box<TrainRequest>,
    },
    Encode {
        sae: PathBuf,
        activations: PathBuf,
    },
    Analyze {
        request: Box<AnalyzeRequest>,
    },
    /// LLM descriptions of one atlas; the stage's output is a small JSON summary beside it
    /// (the atlas and the JSONL log, which is the call cache, are never removed by a redo).
    Describe {
        atlas: PathBuf,
        options: Box<DescribeOptions>,
        protocol: Protocol,
    },
}

fn stage(
    id: String,
    kind: &'static str,
    output: PathBuf,
    upstream: Vec<usize>,
    settings: Value,
    work: StageWork,
) -> PlannedStage {
    PlannedStage {
        id,
        kind,
        action: Action::Run,
        reason: String::new(),
        output,
        hash: String::new(),
        upstream,
        settings,
        inputs: Vec::new(),
        work,
    }
}

/// Every stage of `study`, upstream before downstream.
pub(crate) fn build_stages(study: &Study) -> Result<Vec<PlannedStage>> {
    let out = study.out_dir();
    let study_preset = study.preset.as_deref().map(Preset::by_name).transpose()?;
    let mut stages = Vec::new();
    let proteins_fasta = out.join("proteins.fasta");
    stages.push(stage(
        "proteins".into(),
        "proteins",
        proteins_fasta.clone(),
        vec![],
        json!({"sources": study.proteins.iter().map(|p| json!({"max": p.max, "format": p.format})).collect::<Vec<_>>()}),
        StageWork::Proteins {
            sources: study.proteins.clone(),
        },
    ));
    let sites = study
        .embed
        .sites
        .iter()
        .map(|s| parse_site(s))
        .collect::<Result<Vec<_>>>()
        .context("[embed] sites")?;
    let levels = study
        .embed
        .levels
        .iter()
        .map(|l| parse_level(l))
        .collect::<Result<Vec<_>>>()
        .context("[embed] levels")?;
    for model in &study.models {
        let mut embed_upstream = vec![0];
        let (model_spec, local_model) = match (&model.source, &model.init) {
            (_, Some(init)) => {
                if EsmConfig::for_arch(&init.arch).is_none() {
                    bail!("model {}: unknown arch {}", model.name, init.arch);
                }
                let dir = out.join("models").join(&model.name);
                stages.push(stage(
                    format!("model/{}", model.name),
                    "model",
                    dir.clone(),
                    vec![],
                    json!({"arch": init.arch, "seed": init.seed}),
                    StageWork::InitModel {
                        arch: init.arch.clone(),
                        seed: init.seed,
                    },
                ));
                embed_upstream.push(stages.len() - 1);
                (dir.display().to_string(), None)
            }
            (Some(source), None) => {
                let local = Path::new(source).exists().then(|| PathBuf::from(source));
                (source.clone(), local)
            }
            (None, None) => unreachable!("checked when the study was read"),
        };
        let activations = out.join(&model.name).join("activations");
        let mut settings = settings_of(&study.embed);
        if local_model.is_none() && model.init.is_none() {
            settings["model"] = json!(model_spec);
        }
        stages.push(stage(
            format!("embed/{}", model.name),
            "embed",
            activations.clone(),
            embed_upstream,
            settings,
            StageWork::Embed {
                request: Box::new(embed_request(
                    model_spec,
                    &proteins_fasta,
                    &study.embed,
                    &activations,
                )?),
                local_model,
            },
        ));
        let embed_index = stages.len() - 1;
        for spec in &study.dictionaries {
            let preset = match &spec.preset {
                Some(name) => Some(Preset::by_name(name)?),
                None => study_preset,
            };
            let level = parse_level(&spec.level)?;
            let site = parse_site(&spec.site)?;
            if !levels.contains(&level) || !sites.contains(&site) {
                bail!(
                    "dictionary {}: its level and site must be embedded",
                    spec.name
                );
            }
            let layers = spec
                .layers
                .clone()
                .unwrap_or_else(|| study.embed.layers.clone());
            for layer in layers {
                let set = set_dir_name(layer, site, level);
                let set_dir = activations.join(&set);
                let sae = out
                    .join(&model.name)
                    .join("dictionaries")
                    .join(&spec.name)
                    .join(&set);
                // A transcoder maps this set to `target_site` at layer L + 1 (the seed's
                // inter-layer transcoder: pooled resid_post L -> block_delta L + 1).
                let target_site = spec
                    .target_site
                    .clone()
                    .or_else(|| preset.and_then(|p| p.transcoder_target).map(String::from));
                let target = match &target_site {
                    Some(t) => {
                        let t_site = parse_site(t)?;
                        let t_layer = layer + 1;
                        if !study.embed.layers.contains(&t_layer) || !sites.contains(&t_site) {
                            bail!(
                                "dictionary {}: its transcoder target is layer {t_layer} {t}, which [embed] does not capture (add the layer and the site)",
                                spec.name
                            );
                        }
                        Some(activations.join(set_dir_name(t_layer, t_site, level)))
                    }
                    None => None,
                };
                let mut settings = settings_of(spec);
                settings.as_object_mut().map(|o| o.remove("layers"));
                settings["preset"] = json!(preset.map(|p| p.name));
                stages.push(stage(
                    format!("train/{}/{}/{set}", model.name, spec.name),
                    "train",
                    sae.clone(),
                    vec![embed_index],
                    settings,
                    StageWork::Train {
                        request: Box::new(TrainRequest {
                            target,
                            ..train_request(&set_dir, spec, preset, &sae)?
                        }),
                    },
                ));
                let codes = out
                    .join(&model.name)
                    .join("codes")
                    .join(&spec.name)
                    .join(&set);
                stages.push(stage(
                    format!("encode/{}/{}/{set}", model.name, spec.name),
                    "encode",
                    codes.clone(),
                    vec![stages.len() - 1],
                    json!({}),
                    StageWork::Encode {
                        sae,
                        activations: set_dir.clone(),
                    },
                ));
                if let Some(section) = &study.analyze {
                    let atlas = out
                        .join(&model.name)
                        .join("atlas")
                        .join(format!("{}.{set}.sqlite", spec.name));
                    let mut settings = settings_of(section);
                    settings["preset"] = json!(preset.map(|p| p.name));
                    let mut request = analyze_request(&codes, &set_dir, section, preset, &atlas)?;
                    request.fasta = vec![proteins_fasta.clone()];
                    if let Some(describe) = &study.describe {
                        // Atlases made before analyze wrote the describe tables are redone.
                        settings["describe_tables"] = json!(1);
                        if describe.options()?.1 == Protocol::Delphi {
                            request.residue_windows = true;
                            settings["residue_windows"] = json!(true);
                        }
                    }
                    stages.push(stage(
                        format!("analyze/{}/{}/{set}", model.name, spec.name),
                        "analyze",
                        atlas.clone(),
                        vec![stages.len() - 1, embed_index],
                        settings,
                        StageWork::Analyze {
                            request: Box::new(request),
                        },
                    ));
                    if let Some(describe) = &study.describe {
                        let (options, protocol) = describe.options().context("[describe]")?;
                        let marker = atlas.with_extension("describe.json");
                        stages.push(stage(
                            format!("describe/{}/{}/{set}", model.name, spec.name),
                            "describe",
                            marker,
                            vec![stages.len() - 1],
                            describe.hashed_settings(),
                            StageWork::Describe {
                                atlas: atlas.clone(),
                                options: Box::new(options),
                                protocol,
                            },
                        ));
                    }
                }
            }
        }
    }
    check_unique_outputs(&stages)?;
    Ok(stages)
}

impl StageWork {
    /// The files this stage reads that no earlier stage writes, by name.
    pub(crate) fn input_files(&self) -> Vec<(String, InputFile)> {
        match self {
            StageWork::Proteins { sources } => sources
                .iter()
                .map(|s| {
                    (
                        s.fasta.display().to_string(),
                        InputFile::Content(s.fasta.clone()),
                    )
                })
                .collect(),
            StageWork::Embed {
                local_model: Some(path),
                ..
            } => vec![(
                format!("model {}", path.display()),
                InputFile::Checkpoint(path.clone()),
            )],
            StageWork::Analyze { request } => {
                let mut files: Vec<PathBuf> = request.go.iter().cloned().collect();
                files.extend(request.annotations.iter().cloned());
                files.extend(request.gaf.iter().cloned());
                files.extend(request.residue_labels.iter().map(|l| l.path.clone()));
                files
                    .into_iter()
                    .map(|f| (f.display().to_string(), InputFile::Content(f)))
                    .collect()
            }
            StageWork::Describe { options, .. } => options
                .provider
                .replay_log
                .iter()
                .map(|f| (f.display().to_string(), InputFile::Content(f.clone())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Does the work into `output`; `resume` continues an interrupted run of the same stage.
    /// Returns a one-paragraph summary.
    pub(crate) fn execute(
        &self,
        output: &Path,
        resume: bool,
        progress: &dyn Progress,
    ) -> Result<String> {
        match self {
            StageWork::Proteins { sources } => write_proteins(sources, output),
            StageWork::InitModel { arch, seed } => {
                let config = EsmConfig::for_arch(arch).expect("checked at plan time");
                init::write_random_checkpoint(&config, *seed, output)
                    .with_context(|| format!("writing {}", output.display()))?;
                Ok(format!(
                    "random-weight {arch} (seed {seed}) in {}",
                    output.display()
                ))
            }
            StageWork::Embed { request, .. } => Ok(embed(request, progress)?.to_string()),
            StageWork::Train { request } => {
                // A resumed stage continues its checkpoint; a fresh one starts in an empty
                // folder.
                let request = TrainRequest {
                    resume,
                    ..(**request).clone()
                };
                Ok(train(&request, progress)?.to_string())
            }
            StageWork::Encode { sae, activations } => {
                let s = encode(
                    &EncodeRequest {
                        sae: sae.clone(),
                        activations: activations.clone(),
                        out: output.to_path_buf(),
                        no_fvu_check: false,
                    },
                    progress,
                )?;
                Ok(format!(
                    "{} rows, {:.2} codes per row",
                    s.rows,
                    s.nnz as f64 / s.rows.max(1) as f64
                ))
            }
            StageWork::Analyze { request } => Ok(analyze(request, progress)?.to_string()),
            StageWork::Describe {
                atlas,
                options,
                protocol,
            } => describe_stage(atlas, options, *protocol, output, progress),
        }
    }
}

/// Describes one atlas, reporting each finished unit and the spend so far, and writes the
/// summary JSON that marks the stage done.
fn describe_stage(
    atlas: &Path,
    options: &DescribeOptions,
    protocol: Protocol,
    output: &Path,
    progress: &dyn Progress,
) -> Result<String> {
    progress.start("describe", None, "");
    let mut started = false;
    let outcome = describe_atlas(atlas, options, protocol, None, &mut |event| match event {
        DescribeEvent::UnitDone {
            done,
            total,
            spent_usd,
            ..
        } => {
            if !started {
                started = true;
                progress.start("describe", Some(*total as u64), "units");
                progress.advance(*done as u64 - 1);
            }
            progress.advance(1);
            progress.message(&format!("spent ${spent_usd:.4}"));
        }
        DescribeEvent::Retrying { unit, retry } => progress.message(&format!(
            "unit {unit}: retry {} in {:.1}s ({})",
            retry.attempt,
            retry.wait.as_secs_f64(),
            retry.reason
        )),
        _ => {}
    })?;
    progress.finish();
    let json = serde_json::to_string_pretty(&outcome)?;
    crate::write_atomic(output, json.as_bytes())?;
    Ok(outcome.to_string())
}

/// The embed stage's request from the study's `[embed]` section.
fn embed_request(
    model: String,
    fasta: &Path,
    section: &EmbedSection,
    out: &Path,
) -> Result<EmbedRequest> {
    Ok(EmbedRequest {
        model,
        fasta: fasta.to_path_buf(),
        layers: section.layers.clone(),
        sites: section
            .sites
            .iter()
            .map(|s| parse_site(s))
            .collect::<Result<_>>()?,
        levels: section
            .levels
            .iter()
            .map(|l| parse_level(l))
            .collect::<Result<_>>()?,
        out: out.to_path_buf(),
        dtype: section
            .dtype
            .parse()
            .map_err(|e| anyhow::anyhow!("[embed] dtype {}: {e}", section.dtype))?,
        token_budget: section.token_budget,
        proteins_per_shard: section.proteins_per_shard,
        on_invalid: match section.on_invalid.as_str() {
            "error" => OnInvalid::Error,
            "skip" => OnInvalid::Skip,
            other => bail!("[embed] on_invalid {other}: use error or skip"),
        },
        long: match section.long.as_str() {
            "truncate" => LongPolicy::Truncate,
            "skip" => LongPolicy::Skip,
            "error" => LongPolicy::Error,
            other => bail!("[embed] long {other}: use truncate, skip or error"),
        },
    })
}

fn train_request(
    activations: &Path,
    spec: &DictionarySpec,
    preset: Option<Preset>,
    out: &Path,
) -> Result<TrainRequest> {
    let mut req = TrainRequest::new(activations.to_path_buf(), out.to_path_buf(), spec.seed);
    if let Some(p) = preset {
        p.fill_train_request(&mut req);
    }
    req.archs = vec![Architecture::from_name(&spec.arch)
        .map_err(|e| anyhow::anyhow!("dictionary {}: {e}", spec.name))?];
    if let Some(k) = spec.k {
        req.ks = vec![k];
    }
    if let Some(x) = spec.expansion {
        req.sizes = vec![DictionarySize::Expansion(x)];
    }
    if let Some(n) = spec.latents {
        req.sizes = vec![DictionarySize::Latents(n)];
    }
    req.steps = spec.steps.or(req.steps);
    req.epochs = spec.epochs.or(req.epochs);
    req.lr = spec.lr.or(req.lr);
    req.batch = spec.batch;
    req.val_fraction = spec.val_fraction;
    req.checkpoint_every = spec.checkpoint_every;
    if spec.normalize != "none" || preset.is_none() {
        req.normalize = match spec.normalize.as_str() {
            "none" => Normalize::None,
            "unit_mean_square" => Normalize::UnitMeanSquare,
            "layernorm" => Normalize::Layernorm,
            other => bail!(
                "dictionary {}: normalize {other}: use none, unit_mean_square or layernorm",
                spec.name
            ),
        };
    }
    if !spec.decoder_norm {
        req.decoder_norm = false;
    }
    if let Some(l1) = spec.l1_coefficient {
        req.l1_coefficient = l1;
    }
    req.dead_window = spec.dead_window.or(req.dead_window);
    Ok(req)
}

/// id, header, sequence, line of one input record.
type ProteinRecord = (String, String, String, usize);

/// Writes the study's proteins (the first `max` records of each file, in order) as one FASTA.
fn write_proteins(sources: &[ProteinSource], output: &Path) -> Result<String> {
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut text = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut total = 0usize;
    let mut duplicates = 0usize;
    for source in sources {
        let records: Box<dyn Iterator<Item = Result<ProteinRecord>>> = match source.format {
            ProteinFormat::Fasta => Box::new(FastaReader::open(&source.fasta)?.map(|r| {
                r.map(|r| (r.id, r.header, r.sequence, r.line))
                    .map_err(anyhow::Error::from)
            })),
            ProteinFormat::Tmbed => Box::new(TmbedReader::open(&source.fasta)?.map(|r| {
                r.map(|r| (r.id, r.header, r.sequence, r.line))
                    .map_err(anyhow::Error::from)
            })),
        };
        let mut n = 0usize;
        for record in records {
            if source.max.is_some_and(|max| n >= max) {
                break;
            }
            let (id, header, sequence, line) = record?;
            // The analysis keys proteins by accession: a protein listed by two sources
            // (an E. coli protein that is also a TMbed membrane protein) is kept once, as
            // its first source has it.
            let accession = plmscope_bio::uniprot_accession(&id)
                .unwrap_or(&id)
                .to_string();
            if !seen.insert(accession) {
                duplicates += 1;
                tracing::info!(
                    "{}:{line}: {id} is already among the study's proteins; skipped",
                    source.fasta.display()
                );
                continue;
            }
            writeln!(text, ">{header}")?;
            for chunk in sequence.as_bytes().chunks(60) {
                text.extend_from_slice(chunk);
                text.push(b'\n');
            }
            n += 1;
        }
        total += n;
    }
    crate::write_atomic(output, &text)?;
    Ok(format!(
        "{total} proteins from {} files ({duplicates} listed twice, kept once)",
        sources.len()
    ))
}

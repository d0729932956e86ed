//! `plmscope embed`: FASTA → ESM2 → one activation set per layer × site × level.
//!
//! Two passes over the (streamed) FASTA: the first validates every record and decides what is
//! skipped or truncated, so a bad record stops the run before any compute and the shard layout
//! is known up front; the second embeds shard by shard. A shard is a fixed run of proteins in
//! input order, so a rerun after a crash skips complete shards and recomputes the rest with
//! the same batches, giving byte-identical files.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use plmscope_bio::FastaReader;
use plmscope_model::{alphabet, batching, load_model, CaptureRequest, Esm2, Site};
use plmscope_store::{ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, StorageDtype};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OnInvalid {
    /// Stop with an error naming the file, line and record.
    Error,
    /// Skip the record; skipped ids are listed in the manifest.
    Skip,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LongPolicy {
    /// Keep the first 1022 residues (ESM2's context).
    Truncate,
    /// Leave the protein out (listed in the manifest).
    Skip,
    /// Stop with an error.
    Error,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Local checkpoint directory/file or hub id (facebook/esm2_t6_8M_UR50D).
    #[arg(long)]
    model: String,
    /// Proteins, FASTA (plain or gzip); UniProt headers give the accession as the id.
    #[arg(long)]
    fasta: PathBuf,
    /// Layers to capture (0 = embeddings, L = output of block L).
    #[arg(long, value_delimiter = ',', required = true)]
    layers: Vec<usize>,
    /// resid_post, mlp_in, mlp_out, block_delta.
    #[arg(long, value_delimiter = ',', default_value = "resid_post")]
    sites: Vec<String>,
    /// residue (every residue) and/or protein (mean over residues).
    #[arg(long, value_delimiter = ',', default_value = "residue,protein")]
    level: Vec<String>,
    /// Output directory; one sub-directory per set, e.g. `layer6.resid_post.protein`.
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Tokens per forward batch (packed, no padding).
    #[arg(long, default_value_t = 8192)]
    token_budget: usize,
    /// Proteins per shard (default: about 64 MB of residue activations per shard).
    #[arg(long)]
    proteins_per_shard: Option<usize>,
    #[arg(long, value_enum, default_value = "error")]
    on_invalid: OnInvalid,
    /// Proteins longer than 1022 residues.
    #[arg(long, value_enum, default_value = "truncate")]
    long: LongPolicy,
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
}

/// One output set and where its rows go.
struct OutputSet {
    layer: usize,
    site: Site,
    level: Level,
    writer: ActivationSetWriter,
}

/// A protein kept after validation: its id, residues embedded and where it came from.
struct Kept {
    id: String,
    residues: usize,
    /// 0-based index of the record in the FASTA file.
    ordinal: usize,
}

struct Scan {
    kept: Vec<Kept>,
    skipped: Vec<serde_json::Value>,
    truncated: Vec<serde_json::Value>,
}

/// Pass 1: validate every record, apply the invalid/long policies.
fn scan(path: &Path, on_invalid: OnInvalid, long: LongPolicy) -> Result<Scan> {
    let mut scan = Scan {
        kept: Vec::new(),
        skipped: Vec::new(),
        truncated: Vec::new(),
    };
    for (ordinal, record) in FastaReader::open(path)?.enumerate() {
        let record = record?;
        if let Err(bad) = alphabet::tokenize(&record.sequence) {
            let why = format!(
                "invalid residue {:?} at position {} (ESM's alphabet is the 20 amino acids plus X B U Z O)",
                bad.character,
                bad.position + 1
            );
            if on_invalid == OnInvalid::Error {
                bail!(
                    "{}:{}: record {}: {why}; fix the record or pass --on-invalid skip",
                    path.display(),
                    record.line,
                    record.id
                );
            }
            scan.skipped
                .push(json!({"id": record.id, "line": record.line, "reason": why}));
            continue;
        }
        let n = record.sequence.len();
        let mut residues = n;
        if n > alphabet::MAX_RESIDUES {
            match long {
                LongPolicy::Error => bail!(
                    "{}:{}: record {} has {n} residues, more than ESM2's {}; pass --long truncate or --long skip",
                    path.display(),
                    record.line,
                    record.id,
                    alphabet::MAX_RESIDUES
                ),
                LongPolicy::Skip => {
                    scan.skipped.push(json!({"id": record.id, "line": record.line, "reason": format!("{n} residues > {}", alphabet::MAX_RESIDUES)}));
                    continue;
                }
                LongPolicy::Truncate => {
                    residues = alphabet::MAX_RESIDUES;
                    scan.truncated.push(json!({"id": record.id, "residues": n, "kept": residues}));
                }
            }
        }
        scan.kept.push(Kept {
            id: record.id,
            residues,
            ordinal,
        });
    }
    if scan.kept.is_empty() {
        bail!("{}: no protein left to embed", path.display());
    }
    Ok(scan)
}

fn parse_level(s: &str) -> Result<Level> {
    match s {
        "residue" => Ok(Level::Residue),
        "protein" => Ok(Level::Protein),
        other => bail!("--level {other}: use residue and/or protein"),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Residue => "residue",
        Level::Protein => "protein",
    }
}

pub fn run(args: EmbedArgs) -> Result<()> {
    if args.device == Device::Cuda {
        bail!(if cfg!(feature = "cuda") {
            "--device cuda: the CUDA forward pass is not implemented yet; use --device cpu"
        } else {
            "--device cuda: this binary was built without CUDA (cargo build --release --features cuda)"
        });
    }
    let dtype: StorageDtype = args
        .dtype
        .parse()
        .map_err(|e| anyhow::anyhow!("--dtype {}: {e}", args.dtype))?;
    let sites = args
        .sites
        .iter()
        .map(|s| {
            Site::parse(s).with_context(|| {
                format!("--sites {s}: use resid_post, mlp_in, mlp_out or block_delta")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let levels = args
        .level
        .iter()
        .map(|l| parse_level(l))
        .collect::<Result<Vec<_>>>()?;
    let (model, info) = load_model(&args.model)?;
    let n_layers = model.config.num_hidden_layers;
    for &layer in &args.layers {
        if layer > n_layers {
            bail!("--layers {layer}: {} has layers 0..={n_layers}", info.arch);
        }
        if layer == 0 && sites.iter().any(|&s| s != Site::ResidPost) {
            bail!("--layers 0 is the embedding output: only resid_post exists there");
        }
    }
    let scan = scan(&args.fasta, args.on_invalid, args.long)?;
    let d = model.config.hidden_size;
    let mean_len = scan.kept.iter().map(|k| k.residues).sum::<usize>() / scan.kept.len();
    let per_shard = args
        .proteins_per_shard
        .unwrap_or_else(|| ((64 << 20) / (4 * d * mean_len.max(1))).clamp(16, 4096));
    let extra = json!({
        "fasta": args.fasta.display().to_string(),
        "on_invalid": format!("{:?}", args.on_invalid).to_lowercase(),
        "long": format!("{:?}", args.long).to_lowercase(),
        "skipped": scan.skipped,
        "truncated": scan.truncated,
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut sets = Vec::new();
    for &layer in &args.layers {
        for &site in &sites {
            for &level in &levels {
                let header = SetHeader {
                    model: ModelRef {
                        id: info.id.clone(),
                        arch: info.arch.clone(),
                        weights_sha256: info.weights_sha256.clone(),
                    },
                    layer,
                    site: site.name().to_string(),
                    level,
                    d_model: d,
                    dtype,
                    proteins_per_shard: per_shard,
                    total_proteins: scan.kept.len(),
                    extra: extra.clone(),
                };
                let dir = args.out.join(format!(
                    "layer{layer}.{}.{}",
                    site.name(),
                    level_name(level)
                ));
                let writer = ActivationSetWriter::create_or_resume(&dir, header)?;
                sets.push(OutputSet {
                    layer,
                    site,
                    level,
                    writer,
                });
            }
        }
    }
    let request = CaptureRequest {
        sites: {
            let mut s: Vec<(usize, Site)> = sets.iter().map(|o| (o.layer, o.site)).collect();
            s.sort();
            s.dedup();
            s
        },
        logits: false,
    };
    let n_shards = scan.kept.len().div_ceil(per_shard);
    let progress = ProgressBar::new(scan.kept.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} proteins, {msg}, ETA {eta}",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let mut residues_done = 0usize;
    let mut kept_iter = scan.kept.iter().peekable();
    let mut shard_records: Vec<(String, Vec<u32>)> = Vec::with_capacity(per_shard);
    let mut shard = 0usize;
    // Pass 2: records in input order; those kept by the scan form the shards.
    for (ordinal, record) in FastaReader::open(&args.fasta)?.enumerate() {
        let record = record?;
        let Some(next) = kept_iter.peek() else { break };
        if next.ordinal != ordinal {
            continue;
        }
        if next.id != record.id || record.sequence.len() < next.residues {
            bail!(
                "{}: record {} changed between the validation pass and the embedding pass",
                args.fasta.display(),
                record.id
            );
        }
        let keep = kept_iter.next().expect("peeked");
        let mut tokens =
            alphabet::tokenize(&record.sequence[..keep.residues]).expect("validated in pass 1");
        tokens.shrink_to_fit();
        shard_records.push((keep.id.clone(), tokens));
        if shard_records.len() == per_shard || kept_iter.peek().is_none() {
            let residues: usize = shard_records.iter().map(|r| r.1.len() - 2).sum();
            if sets.iter().any(|s| !s.writer.is_shard_complete(shard)) {
                embed_shard(
                    &model,
                    &request,
                    &mut sets,
                    shard,
                    &shard_records,
                    args.token_budget,
                )?;
                residues_done += residues;
            }
            progress.inc(shard_records.len() as u64);
            let rate = residues_done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!(
                "{rate:.0} residues/s, shard {}/{n_shards}",
                shard + 1
            ));
            shard_records.clear();
            shard += 1;
        }
    }
    if kept_iter.peek().is_some() {
        bail!(
            "{}: the file changed between the validation pass and the embedding pass",
            args.fasta.display()
        );
    }
    progress.finish_and_clear();
    let n_sets = sets.len();
    for set in sets {
        set.writer.finish(json!({}))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "embedded {} proteins ({} skipped, {} truncated) into {n_sets} sets under {} in {secs:.1}s ({:.0} residues/s)",
        scan.kept.len(),
        scan.skipped.len(),
        scan.truncated.len(),
        args.out.display(),
        residues_done as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Embeds one shard's proteins (input order) in token-budget batches and writes the shard of
/// every set that does not have it yet.
fn embed_shard(
    model: &Esm2,
    request: &CaptureRequest,
    sets: &mut [OutputSet],
    shard: usize,
    records: &[(String, Vec<u32>)],
    token_budget: usize,
) -> Result<()> {
    let d = model.config.hidden_size;
    let lengths: Vec<usize> = records.iter().map(|r| r.1.len()).collect();
    // Row of each protein's first residue in residue-level shards.
    let mut first_row = Vec::with_capacity(records.len());
    let mut rows = 0;
    for l in &lengths {
        first_row.push(rows);
        rows += l - 2;
    }
    let mut buffers: Vec<Vec<f32>> = sets
        .iter()
        .map(|s| {
            vec![
                0f32;
                d * if s.level == Level::Residue {
                    rows
                } else {
                    records.len()
                }
            ]
        })
        .collect();
    for batch in batching::plan_batches(&lengths, token_budget) {
        let seqs: Vec<&[u32]> = batch.iter().map(|&i| records[i].1.as_slice()).collect();
        let out = model.forward(&seqs, request)?;
        for (set, buffer) in sets.iter().zip(buffers.iter_mut()) {
            let acts = &out.sites[&(set.layer, set.site)];
            for (j, &p) in batch.iter().enumerate() {
                // Residue rows: drop <cls> (first) and <eos> (last).
                let start = out.offsets[j] + 1;
                let end = out.offsets[j + 1] - 1;
                let residues = &acts[start * d..end * d];
                match set.level {
                    Level::Residue => buffer[first_row[p] * d..(first_row[p] + end - start) * d]
                        .copy_from_slice(residues),
                    Level::Protein => mean_rows(residues, d, &mut buffer[p * d..(p + 1) * d]),
                }
            }
        }
    }
    let entries: Vec<ProteinEntry> = records
        .iter()
        .map(|(id, t)| ProteinEntry {
            id: id.clone(),
            length: t.len() - 2,
        })
        .collect();
    for (set, buffer) in sets.iter_mut().zip(buffers) {
        if !set.writer.is_shard_complete(shard) {
            set.writer.write_shard(shard, &entries, &buffer)?;
        }
    }
    Ok(())
}

/// Column means of `rows` (row-major, width d), accumulated in f64.
fn mean_rows(rows: &[f32], d: usize, out: &mut [f32]) {
    let n = rows.len() / d;
    let mut acc = vec![0f64; d];
    for row in rows.chunks_exact(d) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v as f64);
    }
    out.iter_mut()
        .zip(&acc)
        .for_each(|(o, a)| *o = (*a / n as f64) as f32);
}

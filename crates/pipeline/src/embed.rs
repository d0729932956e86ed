//! The embed stage: FASTA → ESM2 → one activation set per layer × site × level.
//!
//! Two passes over the (streamed) FASTA: the first validates every record and decides what is
//! skipped or truncated, so a bad record stops the run before any compute and the shard layout
//! is known up front; the second embeds shard by shard. A shard is a fixed run of proteins in
//! input order, so a rerun after a crash skips complete shards and recomputes the rest with
//! the same batches, giving byte-identical files.
//!
//! [`embed_part`] (`--shard i/N`) runs the same two passes but embeds only part `i`'s run of
//! shards, balanced by residues, and leaves the sets unfinished with a `part.json` beside them;
//! [`crate::merge`] joins the N parts into these same files ([`crate::shard`]).

use anyhow::{bail, Context, Result};
use plmscope_bio::FastaReader;
use plmscope_model::{alphabet, batching, load_model, CaptureRequest, Esm2, Site};
use plmscope_store::{
    shard_file_name, ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, StorageDtype,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::shard::{balanced_ranges, input_hash, write_part, PartStage, PartWrite, ShardSpec};
use crate::Progress;

/// What to do with a record holding a character outside ESM's alphabet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Stop with an error naming the file, line and record.
    Error,
    /// Skip the record; skipped ids are listed in the manifest.
    Skip,
}

/// What to do with a protein longer than ESM2's context (1022 residues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LongPolicy {
    /// Keep the first 1022 residues (ESM2's context).
    Truncate,
    /// Leave the protein out (listed in the manifest).
    Skip,
    /// Stop with an error.
    Error,
}

/// One embed run: which model, which proteins, what to capture and where.
#[derive(Clone, Debug)]
pub struct EmbedRequest {
    /// Local checkpoint directory/file or hub id (facebook/esm2_t6_8M_UR50D).
    pub model: String,
    pub fasta: PathBuf,
    /// 0 = embeddings, L = output of block L.
    pub layers: Vec<usize>,
    pub sites: Vec<Site>,
    pub levels: Vec<Level>,
    /// One sub-directory per set is written here ([`set_dir_name`]).
    pub out: PathBuf,
    pub dtype: StorageDtype,
    /// Tokens per packed forward batch.
    pub token_budget: usize,
    /// Default: about 64 MB of residue activations per shard.
    pub proteins_per_shard: Option<usize>,
    pub on_invalid: OnInvalid,
    pub long: LongPolicy,
}

/// What an embed run did.
#[derive(Clone, Debug)]
pub struct EmbedOutcome {
    pub proteins: usize,
    pub skipped: usize,
    pub truncated: usize,
    /// The sets written, in layer × site × level order.
    pub sets: Vec<PathBuf>,
    /// Residues embedded by this run (0 when every shard was already complete).
    pub residues_embedded: usize,
    pub seconds: f64,
}

impl std::fmt::Display for EmbedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "embedded {} proteins ({} skipped, {} truncated) into {} sets in {:.1}s ({:.0} residues/s)",
            self.proteins,
            self.skipped,
            self.truncated,
            self.sets.len(),
            self.seconds,
            self.residues_embedded as f64 / self.seconds.max(1e-9)
        )
    }
}

/// Sub-directory name of one set, e.g. `layer6.resid_post.protein`.
pub fn set_dir_name(layer: usize, site: Site, level: Level) -> String {
    format!("layer{layer}.{}.{level}", site.name())
}

/// Parses `residue` / `protein` (surrounding spaces allowed).
pub fn parse_level(s: &str) -> Result<Level> {
    s.trim().parse().map_err(anyhow::Error::msg)
}

/// Parses a capture site name (surrounding spaces allowed).
pub fn parse_site(s: &str) -> Result<Site> {
    s.trim().parse().map_err(anyhow::Error::msg)
}

/// Parses a list of levels (`residue,protein`), each with [`parse_level`].
pub fn parse_levels<S: AsRef<str>>(names: &[S]) -> Result<Vec<Level>> {
    names.iter().map(|l| parse_level(l.as_ref())).collect()
}

/// Parses a list of capture site names (`resid_post,mlp_in`), each with [`parse_site`].
pub fn parse_sites<S: AsRef<str>>(names: &[S]) -> Result<Vec<Site>> {
    names.iter().map(|s| parse_site(s.as_ref())).collect()
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

/// One output set and where its rows go.
struct OutputSet {
    layer: usize,
    site: Site,
    level: Level,
    writer: ActivationSetWriter,
}

/// Runs ESM2 over `req.fasta` and writes (or completes) every requested set.
pub fn embed(req: &EmbedRequest, progress: &dyn Progress) -> Result<EmbedOutcome> {
    embed_sharded(req, None, progress)
}

/// Part `shard` of an embed split N ways ([`crate::shard`]): writes only the part's store
/// shards of every set under `req.out`, leaves the sets unfinished, and writes `part.json`;
/// [`crate::merge::merge`] joins the parts. Resumable like [`embed`].
pub fn embed_part(
    req: &EmbedRequest,
    shard: ShardSpec,
    progress: &dyn Progress,
) -> Result<EmbedOutcome> {
    embed_sharded(req, Some(shard), progress)
}

fn embed_sharded(
    req: &EmbedRequest,
    part: Option<ShardSpec>,
    progress: &dyn Progress,
) -> Result<EmbedOutcome> {
    if req.layers.is_empty() || req.sites.is_empty() || req.levels.is_empty() {
        bail!("embed needs at least one layer, one site and one level");
    }
    progress.message(&format!("loading {}", req.model));
    let (model, info) = load_model(&req.model)?;
    let n_layers = model.config.num_hidden_layers;
    for &layer in &req.layers {
        if layer > n_layers {
            bail!("layer {layer}: {} has layers 0..={n_layers}", info.arch);
        }
        if layer == 0 && req.sites.iter().any(|&s| s != Site::ResidPost) {
            bail!("layer 0 is the embedding output: only resid_post exists there");
        }
    }
    progress.message(&format!("checking {}", req.fasta.display()));
    let scan = scan(&req.fasta, req.on_invalid, req.long)?;
    let d = model.config.hidden_size;
    let mean_len = scan.kept.iter().map(|k| k.residues).sum::<usize>() / scan.kept.len();
    let per_shard = req
        .proteins_per_shard
        .unwrap_or_else(|| ((64 << 20) / (4 * d * mean_len.max(1))).clamp(16, 4096));
    let extra = json!({
        "fasta": req.fasta.display().to_string(),
        "on_invalid": format!("{:?}", req.on_invalid).to_lowercase(),
        "long": format!("{:?}", req.long).to_lowercase(),
        "skipped": scan.skipped,
        "truncated": scan.truncated,
    });
    std::fs::create_dir_all(&req.out).with_context(|| format!("creating {}", req.out.display()))?;
    if part.is_some() {
        crate::shard::prepare_part_dir(&req.out)?;
    }
    let mut sets = Vec::new();
    for &layer in &req.layers {
        for &site in &req.sites {
            for &level in &req.levels {
                let header = SetHeader {
                    model: ModelRef {
                        id: info.id.clone(),
                        arch: info.arch.clone(),
                        weights_sha256: info.weights_sha256.clone(),
                    },
                    layer,
                    site,
                    level,
                    d_model: d,
                    dtype: req.dtype,
                    proteins_per_shard: per_shard,
                    total_proteins: scan.kept.len(),
                    extra: extra.clone(),
                };
                let dir = req.out.join(set_dir_name(layer, site, level));
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
    // Residues per store shard: what the split of a sharded run balances.
    let shard_residues: Vec<u64> = scan
        .kept
        .chunks(per_shard)
        .map(|c| c.iter().map(|k| k.residues as u64).sum())
        .collect();
    let ranges = part.map(|p| balanced_ranges(&shard_residues, p.count));
    let mine = match (&ranges, part) {
        (Some(r), Some(p)) => r[p.index].clone(),
        _ => 0..n_shards,
    };
    let in_part = |shard: usize| mine.contains(&shard);
    progress.start("embed", Some(scan.kept.len() as u64), "proteins");
    let started = Instant::now();
    let mut residues_done = 0usize;
    let mut kept_iter = scan.kept.iter().peekable();
    let mut shard_records: Vec<(String, Vec<u32>)> = Vec::with_capacity(per_shard);
    let mut shard = 0usize;
    // Pass 2: records in input order; those kept by the scan form the shards.
    for (ordinal, record) in FastaReader::open(&req.fasta)?.enumerate() {
        let record = record?;
        let Some(next) = kept_iter.peek() else { break };
        if next.ordinal != ordinal {
            continue;
        }
        if next.id != record.id || record.sequence.len() < next.residues {
            bail!(
                "{}: record {} changed between the validation pass and the embedding pass",
                req.fasta.display(),
                record.id
            );
        }
        let keep = kept_iter.next().expect("peeked");
        if !in_part(shard) {
            // Another part's shard: only counted, so the shard numbering stays global.
            shard_records.push((String::new(), Vec::new()));
            if shard_records.len() == per_shard || kept_iter.peek().is_none() {
                shard_records.clear();
                shard += 1;
            }
            continue;
        }
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
                    req.token_budget,
                )?;
                residues_done += residues;
            }
            progress.advance(shard_records.len() as u64);
            let rate = residues_done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress.message(&format!(
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
            req.fasta.display()
        );
    }
    progress.finish();
    let mut dirs = Vec::new();
    if let (Some(p), Some(ranges)) = (part, &ranges) {
        write_embed_part(req, p, ranges, &shard_residues, &sets)?;
        dirs.extend(sets.iter().map(|s| s.writer.dir().to_path_buf()));
    } else {
        for set in sets {
            dirs.push(set.writer.dir().to_path_buf());
            set.writer.finish(json!({}))?;
        }
    }
    Ok(EmbedOutcome {
        proteins: scan.kept.len(),
        skipped: scan.skipped.len(),
        truncated: scan.truncated.len(),
        sets: dirs,
        residues_embedded: residues_done,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes `part.json` of a finished embed part: the input hash covers the FASTA's content and
/// every set's header (its unfinished manifest).
fn write_embed_part(
    req: &EmbedRequest,
    part: ShardSpec,
    ranges: &[std::ops::Range<usize>],
    shard_residues: &[u64],
    sets: &[OutputSet],
) -> Result<()> {
    let fasta_sha = crate::fingerprint::file_sha256(&req.fasta)?;
    let mut manifests = Vec::new();
    for set in sets {
        let path = set.writer.dir().join(plmscope_store::MANIFEST_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        manifests.push((set_dir_name(set.layer, set.site, set.level), bytes));
    }
    let mut hashed: Vec<(&str, &[u8])> = vec![("fasta", fasta_sha.as_bytes())];
    hashed.extend(manifests.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let mine = ranges[part.index].clone();
    write_part(
        &req.out,
        PartWrite {
            stage: PartStage::Embed,
            spec: part,
            input_sha256: input_hash(&hashed),
            weight: "residues",
            ranges,
            weights: shard_residues,
            sets: manifests
                .into_iter()
                .map(|(dir, _)| (dir, mine.clone().map(shard_file_name).collect()))
                .collect(),
            files: Vec::new(),
            go: None,
        },
    )?;
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
            let n = if s.level == Level::Residue {
                rows
            } else {
                records.len()
            };
            vec![0f32; d * n]
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

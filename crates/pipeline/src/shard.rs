//! `--shard i/N`: splitting embed, encode and analyze into N jobs that write disjoint,
//! self-describing parts, which [`crate::merge`] joins into exactly what one process writes.
//!
//! # Split rule
//! A part is a **contiguous run of store shards** (the fixed runs of `proteins_per_shard`
//! proteins in input order that an activation set and its code sets are made of), so every
//! protein lies in exactly one part and a part's files are, byte for byte, the files a single
//! process writes for those shards. [`balanced_ranges`] cuts the shards into N runs of about
//! equal weight: residues for embed (residue rows or not: the forward pass costs per residue),
//! rows for encode. Part `i` (0-based, `0 <= i < N`) ends at the shard boundary nearest to
//! `(i + 1) / N` of the total weight (the earlier one on a tie). The split depends only on the input
//! (lengths after the invalid/long policies, and the shard size), so N independent jobs agree on
//! it; with more parts than shards some parts are empty, which is allowed.
//!
//! **analyze** splits by units instead: the combined unit list (features `0..F`, then neurons
//! `F..F+M`, the atlas's unit ids) is cut by [`balanced_ranges`] with weight 1 per unit, so part
//! `i` owns a contiguous run of about `(F+M)/N` units (`weight` `units`, `ranges` in unit ids).
//!
//! `auto/N` takes `i` from `SLURM_ARRAY_TASK_ID`, so a Slurm array `--array=0-(N-1)` runs
//! `plmscope embed ... --shard auto/N` unchanged in every task.
//!
//! # Part layout
//! A part is the stage's usual output directory (`--out`) holding only the part's shards: for
//! embed, one sub-directory per set, each with the unfinished `manifest.json` (the header of the
//! whole set: identical in every part and in a single-process run) and its `shard-NNNNN` files;
//! for encode, the code set directory with its unfinished manifest and `codes-NNNNN` files.
//! Beside them, written last and atomically, `part.json` ([`PartManifest`]): stage, `index`,
//! `count`, the whole split (`ranges`, `weights`), an `input_sha256` (the input file or set
//! manifest and every set header, so parts of different inputs never merge), and every file the
//! part wrote with its size and sha256. A part without `part.json` is unfinished; rerunning the
//! same command resumes it (complete shards are kept, like an unsharded run), and a rerun first
//! deletes any file that no longer matches its recorded sha256, so a damaged part is repaired by
//! rerunning it.
//!
//! An **analyze** part is the directory `--out` holding `atlas.sqlite` and `part.json`, whose
//! `files` record the part atlas (size, sha256) and `go` the Gene Ontology read (absolute path,
//! size, sha256: merge reads it again for GO coherence). `input_sha256` hashes the request (less
//! `--out` and `--shard`) and the sha256 of every input file. The part atlas holds every table
//! without a `unit` column whole (as one process writes it), the per-unit tables only for the
//! part's units, every materialised enrichment test of those units with its `ln_p` (whatever
//! `--store-tests` says), no coherence, and the part's test count `m` in meta
//! `<kind>_<source>_total_tests`; see `plmscope_interpret::pipeline::parts`. An analyze part is
//! not resumed: a rerun writes it again.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::file_sha256;

/// `part.json`: written last into a finished part.
pub const PART_FILE: &str = "part.json";
/// `format` of `part.json`.
pub const PART_FORMAT: &str = "plmscope.part";
/// Version of `part.json` this crate writes and reads.
pub const PART_VERSION: u32 = 1;
/// The environment variable `--shard auto/N` reads (a Slurm array task's index).
pub const SHARD_INDEX_ENV: &str = "SLURM_ARRAY_TASK_ID";

/// Part `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    /// A checked part number.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            bail!("--shard {index}/{count}: the number of parts must be at least 1");
        }
        if index >= count {
            bail!(
                "--shard {index}/{count}: parts are numbered from 0, so i must be below N \
                 (0..{count})"
            );
        }
        Ok(ShardSpec { index, count })
    }

    /// Parses `i/N` (0-based) or `auto/N` (i from `SLURM_ARRAY_TASK_ID`).
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with_env(text, std::env::var(SHARD_INDEX_ENV).ok().as_deref())
    }

    /// [`Self::parse`] with the value of `SLURM_ARRAY_TASK_ID` given.
    pub fn parse_with_env(text: &str, task_id: Option<&str>) -> Result<Self> {
        let Some((i, n)) = text.trim().split_once('/') else {
            bail!("--shard {text}: expected i/N (0-based part i of N) or auto/N");
        };
        let count: usize = n
            .trim()
            .parse()
            .with_context(|| format!("--shard {text}: N is not a number"))?;
        let index: usize = if i.trim() == "auto" {
            let id = task_id.with_context(|| {
                format!("--shard {text}: auto takes i from ${SHARD_INDEX_ENV}, which is not set")
            })?;
            id.trim().parse().with_context(|| {
                format!("--shard {text}: ${SHARD_INDEX_ENV}={id} is not a number")
            })?
        } else {
            i.trim()
                .parse()
                .with_context(|| format!("--shard {text}: i is not a number"))?
        };
        Self::new(index, count)
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Cuts `weights.len()` items into `count` contiguous runs of about equal total weight (see
/// the module docs): run `j` ends at the item boundary nearest to `(j + 1) / count` of the
/// total weight (the earlier one on a tie), and the last run ends at the last item.
pub fn balanced_ranges(weights: &[u64], count: usize) -> Vec<Range<usize>> {
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    let mut ranges = Vec::with_capacity(count);
    let (mut start, mut end, mut running) = (0usize, 0usize, 0u128);
    for j in 0..count {
        let goal = total * (j as u128 + 1);
        if j + 1 == count {
            end = weights.len();
        } else {
            // Take the next item while that brings the run's end nearer to its goal.
            while end < weights.len()
                && (2 * running + weights[end] as u128) * (count as u128) < 2 * goal
            {
                running += weights[end] as u128;
                end += 1;
            }
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Which stage wrote a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartStage {
    Embed,
    Encode,
    Analyze,
}

impl PartStage {
    pub fn name(self) -> &'static str {
        match self {
            PartStage::Embed => "embed",
            PartStage::Encode => "encode",
            PartStage::Analyze => "analyze",
        }
    }
}

/// A file a part wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartFile {
    /// File name inside its set directory.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One set (activation or code set) of a part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSet {
    /// Set directory relative to the part (`""`: the part is the set, as for encode).
    pub dir: String,
    /// sha256 of the set's unfinished `manifest.json` (its header).
    pub manifest_sha256: String,
    /// The part's shard files, in order.
    pub files: Vec<PartFile>,
}

/// `part.json` (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartManifest {
    pub format: String,
    pub version: u32,
    pub stage: PartStage,
    /// This part, 0-based.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
    /// What the run's input and settings hash to; equal in every part of one result.
    pub input_sha256: String,
    /// What `weights` count (`residues`, `rows`).
    pub weight: String,
    /// Store shards of every part: part `j` holds shards `ranges[j][0]..ranges[j][1]`.
    pub ranges: Vec<[usize; 2]>,
    /// Weight of every part.
    pub weights: Vec<u64>,
    /// Every set the part wrote (embed, encode).
    #[serde(default)]
    pub sets: Vec<PartSet>,
    /// Files the part wrote outside sets, relative to the part (analyze: the part atlas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PartFile>,
    /// analyze with GO: the Gene Ontology read (absolute path, size, sha256), which merge needs
    /// again for GO coherence over the merged q-values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<PartFile>,
}

impl PartManifest {
    /// This part's store shards.
    pub fn shards(&self) -> Range<usize> {
        let [a, b] = self.ranges[self.index];
        a..b
    }

    /// Reads `part/part.json`, checking its format.
    pub fn read(part: &Path) -> Result<Self> {
        let path = part.join(PART_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let manifest: PartManifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a plmscope part.json", path.display()))?;
        if manifest.format != PART_FORMAT || manifest.version != PART_VERSION {
            bail!(
                "{}: format {:?} version {} is not {PART_FORMAT:?} version {PART_VERSION}",
                path.display(),
                manifest.format,
                manifest.version
            );
        }
        if manifest.count == 0
            || manifest.index >= manifest.count
            || manifest.ranges.len() != manifest.count
            || manifest.weights.len() != manifest.count
        {
            bail!(
                "{}: part {}/{} with {} ranges is inconsistent",
                path.display(),
                manifest.index,
                manifest.count,
                manifest.ranges.len()
            );
        }
        Ok(manifest)
    }

    /// The first file of the part that is missing or differs from its recorded size and
    /// sha256, as `(set dir / file, what is wrong)`.
    pub fn first_damaged(&self, part: &Path) -> Result<Option<(PathBuf, String)>> {
        for f in &self.files {
            let path = part.join(&f.file);
            if let Some(problem) = file_problem(&path, f)? {
                return Ok(Some((path, problem)));
            }
        }
        for set in &self.sets {
            let dir = part.join(&set.dir);
            for f in &set.files {
                let path = dir.join(&f.file);
                if let Some(problem) = file_problem(&path, f)? {
                    return Ok(Some((path, problem)));
                }
            }
            let manifest = dir.join(plmscope_store::MANIFEST_FILE);
            if !manifest.exists() {
                return Ok(Some((manifest, "is missing".into())));
            }
            if file_sha256(&manifest)? != set.manifest_sha256 {
                return Ok(Some((
                    manifest,
                    "differs from the header recorded in part.json".into(),
                )));
            }
        }
        Ok(None)
    }
}

/// What is wrong with `path` against its record, if anything.
fn file_problem(path: &Path, record: &PartFile) -> Result<Option<String>> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(Some("is missing".into()));
    };
    if meta.len() != record.bytes {
        return Ok(Some(format!(
            "holds {} bytes, part.json records {} (truncated or replaced)",
            meta.len(),
            record.bytes
        )));
    }
    let sha = file_sha256(path)?;
    if sha != record.sha256 {
        return Ok(Some(format!(
            "has sha256 {sha}, part.json records {} (damaged or replaced)",
            record.sha256
        )));
    }
    Ok(None)
}

/// Before a part (re)runs in `part`: when a `part.json` is there, deletes every recorded file
/// that no longer matches it, and the `part.json` itself (it is rewritten at the end), so the
/// stage's resume rewrites exactly the damaged shards.
pub fn prepare_part_dir(part: &Path) -> Result<()> {
    let path = part.join(PART_FILE);
    if !path.exists() {
        return Ok(());
    }
    // An unreadable part.json says nothing trustworthy: the shard files are still checked by
    // the store's resume (header and length).
    if let Ok(manifest) = PartManifest::read(part) {
        for f in &manifest.files {
            let file = part.join(&f.file);
            if file.exists() && file_problem(&file, f)?.is_some() {
                tracing::warn!("{} is damaged; rewriting it", file.display());
                std::fs::remove_file(&file)
                    .with_context(|| format!("removing {}", file.display()))?;
            }
        }
        for set in &manifest.sets {
            let dir = part.join(&set.dir);
            for f in &set.files {
                let file = dir.join(&f.file);
                if file.exists() && file_problem(&file, f)?.is_some() {
                    tracing::warn!("{} is damaged; rewriting it", file.display());
                    std::fs::remove_file(&file)
                        .with_context(|| format!("removing {}", file.display()))?;
                }
            }
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}

/// The sha256 of a run's inputs: `parts` (labels and byte strings) hashed in order.
pub fn input_hash(parts: &[(&str, &[u8])]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (label, bytes) in parts {
        hasher.update((label.len() as u64).to_le_bytes());
        hasher.update(label.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    crate::fingerprint::hex(&hasher.finalize())
}

/// What a part writer knows when its shards are done.
pub struct PartWrite<'a> {
    pub stage: PartStage,
    pub spec: ShardSpec,
    pub input_sha256: String,
    pub weight: &'static str,
    pub ranges: &'a [Range<usize>],
    pub weights: &'a [u64],
    /// Set directories relative to the part, each with its shard file names (this part's).
    pub sets: Vec<(String, Vec<String>)>,
    /// Other files the part wrote, relative to the part.
    pub files: Vec<String>,
    /// An input file merge reads again (analyze: the Gene Ontology).
    pub go: Option<PathBuf>,
}

/// Hashes the part's files and writes `part/part.json` atomically.
pub fn write_part(part: &Path, w: PartWrite) -> Result<PartManifest> {
    let mut sets = Vec::new();
    for (dir, files) in w.sets {
        let set_dir = part.join(&dir);
        let mut records = Vec::new();
        for file in files {
            let path = set_dir.join(&file);
            let bytes = std::fs::metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .len();
            records.push(PartFile {
                file,
                bytes,
                sha256: file_sha256(&path)?,
            });
        }
        sets.push(PartSet {
            manifest_sha256: file_sha256(&set_dir.join(plmscope_store::MANIFEST_FILE))?,
            dir,
            files: records,
        });
    }
    let record = |path: &Path, file: String| -> Result<PartFile> {
        let bytes = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok(PartFile {
            file,
            bytes,
            sha256: file_sha256(path)?,
        })
    };
    let files = w
        .files
        .into_iter()
        .map(|file| record(&part.join(&file), file))
        .collect::<Result<Vec<_>>>()?;
    let go = match w.go {
        Some(path) => {
            let absolute = std::fs::canonicalize(&path)
                .with_context(|| format!("resolving {}", path.display()))?;
            Some(record(&absolute, absolute.to_string_lossy().into_owned())?)
        }
        None => None,
    };
    let weights: Vec<u64> = w
        .ranges
        .iter()
        .map(|r| w.weights[r.clone()].iter().sum())
        .collect();
    let manifest = PartManifest {
        format: PART_FORMAT.to_string(),
        version: PART_VERSION,
        stage: w.stage,
        index: w.spec.index,
        count: w.spec.count,
        input_sha256: w.input_sha256,
        weight: w.weight.to_string(),
        ranges: w.ranges.iter().map(|r| [r.start, r.end]).collect(),
        weights,
        sets,
        files,
        go,
    };
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    crate::write_atomic(&part.join(PART_FILE), text.as_bytes())?;
    Ok(manifest)
}

/// Parts given to merge, by index; fails naming duplicates.
pub(crate) fn by_index(
    parts: &[(PathBuf, PartManifest)],
) -> Result<BTreeMap<usize, &(PathBuf, PartManifest)>> {
    let mut map = BTreeMap::new();
    for part in parts {
        if let Some(other) = map.insert(part.1.index, part) {
            bail!(
                "{} and {} are both part {}/{}; give each part once",
                other.0.display(),
                part.0.display(),
                part.1.index,
                part.1.count
            );
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_item_once_and_balance() {
        let w = [5u64, 1, 1, 1, 1, 1, 10, 1, 1];
        for n in 1..12 {
            let r = balanced_ranges(&w, n);
            assert_eq!(r.len(), n);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[n - 1].end, w.len());
            assert!(r.windows(2).all(|p| p[0].end == p[1].start));
        }
        assert_eq!(balanced_ranges(&w, 2), vec![0..6, 6..9]);
        assert_eq!(balanced_ranges(&[1; 9], 3), vec![0..3, 3..6, 6..9]);
        assert_eq!(balanced_ranges(&[1, 1, 8, 1, 1], 3), vec![0..2, 2..3, 3..5]);
        assert_eq!(balanced_ranges(&[3], 3), vec![0..0, 0..1, 1..1]);
    }

    #[test]
    fn shard_specs_parse() {
        assert_eq!(
            ShardSpec::parse_with_env("2/4", None).unwrap(),
            ShardSpec::new(2, 4).unwrap()
        );
        assert_eq!(
            ShardSpec::parse_with_env("auto/4", Some("3"))
                .unwrap()
                .index,
            3
        );
        assert!(ShardSpec::parse_with_env("4/4", None).is_err());
        assert!(ShardSpec::parse_with_env("auto/4", None).is_err());
        assert!(ShardSpec::parse_with_env("1-4", None).is_err());
        assert!(ShardSpec::parse_with_env("0/0", None).is_err());
    }
}

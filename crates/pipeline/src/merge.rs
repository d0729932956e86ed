//! `plmscope merge PART... --out DIR|ATLAS`: joins the parts of a sharded embed or encode
//! ([`crate::shard`]) into the activation sets or code set a single process writes, byte for
//! byte, and the parts of a sharded analyze into the atlas a single process writes, table by
//! table.
//!
//! Before anything is written, merge checks that
//! - every PART is a directory holding a `part.json` (a part without one is unfinished);
//! - all parts come from the same stage, the same N, the same split and the same input
//!   (`input_sha256`), and list the same sets with the same headers;
//! - every part `0..N` is given exactly once (a missing one is named with the `--shard i/N` to
//!   rerun);
//! - every file a part recorded is there with its recorded size and sha256 (a truncated or
//!   changed file is named, with its part).
//!
//! Then, per set, it creates the output set with the parts' header through the store's
//! resumable writer, copies each part's shard files into place (each atomically), and lets the
//! writer finish: the manifest (with every shard's sha256) and `proteins.tsv` are written by the
//! same code as in a single-process run, from the same shards, so they are the same bytes.
//! A merge that stops half-way is rerun as is.
//!
//! Analyze parts (`plmscope_interpret::pipeline::parts::merge_parts`): the first part's atlas is
//! copied under the staging name a single-process analyze uses (`ATLAS.staging`), the other
//! parts' per-unit rows are appended, and what depends on all units is recomputed: each kind's
//! and source's enrichment q over every part's materialised tests with m = the sum of the parts'
//! `total_tests` (then the `--store-tests` filter), GO coherence (with the Gene Ontology the
//! parts recorded, checked against its sha256), and the summary counts in meta. The atlas is
//! renamed to `ATLAS` only when complete; a failed merge leaves none. Every table then holds
//! the rows of a single-process analyze of the same inputs and options, equal value for value;
//! meta `summary` names the path it was written under (`ATLAS.staging`), as in a single run.
//! SQLite's index statistics are rebuilt by `ANALYZE` last, as a single run does, so
//! `sqlite_stat1` is equal too; `sqlite_stat4` (index samples carrying rowids, which follow the
//! order rows were inserted in) may differ.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_store::codes::CodeManifest;
use plmscope_store::{
    ActivationManifest, ActivationSetWriter, CodeSetWriter, ACTIVATIONS_FORMAT, MANIFEST_FILE,
};

use plmscope_bio::GoDag;

use crate::analyze::{staging_path, PART_ATLAS};
use crate::fingerprint::file_sha256;
use crate::shard::{by_index, PartManifest, PartStage, PART_FILE};
use crate::Progress;

/// The parts to join and where. With the `cli` feature it is also `plmscope merge`'s
/// arguments (the field docs are their help).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct MergeRequest {
    /// Part directories, each the --out of one `embed`, `encode` or `analyze` run with
    /// --shard i/N (any order; all N parts are needed).
    #[cfg_attr(feature = "cli", arg(required = true, value_name = "PART"))]
    pub parts: Vec<PathBuf>,
    /// The merged result: embed's output directory (one sub-directory per set), the code set,
    /// or the atlas (analyze: q-values and coherence recomputed over all parts).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// What a merge wrote.
#[derive(Clone, Debug)]
pub struct MergeOutcome {
    pub stage: PartStage,
    pub parts: usize,
    /// The sets written.
    pub sets: Vec<PathBuf>,
    /// Shard files copied.
    pub files: usize,
}

impl std::fmt::Display for MergeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.stage == PartStage::Analyze {
            return write!(
                f,
                "merged {} analyze parts into one atlas (q-values recomputed over all parts)",
                self.parts
            );
        }
        write!(
            f,
            "merged {} {} parts ({} shard files) into {} set{}",
            self.parts,
            self.stage.name(),
            self.files,
            self.sets.len(),
            if self.sets.len() == 1 { "" } else { "s" }
        )
    }
}

/// Checks the parts and joins them (see the module docs).
pub fn merge(req: &MergeRequest, progress: &dyn Progress) -> Result<MergeOutcome> {
    let parts = read_parts(&req.parts)?;
    let first = &parts[0].1;
    progress.start("merge", Some(parts.len() as u64), "parts");
    for (dir, part) in &parts {
        progress.message(&format!("checking {}", dir.display()));
        if let Some((file, problem)) = part.first_damaged(dir)? {
            bail!(
                "part {}/{} ({}) is damaged: {} {problem}; rerun that part alone (the same \
                 {} command with --shard {}/{}), which rewrites it, then merge again",
                part.index,
                part.count,
                dir.display(),
                file.display(),
                part.stage.name(),
                part.index,
                part.count
            );
        }
        progress.advance(1);
    }
    progress.finish();
    if first.stage == PartStage::Analyze {
        return merge_analyze(&req.out, &parts, progress);
    }
    std::fs::create_dir_all(&req.out).with_context(|| format!("creating {}", req.out.display()))?;
    let mut sets = Vec::new();
    let mut files = 0;
    for (s, set) in first.sets.iter().enumerate() {
        let out = req.out.join(&set.dir);
        progress.message(&format!("writing {}", out.display()));
        let manifest_path = parts[0].0.join(&set.dir).join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let format: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", manifest_path.display()))?;
        let copies: Vec<(PathBuf, String)> = parts
            .iter()
            .flat_map(|(dir, part)| {
                let set_dir = dir.join(&part.sets[s].dir);
                part.sets[s]
                    .files
                    .iter()
                    .map(move |f| (set_dir.join(&f.file), f.file.clone()))
            })
            .collect();
        files += copies.len();
        if format["format"] == ACTIVATIONS_FORMAT {
            let manifest: ActivationManifest = serde_json::from_str(&text)
                .with_context(|| format!("{}: not an activation set", manifest_path.display()))?;
            let header = manifest.header();
            drop(ActivationSetWriter::create_or_resume(&out, header.clone())?);
            copy_into(&copies, &out)?;
            ActivationSetWriter::create_or_resume(&out, header)?.finish(serde_json::json!({}))?;
        } else {
            let manifest: CodeManifest = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a code set", manifest_path.display()))?;
            let header = manifest.header();
            drop(CodeSetWriter::create_or_resume(&out, header.clone())?);
            copy_into(&copies, &out)?;
            CodeSetWriter::create_or_resume(&out, header)?.finish(serde_json::json!({}))?;
        }
        sets.push(out);
    }
    Ok(MergeOutcome {
        stage: first.stage,
        parts: parts.len(),
        sets,
        files,
    })
}

/// Joins analyze parts into one atlas at `out` (see the module docs): written under the
/// staging name a single-process analyze uses, and renamed into place when complete.
fn merge_analyze(
    out: &Path,
    parts: &[(PathBuf, PartManifest)],
    progress: &dyn Progress,
) -> Result<MergeOutcome> {
    let first = &parts[0].1;
    let dag = match &first.go {
        Some(go) => {
            let path = Path::new(&go.file);
            if !path.exists() {
                bail!(
                    "the parts were analysed with the Gene Ontology {}, which merge needs again \
                     (GO coherence over all parts) and cannot find",
                    path.display()
                );
            }
            if file_sha256(path)? != go.sha256 {
                bail!(
                    "{} changed since the parts were analysed (sha256 differs from part.json); \
                     merge needs the same Gene Ontology: restore it, or rerun every part",
                    path.display()
                );
            }
            progress.message(&format!("reading {}", path.display()));
            Some(GoDag::open(path).context("reading the Gene Ontology")?)
        }
        None => None,
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder of {}", out.display()))?;
    }
    if out.is_dir() {
        bail!(
            "--out {} is a directory; analyze parts merge into one atlas file",
            out.display()
        );
    }
    let atlases: Vec<PathBuf> = parts.iter().map(|(dir, _)| dir.join(PART_ATLAS)).collect();
    let staging = staging_path(out);
    progress.message(&format!("writing {}", out.display()));
    let merged = plmscope_interpret::pipeline::parts::merge_parts(
        &atlases,
        &staging,
        &staging,
        dag.as_ref(),
    );
    if let Err(e) = merged {
        drop(std::fs::remove_file(&staging));
        return Err(e).with_context(|| format!("merging the parts into {}", out.display()));
    }
    plmscope_fsutil::persist(&staging, out)?;
    Ok(MergeOutcome {
        stage: PartStage::Analyze,
        parts: parts.len(),
        sets: vec![out.to_path_buf()],
        files: atlases.len(),
    })
}

/// Reads every part's `part.json` and checks that they form one whole result, in index order.
fn read_parts(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, PartManifest)>> {
    if dirs.is_empty() {
        bail!("merge needs the part directories (PART...)");
    }
    let mut parts = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!("part {}: no such directory", dir.display());
        }
        if !dir.join(PART_FILE).exists() {
            bail!(
                "part {} is unfinished (no {PART_FILE}): rerun its --shard i/N command, which \
                 resumes it, then merge again",
                dir.display()
            );
        }
        let part = PartManifest::read(dir)
            .with_context(|| format!("part {} is damaged", dir.display()))?;
        parts.push((dir.clone(), part));
    }
    let (dir0, p0) = &parts[0];
    for (dir, p) in &parts[1..] {
        let differs = |what: &str| -> Result<()> {
            bail!(
                "parts {} and {} differ in {what}: they are not parts of one run (the same \
                 command, input files and N)",
                dir0.display(),
                dir.display()
            )
        };
        if p.stage != p0.stage {
            differs("stage")?;
        }
        if p.count != p0.count {
            differs(&format!("N ({} and {})", p0.count, p.count))?;
        }
        if p.input_sha256 != p0.input_sha256 {
            differs("their input (input_sha256)")?;
        }
        if p.ranges != p0.ranges || p.weights != p0.weights {
            differs("the split")?;
        }
        let headers = |m: &PartManifest| -> Vec<(String, String)> {
            m.sets
                .iter()
                .map(|s| (s.dir.clone(), s.manifest_sha256.clone()))
                .collect()
        };
        if headers(p) != headers(p0) {
            differs("their sets or set headers")?;
        }
    }
    let indexed = by_index(&parts)?;
    let missing: Vec<String> = (0..p0.count)
        .filter(|i| !indexed.contains_key(i))
        .map(|i| format!("{i}/{}", p0.count))
        .collect();
    if !missing.is_empty() {
        let (noun, verb, it, output) = if missing.len() == 1 {
            ("part", "is", "it", "its output")
        } else {
            ("parts", "are", "them", "their outputs")
        };
        bail!(
            "{noun} {} of this {} {verb} missing: none of the given directories holds {it}; run \
             the same {} command with --shard {} and pass {output} too",
            missing.join(", "),
            p0.stage.name(),
            p0.stage.name(),
            missing.join(", --shard "),
        );
    }
    let mut ordered: Vec<(PathBuf, PartManifest)> = indexed
        .into_values()
        .map(|(d, p)| (d.clone(), p.clone()))
        .collect();
    ordered.sort_by_key(|(_, p)| p.index);
    Ok(ordered)
}

/// Copies each `(source, name)` to `dir/name` through a temporary name.
fn copy_into(copies: &[(PathBuf, String)], dir: &Path) -> Result<()> {
    for (source, name) in copies {
        let target = dir.join(name);
        let tmp = plmscope_fsutil::tmp_path(&target);
        std::fs::copy(source, &tmp)
            .with_context(|| format!("copying {} to {}", source.display(), tmp.display()))?;
        plmscope_fsutil::persist(&tmp, &target)?;
    }
    Ok(())
}

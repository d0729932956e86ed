//! The resumable shard-set writer that activation sets and code sets share: a directory with
//! `manifest.json` (`complete` false until the end), numbered shard files written atomically,
//! resume by re-inspecting the shards already on disk, and a finish that lists every shard with
//! its sha256. What differs between the two kinds (header, shard layout, manifest fields) is a
//! [`ShardLayout`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsio::{is_empty_but_tmp, remove_stray_tmp, sha256_file};
use crate::header::canonical_json;
use crate::{StoreError, MANIFEST_FILE};

/// What an existing manifest says, once its header was found equal to this run's.
pub(crate) struct Existing<R> {
    pub complete: bool,
    pub shards: Vec<R>,
}

/// The parts of a shard set that depend on its kind.
pub(crate) trait ShardLayout {
    /// What the writer remembers of a shard on disk (its proteins, its nnz...).
    type Shard;
    /// A shard's entry in a finished manifest.
    type Record;
    /// Prefixes of the files the set writes, for removing leftover temporaries.
    const FILE_PREFIXES: &'static [&'static str];
    /// How errors call a shard (`shards`, `code shards`).
    const NOUN: &'static str;

    /// Number of shards the finished set has.
    fn shard_count(&self) -> usize;
    /// File name of shard `shard` inside the set directory.
    fn file_name(shard: usize) -> String;
    /// The header's free-form notes.
    fn extra(&self) -> &serde_json::Value;
    /// Reads `dir`'s manifest and fails naming the first header field that differs.
    fn read_existing(&self, dir: &Path) -> Result<Existing<Self::Record>, StoreError>;
    /// Checks a shard file on disk against the header (cheaply: header and length).
    fn inspect(&self, path: &Path, shard: usize) -> Result<Self::Shard, StoreError>;
    /// The sha256 `record` gives, when it describes the file `file` that was found as `shard`.
    fn recorded_sha256(
        &self,
        record: &Self::Record,
        file: &str,
        shard: &Self::Shard,
    ) -> Option<String>;
    /// The finished manifest's entry for a shard.
    fn record(
        &self,
        index: usize,
        file: String,
        shard: &Self::Shard,
        sha256: String,
    ) -> Self::Record;
    /// Writes the manifest atomically.
    fn write_manifest(
        &self,
        path: &Path,
        shards: Vec<Self::Record>,
        complete: bool,
        extra: serde_json::Value,
    ) -> Result<(), StoreError>;
}

/// A shard that is on disk under its final name.
pub(crate) struct DoneShard<S> {
    pub shard: S,
    /// Known when this process wrote the shard or a finished manifest recorded it.
    pub sha256: Option<String>,
}

/// Writes one shard set; see the module docs.
pub(crate) struct ShardSetWriter<L: ShardLayout> {
    dir: PathBuf,
    layout: L,
    done: BTreeMap<usize, DoneShard<L::Shard>>,
}

/// `extra` round-tripped through JSON text, so it compares equal to what a resume reads back.
pub(crate) fn canonical_extra(extra: &serde_json::Value) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(&canonical_json(extra).to_string())
        .map_err(|e| StoreError::InvalidInput(format!("header extra: {e}")))
}

impl<L: ShardLayout> ShardSetWriter<L> {
    /// Creates `dir` with an unfinished manifest, or resumes the set already there.
    pub fn create_or_resume(dir: &Path, layout: L) -> Result<Self, StoreError> {
        let mut writer = ShardSetWriter {
            dir: dir.to_path_buf(),
            layout,
            done: BTreeMap::new(),
        };
        if dir.join(MANIFEST_FILE).exists() {
            writer.resume()?;
        } else {
            if dir.exists() && !is_empty_but_tmp(dir)? {
                return Err(StoreError::NotASet {
                    dir: dir.to_path_buf(),
                    message: format!(
                        "directory is not empty and holds no {MANIFEST_FILE}; \
                         use another --out or delete it"
                    ),
                });
            }
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
            let extra = writer.layout.extra().clone();
            writer.write_manifest(Vec::new(), false, extra)?;
        }
        Ok(writer)
    }

    fn resume(&mut self) -> Result<(), StoreError> {
        let existing = self.layout.read_existing(&self.dir)?;
        for index in 0..self.layout.shard_count() {
            let file = L::file_name(index);
            let path = self.dir.join(&file);
            if !path.exists() {
                continue;
            }
            // A shard that fails inspection is treated as missing and rewritten.
            if let Ok(shard) = self.layout.inspect(&path, index) {
                let sha256 = existing
                    .shards
                    .iter()
                    .find_map(|r| self.layout.recorded_sha256(r, &file, &shard));
                self.done.insert(index, DoneShard { shard, sha256 });
            }
        }
        if existing.complete && self.done.len() != self.layout.shard_count() {
            // A finished set lost a shard: mark it unfinished until it is rewritten. The notes
            // go back to this run's header (the finish notes return at the next finish), since
            // an unfinished manifest's extra must equal the header of the run that resumes it.
            let extra = self.layout.extra().clone();
            self.write_manifest(Vec::new(), false, extra)?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn layout(&self) -> &L {
        &self.layout
    }

    /// Shards on disk, in order.
    pub fn done(&self) -> impl Iterator<Item = (usize, &L::Shard)> {
        self.done.iter().map(|(&i, d)| (i, &d.shard))
    }

    pub fn is_shard_complete(&self, index: usize) -> bool {
        self.done.contains_key(&index)
    }

    pub fn missing_shards(&self) -> Vec<usize> {
        (0..self.layout.shard_count())
            .filter(|s| !self.done.contains_key(s))
            .collect()
    }

    /// Path of shard `index`, where the caller writes it atomically.
    pub fn shard_path(&self, index: usize) -> PathBuf {
        self.dir.join(L::file_name(index))
    }

    /// Records a shard the caller has just written to [`Self::shard_path`].
    pub fn shard_written(&mut self, index: usize, shard: L::Shard, sha256: String) {
        let sha256 = Some(sha256);
        self.done.insert(index, DoneShard { shard, sha256 });
    }

    /// Fails naming the missing shards, or removes leftover temporaries and returns every
    /// shard's manifest entry (hashing the shards a previous run wrote).
    pub fn finished_records(&self) -> Result<Vec<L::Record>, StoreError> {
        let missing = self.missing_shards();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).map(|s| s.to_string()).collect();
            let more = if missing.len() > shown.len() {
                ", ..."
            } else {
                ""
            };
            return Err(StoreError::Incomplete {
                dir: self.dir.clone(),
                reason: format!(
                    "{} of {} {noun} not written ({noun} {}{more})",
                    missing.len(),
                    self.layout.shard_count(),
                    shown.join(", "),
                    noun = L::NOUN,
                ),
            });
        }
        remove_stray_tmp(&self.dir, L::FILE_PREFIXES)?;
        let mut records = Vec::with_capacity(self.done.len());
        for (&index, done) in &self.done {
            let file = L::file_name(index);
            let sha256 = match &done.sha256 {
                Some(sha) => sha.clone(),
                None => sha256_file(&self.dir.join(&file))?,
            };
            records.push(self.layout.record(index, file, &done.shard, sha256));
        }
        Ok(records)
    }

    /// Writes the manifest; `complete` only after every shard and side file is in place.
    pub fn write_manifest(
        &self,
        shards: Vec<L::Record>,
        complete: bool,
        extra: serde_json::Value,
    ) -> Result<(), StoreError> {
        let path = self.dir.join(MANIFEST_FILE);
        self.layout
            .write_manifest(&path, shards, complete, canonical_json(&extra))
    }
}

//! Writing a code set shard by shard, with the activation writer's atomic/resume rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    codes_file_name, CodeManifest, CodeSetHeader, CodeShardRecord, CsrRows, CODES_FORMAT,
    CODES_PREFIX, CODES_VERSION,
};
use crate::convert::{write_f32_as, write_u32, write_u64};
use crate::fsio::{is_empty_but_tmp, remove_stray_tmp, sha256_file, write_json_atomic};
use crate::header::{canonical_json, merge_extra};
use crate::st::{map_file, write_safetensors, ParsedHeader, TensorSpec};
use crate::{StorageDtype, StoreError, MANIFEST_FILE};

/// A code shard on disk under its final name.
struct DoneShard {
    rows: usize,
    nnz: usize,
    sha256: Option<String>,
}

/// Writes a code set; resumable like [`crate::ActivationSetWriter`].
pub struct CodeSetWriter {
    dir: PathBuf,
    header: CodeSetHeader,
    done: BTreeMap<usize, DoneShard>,
}

impl CodeSetWriter {
    /// Creates `dir`, or resumes when it holds a code manifest with the same header.
    pub fn create_or_resume(dir: &Path, header: CodeSetHeader) -> Result<Self, StoreError> {
        let mut header = header;
        header.extra = serde_json::from_str(&canonical_json(&header.extra).to_string())
            .map_err(|e| StoreError::InvalidInput(format!("header extra: {e}")))?;
        let mut writer = CodeSetWriter {
            dir: dir.to_path_buf(),
            header,
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
            writer.write_manifest(Vec::new(), false, writer.header.extra.clone())?;
        }
        Ok(writer)
    }

    fn resume(&mut self) -> Result<(), StoreError> {
        let existing = CodeManifest::read(&self.dir)?;
        let old = existing.header();
        let new = &self.header;
        let mismatch = |field: &str, a: String, b: String| StoreError::HeaderMismatch {
            dir: self.dir.clone(),
            field: field.to_string(),
            existing: a,
            requested: b,
        };
        if old.source != new.source {
            return Err(mismatch(
                "source",
                format!("{:?}", old.source),
                format!("{:?}", new.source),
            ));
        }
        if old.dictionary != new.dictionary {
            return Err(mismatch(
                "dictionary",
                format!("{:?}", old.dictionary),
                format!("{:?}", new.dictionary),
            ));
        }
        if old.shard_rows != new.shard_rows {
            return Err(mismatch(
                "shard_rows",
                format!("{:?}", old.shard_rows),
                format!("{:?}", new.shard_rows),
            ));
        }
        if !existing.complete && old.extra != new.extra {
            return Err(mismatch(
                "extra",
                old.extra.to_string(),
                new.extra.to_string(),
            ));
        }
        for shard in 0..self.header.shard_rows.len() {
            let file = codes_file_name(shard);
            let path = self.dir.join(&file);
            if !path.exists() {
                continue;
            }
            if let Ok(nnz) = self.inspect(&path, shard) {
                let sha256 = existing
                    .shards
                    .iter()
                    .find(|r| r.file == file && r.nnz == nnz)
                    .map(|r| r.sha256.clone());
                let rows = self.header.shard_rows[shard];
                self.done.insert(shard, DoneShard { rows, nnz, sha256 });
            }
        }
        if existing.complete && self.done.len() != self.header.shard_rows.len() {
            self.write_manifest(Vec::new(), false, existing.extra.clone())?;
        }
        Ok(())
    }

    /// Checks an existing shard's header and length; returns its nnz.
    fn inspect(&self, path: &Path, shard: usize) -> Result<usize, StoreError> {
        let map = map_file(path)?;
        let parsed = ParsedHeader::parse(path, &map)?;
        let nnz = match parsed.shape("feature") {
            Some(&[nnz]) => nnz,
            _ => return Err(StoreError::shard(path, "no 1-d tensor \"feature\"")),
        };
        let rows = self.header.shard_rows[shard];
        parsed.tensor(path, "row_ptr", safetensors::Dtype::U64, &[rows + 1])?;
        parsed.tensor(path, "value", safetensors::Dtype::F32, &[nnz])?;
        Ok(nnz)
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of shards (that of the activation set).
    pub fn shard_count(&self) -> usize {
        self.header.shard_rows.len()
    }

    /// True when shard `shard` is on disk and whole.
    pub fn is_shard_complete(&self, shard: usize) -> bool {
        self.done.contains_key(&shard)
    }

    /// Writes code shard `shard`; its rows must equal the activation shard's.
    pub fn write_shard(&mut self, shard: usize, codes: &CsrRows) -> Result<(), StoreError> {
        let Some(&rows) = self.header.shard_rows.get(shard) else {
            return Err(StoreError::InvalidInput(format!(
                "{}: code shard {shard} out of range, the set has {} shards",
                self.dir.display(),
                self.shard_count()
            )));
        };
        if codes.rows() != rows {
            return Err(StoreError::InvalidInput(format!(
                "code shard {shard} holds {} rows, the activation shard has {rows}",
                codes.rows()
            )));
        }
        codes
            .validate(self.header.dictionary.d_sae)
            .map_err(|e| StoreError::InvalidInput(format!("code shard {shard}: {e}")))?;
        let nnz = codes.nnz();
        let tensors = vec![
            TensorSpec {
                name: "row_ptr",
                dtype: safetensors::Dtype::U64,
                shape: vec![rows + 1],
                emit: Box::new(|w| write_u64(&codes.row_ptr, w)),
            },
            TensorSpec {
                name: "feature",
                dtype: safetensors::Dtype::U32,
                shape: vec![nnz],
                emit: Box::new(|w| write_u32(&codes.feature, w)),
            },
            TensorSpec {
                name: "value",
                dtype: safetensors::Dtype::F32,
                shape: vec![nnz],
                emit: Box::new(|w| write_f32_as(StorageDtype::F32, &codes.value, w)),
            },
        ];
        let path = self.dir.join(codes_file_name(shard));
        let sha256 = write_safetensors(&path, tensors, None)?;
        self.done.insert(
            shard,
            DoneShard {
                rows,
                nnz,
                sha256: Some(sha256),
            },
        );
        Ok(())
    }

    /// Writes the manifest with `complete = true`, merging `extra` into the header's notes.
    pub fn finish(self, extra: serde_json::Value) -> Result<(), StoreError> {
        let missing: Vec<usize> = (0..self.shard_count())
            .filter(|s| !self.done.contains_key(s))
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::Incomplete {
                dir: self.dir.clone(),
                reason: format!(
                    "{} of {} code shards not written (first: {})",
                    missing.len(),
                    self.shard_count(),
                    missing[0]
                ),
            });
        }
        remove_stray_tmp(&self.dir, &[CODES_PREFIX, MANIFEST_FILE])?;
        let mut shards = Vec::with_capacity(self.done.len());
        for (&shard, done) in &self.done {
            let file = codes_file_name(shard);
            let sha256 = match &done.sha256 {
                Some(sha) => sha.clone(),
                None => sha256_file(&self.dir.join(&file))?,
            };
            shards.push(CodeShardRecord {
                file,
                rows: done.rows,
                nnz: done.nnz,
                sha256,
            });
        }
        let extra = merge_extra(&self.header.extra, extra);
        self.write_manifest(shards, true, extra)
    }

    fn write_manifest(
        &self,
        shards: Vec<CodeShardRecord>,
        complete: bool,
        extra: serde_json::Value,
    ) -> Result<(), StoreError> {
        let manifest = CodeManifest {
            format: CODES_FORMAT.to_string(),
            version: CODES_VERSION,
            source: self.header.source.clone(),
            dictionary: self.header.dictionary.clone(),
            shard_rows: self.header.shard_rows.clone(),
            shards,
            complete,
            extra: canonical_json(&extra),
        };
        write_json_atomic(&self.dir.join(MANIFEST_FILE), &manifest)
    }
}

//! Writing a code set shard by shard: the shared shard-set writer with a code-set layout.

use std::path::Path;

use super::{
    codes_file_name, CodeManifest, CodeSetHeader, CodeShardRecord, CsrRows, CODES_FORMAT,
    CODES_PREFIX, CODES_VERSION,
};
use crate::convert::{write_f32_as, write_u32, write_u64};
use crate::fsio::write_json_atomic;
use crate::header::merge_extra;
use crate::shardset::{canonical_extra, Existing, ShardLayout, ShardSetWriter};
use crate::st::{map_file, write_safetensors, ParsedHeader, TensorSpec};
use crate::{StorageDtype, StoreError, MANIFEST_FILE};

/// What the writer remembers of a code shard on disk.
pub(crate) struct CodeShard {
    rows: usize,
    nnz: usize,
}

/// Code-set specifics of the shared shard-set writer.
pub(crate) struct CodeLayout {
    header: CodeSetHeader,
}

impl ShardLayout for CodeLayout {
    type Shard = CodeShard;
    type Record = CodeShardRecord;
    const FILE_PREFIXES: &'static [&'static str] = &[CODES_PREFIX, MANIFEST_FILE];
    const NOUN: &'static str = "code shards";

    fn shard_count(&self) -> usize {
        self.header.shard_rows.len()
    }

    fn file_name(shard: usize) -> String {
        codes_file_name(shard)
    }

    fn extra(&self) -> &serde_json::Value {
        &self.header.extra
    }

    fn read_existing(&self, dir: &Path) -> Result<Existing<CodeShardRecord>, StoreError> {
        let existing = CodeManifest::read(dir)?;
        let old = existing.header();
        let new = &self.header;
        let mismatch = |field: &str, a: String, b: String| StoreError::HeaderMismatch {
            dir: dir.to_path_buf(),
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
        Ok(Existing {
            complete: existing.complete,
            shards: existing.shards,
        })
    }

    /// Checks an existing shard's header and length.
    fn inspect(&self, path: &Path, shard: usize) -> Result<CodeShard, StoreError> {
        let map = map_file(path)?;
        let parsed = ParsedHeader::parse(path, &map)?;
        let nnz = match parsed.shape("feature") {
            Some(&[nnz]) => nnz,
            _ => return Err(StoreError::shard(path, "no 1-d tensor \"feature\"")),
        };
        let rows = self.header.shard_rows[shard];
        parsed.tensor(path, "row_ptr", safetensors::Dtype::U64, &[rows + 1])?;
        parsed.tensor(path, "value", safetensors::Dtype::F32, &[nnz])?;
        Ok(CodeShard { rows, nnz })
    }

    fn recorded_sha256(
        &self,
        record: &CodeShardRecord,
        file: &str,
        shard: &CodeShard,
    ) -> Option<String> {
        (record.file == file && record.nnz == shard.nnz).then(|| record.sha256.clone())
    }

    fn record(&self, _: usize, file: String, shard: &CodeShard, sha256: String) -> CodeShardRecord {
        CodeShardRecord {
            file,
            rows: shard.rows,
            nnz: shard.nnz,
            sha256,
        }
    }

    fn write_manifest(
        &self,
        path: &Path,
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
            extra,
        };
        write_json_atomic(path, &manifest)
    }
}

/// Writes a code set; resumable like [`crate::ActivationSetWriter`].
pub struct CodeSetWriter {
    set: ShardSetWriter<CodeLayout>,
}

impl CodeSetWriter {
    /// Creates `dir`, or resumes when it holds a code manifest with the same header.
    pub fn create_or_resume(dir: &Path, header: CodeSetHeader) -> Result<Self, StoreError> {
        let mut header = header;
        header.extra = canonical_extra(&header.extra)?;
        let set = ShardSetWriter::create_or_resume(dir, CodeLayout { header })?;
        Ok(CodeSetWriter { set })
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        self.set.dir()
    }

    /// Number of shards (that of the activation set).
    pub fn shard_count(&self) -> usize {
        self.set.layout().shard_count()
    }

    /// True when shard `shard` is on disk and whole.
    pub fn is_shard_complete(&self, shard: usize) -> bool {
        self.set.is_shard_complete(shard)
    }

    /// Writes code shard `shard`; its rows must equal the activation shard's.
    pub fn write_shard(&mut self, shard: usize, codes: &CsrRows) -> Result<(), StoreError> {
        let header = &self.set.layout().header;
        let Some(&rows) = header.shard_rows.get(shard) else {
            return Err(StoreError::InvalidInput(format!(
                "{}: code shard {shard} out of range, the set has {} shards",
                self.dir().display(),
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
            .validate(header.dictionary.d_sae)
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
        let sha256 = write_safetensors(&self.set.shard_path(shard), tensors, None)?;
        self.set
            .shard_written(shard, CodeShard { rows, nnz }, sha256);
        Ok(())
    }

    /// Writes the manifest with `complete = true`, merging `extra` into the header's notes.
    pub fn finish(self, extra: serde_json::Value) -> Result<(), StoreError> {
        let shards = self.set.finished_records()?;
        let extra = merge_extra(&self.set.layout().header.extra, extra);
        self.set.write_manifest(shards, true, extra)
    }
}

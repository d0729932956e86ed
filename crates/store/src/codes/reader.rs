//! Reading a finished code set through memory maps, row by row.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{CodeManifest, CodeSetHeader};
use crate::convert::u64_at;
use crate::st::{map_file, ParsedHeader};
use crate::{ActivationSet, StoreError, MANIFEST_FILE};

// Rows are handed out as slices of the mapped little-endian bytes.
#[cfg(not(target_endian = "little"))]
compile_error!("plmscope-store reads code sets in place and needs a little-endian target");

/// One mapped code shard.
struct MappedCodes {
    map: memmap2::Mmap,
    first_row: usize,
    rows: usize,
    row_ptr: Range<usize>,
    feature: Range<usize>,
    value: Range<usize>,
}

impl MappedCodes {
    fn features(&self) -> &[u32] {
        // SAFETY: every bit pattern is a valid u32; `align_to` only returns a middle slice of
        // properly aligned elements, and `open` checked that nothing falls outside it.
        let (_, middle, _) = unsafe { self.map[self.feature.clone()].align_to::<u32>() };
        middle
    }

    fn values(&self) -> &[f32] {
        // SAFETY: as in `features`; every bit pattern is a valid f32.
        let (_, middle, _) = unsafe { self.map[self.value.clone()].align_to::<f32>() };
        middle
    }

    fn entries(&self, local_row: usize) -> Range<usize> {
        let bytes = &self.map[self.row_ptr.clone()];
        u64_at(bytes, local_row) as usize..u64_at(bytes, local_row + 1) as usize
    }
}

/// A finished code set, opened for reading.
pub struct CodeSet {
    dir: PathBuf,
    manifest: CodeManifest,
    shards: Vec<MappedCodes>,
    rows: usize,
}

impl CodeSet {
    /// Opens the code set in `dir`; refuses an unfinished one and checks every shard's CSR
    /// structure (row_ptr from 0, non-decreasing, ending at nnz; features below d_sae).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let manifest = CodeManifest::read(dir)?;
        let incomplete = |reason: String| StoreError::Incomplete {
            dir: dir.to_path_buf(),
            reason,
        };
        if !manifest.complete {
            return Err(incomplete(format!("{MANIFEST_FILE} says complete = false")));
        }
        if manifest.shards.len() != manifest.shard_rows.len() {
            return Err(StoreError::Manifest {
                path: dir.join(MANIFEST_FILE),
                message: "shards and shard_rows differ in length".to_string(),
            });
        }
        let d_sae = manifest.dictionary.d_sae;
        let mut shards = Vec::with_capacity(manifest.shards.len());
        let mut first_row = 0;
        for record in &manifest.shards {
            let path = dir.join(&record.file);
            if !path.exists() {
                return Err(incomplete(format!("{} is missing", record.file)));
            }
            let map = map_file(&path)?;
            let parsed = ParsedHeader::parse(&path, &map)
                .map_err(|e| incomplete(format!("{} is short or damaged: {e}", record.file)))?;
            let (rows, nnz) = (record.rows, record.nnz);
            let shard = MappedCodes {
                row_ptr: parsed.tensor(&path, "row_ptr", safetensors::Dtype::U64, &[rows + 1])?,
                feature: parsed.tensor(&path, "feature", safetensors::Dtype::U32, &[nnz])?,
                value: parsed.tensor(&path, "value", safetensors::Dtype::F32, &[nnz])?,
                map,
                first_row,
                rows,
            };
            if shard.features().len() != nnz || shard.values().len() != nnz {
                return Err(StoreError::shard(
                    &path,
                    "feature/value data is not 4-byte aligned",
                ));
            }
            let ptr = &shard.map[shard.row_ptr.clone()];
            let mut previous = 0;
            for r in 0..=rows {
                let p = u64_at(ptr, r);
                if (r == 0 && p != 0) || p < previous || p > nnz as u64 {
                    return Err(StoreError::shard(
                        &path,
                        format!("row_ptr[{r}] = {p} is not valid CSR"),
                    ));
                }
                previous = p;
            }
            if previous != nnz as u64 {
                return Err(StoreError::shard(
                    &path,
                    format!("row_ptr ends at {previous}, nnz is {nnz}"),
                ));
            }
            if let Some(f) = shard.features().iter().find(|&&f| f as usize >= d_sae) {
                return Err(StoreError::shard(
                    &path,
                    format!("feature {f} is not below d_sae {d_sae}"),
                ));
            }
            first_row += rows;
            shards.push(shard);
        }
        Ok(CodeSet {
            dir: dir.to_path_buf(),
            manifest,
            shards,
            rows: first_row,
        })
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Source, dictionary, shard rows, notes.
    pub fn header(&self) -> CodeSetHeader {
        self.manifest.header()
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &CodeManifest {
        &self.manifest
    }

    /// Rows in the set (equal to the activation set's).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of features of the dictionary.
    pub fn d_sae(&self) -> usize {
        self.manifest.dictionary.d_sae
    }

    /// Non-zero entries in the whole set.
    pub fn nnz(&self) -> usize {
        self.manifest.shards.iter().map(|s| s.nnz).sum()
    }

    /// Row `row`'s features and values (panics when `row >= rows()`).
    pub fn row(&self, row: usize) -> (&[u32], &[f32]) {
        assert!(
            row < self.rows,
            "row {row} out of range ({} rows)",
            self.rows
        );
        let index = self.shards.partition_point(|s| s.first_row + s.rows <= row);
        let shard = &self.shards[index];
        let entries = shard.entries(row - shard.first_row);
        (&shard.features()[entries.clone()], &shard.values()[entries])
    }

    /// Row `row`'s `(feature, value)` pairs.
    pub fn row_pairs(&self, row: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (features, values) = self.row(row);
        features.iter().copied().zip(values.iter().copied())
    }

    /// Every row's features and values, in row order.
    pub fn iter_rows(&self) -> impl Iterator<Item = (&[u32], &[f32])> + '_ {
        self.shards.iter().flat_map(|shard| {
            (0..shard.rows).map(move |r| {
                let entries = shard.entries(r);
                (&shard.features()[entries.clone()], &shard.values()[entries])
            })
        })
    }

    /// Checks that the codes line up with `set`: same shards, same rows per shard.
    pub fn check_aligned(&self, set: &ActivationSet) -> Result<(), StoreError> {
        let theirs: Vec<usize> = set.manifest().shards.iter().map(|s| s.rows).collect();
        if theirs != self.manifest.shard_rows {
            return Err(StoreError::NotAligned(format!(
                "{} has shard rows {:?}, activation set {} has {:?}",
                self.dir.display(),
                self.manifest.shard_rows,
                set.dir().display(),
                theirs
            )));
        }
        Ok(())
    }
}

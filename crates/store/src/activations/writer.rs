//! Writing an activation set shard by shard, resumable after any interruption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{
    inspect_shard_file, shard_file_name, shard_rows, write_shard_file, ActivationManifest,
    ProteinEntry, ShardRecord, MANIFEST_FILE, PROTEINS_FILE, SHARD_PREFIX,
};
use super::table::{write_protein_table, ProteinRecord};
use crate::fsio::{is_empty_but_tmp, remove_stray_tmp, sha256_file, write_json_atomic};
use crate::header::{canonical_json, merge_extra};
use crate::{SetHeader, StoreError};

/// A shard that is on disk under its final name.
struct DoneShard {
    proteins: Vec<ProteinEntry>,
    /// Known when this process wrote the shard or a finished manifest recorded it.
    sha256: Option<String>,
}

/// Writes an activation set (see the crate docs for the layout).
///
/// Every file goes to a temporary name, is fsynced and renamed, so an interrupted run leaves
/// only whole shards under final names; `create_or_resume` on the same directory picks them up,
/// and the finished set is byte-identical to one written in a single run.
pub struct ActivationSetWriter {
    dir: PathBuf,
    header: SetHeader,
    done: BTreeMap<usize, DoneShard>,
}

impl ActivationSetWriter {
    /// Creates `dir`, or resumes when `dir` holds a manifest whose header equals `header`
    /// (a different header is an error naming the field). Shards already on disk are checked
    /// (header and length) and count as complete; broken ones will be rewritten.
    pub fn create_or_resume(dir: &Path, header: SetHeader) -> Result<Self, StoreError> {
        if header.proteins_per_shard == 0 || header.d_model == 0 || header.total_proteins == 0 {
            return Err(StoreError::InvalidInput(format!(
                "{}: proteins_per_shard, d_model and total_proteins must be positive",
                dir.display()
            )));
        }
        let mut header = header;
        // Round-trip extra through JSON text so it compares equal to what a resume reads back.
        header.extra = serde_json::from_str(&canonical_json(&header.extra).to_string())
            .map_err(|e| StoreError::InvalidInput(format!("header extra: {e}")))?;
        let mut writer = ActivationSetWriter {
            dir: dir.to_path_buf(),
            header,
            done: BTreeMap::new(),
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        if manifest_path.exists() {
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
        let existing = ActivationManifest::read(&self.dir)?;
        if let Some((field, existing_value, requested)) = existing
            .header()
            .first_difference(&self.header, existing.complete)
        {
            return Err(StoreError::HeaderMismatch {
                dir: self.dir.clone(),
                field,
                existing: existing_value,
                requested,
            });
        }
        let recorded: BTreeMap<&str, &ShardRecord> = existing
            .shards
            .iter()
            .map(|s| (s.file.as_str(), s))
            .collect();
        for shard in 0..self.header.shard_count() {
            let path = self.dir.join(shard_file_name(shard));
            if !path.exists() {
                continue;
            }
            // A shard that fails inspection is treated as missing and rewritten.
            if let Ok(proteins) = inspect_shard_file(&path, &self.header, shard) {
                let rows = shard_rows(self.header.level, &proteins);
                let sha256 = recorded
                    .get(shard_file_name(shard).as_str())
                    .filter(|r| r.rows == rows && r.proteins == proteins.len())
                    .map(|r| r.sha256.clone());
                self.done.insert(shard, DoneShard { proteins, sha256 });
            }
        }
        if existing.complete && self.done.len() != self.header.shard_count() {
            // A finished set lost a shard: mark it unfinished until it is rewritten.
            self.write_manifest(Vec::new(), false, existing.extra.clone())?;
        }
        Ok(())
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The header the set is written with.
    pub fn header(&self) -> &SetHeader {
        &self.header
    }

    /// Number of shards the finished set has.
    pub fn shard_count(&self) -> usize {
        self.header.shard_count()
    }

    /// True when shard `shard` is on disk, whole, and need not be computed again.
    pub fn is_shard_complete(&self, shard: usize) -> bool {
        self.done.contains_key(&shard)
    }

    /// Shards still to write, in order.
    pub fn missing_shards(&self) -> Vec<usize> {
        (0..self.shard_count())
            .filter(|s| !self.done.contains_key(s))
            .collect()
    }

    /// Writes shard `shard` (see the crate docs). `proteins`: the shard's proteins in input
    /// order (global indices `shard * proteins_per_shard ..`); `activations`: row-major
    /// `[rows, d_model]` f32, converted to the header's dtype on write.
    pub fn write_shard(
        &mut self,
        shard: usize,
        proteins: &[ProteinEntry],
        activations: &[f32],
    ) -> Result<(), StoreError> {
        let header = &self.header;
        if shard >= header.shard_count() {
            return Err(StoreError::InvalidInput(format!(
                "{}: shard {shard} out of range, the set has {} shards",
                self.dir.display(),
                header.shard_count()
            )));
        }
        let range = header.shard_proteins(shard);
        if proteins.len() != range.len() {
            return Err(StoreError::InvalidInput(format!(
                "shard {shard} takes {} proteins (global {}..{}), got {}",
                range.len(),
                range.start,
                range.end,
                proteins.len()
            )));
        }
        for protein in proteins {
            validate_protein(protein)?;
        }
        let rows = shard_rows(header.level, proteins);
        if activations.len() != rows * header.d_model {
            return Err(StoreError::InvalidInput(format!(
                "shard {shard}: {} values for {rows} rows of width {}, expected {}",
                activations.len(),
                header.d_model,
                rows * header.d_model
            )));
        }
        let path = self.dir.join(shard_file_name(shard));
        let sha256 = write_shard_file(&path, header, range.start, proteins, activations)?;
        self.done.insert(
            shard,
            DoneShard {
                proteins: proteins.to_vec(),
                sha256: Some(sha256),
            },
        );
        Ok(())
    }

    /// Writes `proteins.tsv` and `manifest.json` with `complete = true`. `extra` (notes such as
    /// skipped ids or truncations) is merged into the header's `extra`. Fails, leaving the set
    /// incomplete, while any shard is missing.
    pub fn finish(self, extra: serde_json::Value) -> Result<(), StoreError> {
        let missing = self.missing_shards();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).map(|s| s.to_string()).collect();
            return Err(StoreError::Incomplete {
                dir: self.dir.clone(),
                reason: format!(
                    "{} of {} shards not written (shards {}{})",
                    missing.len(),
                    self.shard_count(),
                    shown.join(", "),
                    if missing.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ),
            });
        }
        remove_stray_tmp(&self.dir, &[SHARD_PREFIX, MANIFEST_FILE, PROTEINS_FILE])?;
        let mut records = Vec::with_capacity(self.header.total_proteins);
        let mut shards = Vec::with_capacity(self.done.len());
        let mut global_row = 0;
        for (&shard, done) in &self.done {
            let first_protein = self.header.shard_proteins(shard).start;
            let file = shard_file_name(shard);
            let sha256 = match &done.sha256 {
                Some(sha) => sha.clone(),
                None => sha256_file(&self.dir.join(&file))?,
            };
            let mut first_row = 0;
            for (offset, protein) in done.proteins.iter().enumerate() {
                let rows = shard_rows(self.header.level, std::slice::from_ref(protein));
                records.push(ProteinRecord {
                    index: first_protein + offset,
                    id: protein.id.clone(),
                    length: protein.length,
                    shard,
                    first_row,
                    rows,
                    global_first_row: global_row,
                });
                first_row += rows;
                global_row += rows;
            }
            shards.push(ShardRecord {
                file,
                rows: first_row,
                proteins: done.proteins.len(),
                first_protein,
                sha256,
            });
        }
        write_protein_table(&self.dir.join(PROTEINS_FILE), &records)?;
        let extra = merge_extra(&self.header.extra, extra);
        self.write_manifest(shards, true, extra)
    }

    fn write_manifest(
        &self,
        shards: Vec<ShardRecord>,
        complete: bool,
        extra: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut manifest = ActivationManifest::new(&self.header, shards, complete);
        manifest.extra = canonical_json(&extra);
        write_json_atomic(&self.dir.join(MANIFEST_FILE), &manifest)
    }
}

/// Ids go into a TSV file: no tabs or line breaks, not empty; every protein has residues.
fn validate_protein(protein: &ProteinEntry) -> Result<(), StoreError> {
    if protein.id.is_empty() || protein.id.contains(['\t', '\n', '\r']) {
        return Err(StoreError::InvalidInput(format!(
            "protein id {:?} is empty or holds a tab or line break",
            protein.id
        )));
    }
    if protein.length == 0 {
        return Err(StoreError::InvalidInput(format!(
            "protein {} has no residues",
            protein.id
        )));
    }
    Ok(())
}

//! Writing an activation set shard by shard: the shared shard-set writer with an
//! activation-set layout, plus `proteins.tsv`.

use std::path::Path;

use super::manifest::{
    inspect_shard_file, shard_file_name, shard_rows, write_shard_file, ActivationManifest,
    ProteinEntry, ShardRecord, MANIFEST_FILE, PROTEINS_FILE, SHARD_PREFIX,
};
use super::table::{write_protein_table, ProteinRecord};
use crate::fsio::write_json_atomic;
use crate::header::merge_extra;
use crate::shardset::{canonical_extra, Existing, ShardLayout, ShardSetWriter};
use crate::{SetHeader, StoreError};

/// Activation-set specifics of the shared shard-set writer.
pub(crate) struct ActivationLayout {
    header: SetHeader,
}

impl ShardLayout for ActivationLayout {
    /// The shard's proteins.
    type Shard = Vec<ProteinEntry>;
    type Record = ShardRecord;
    const FILE_PREFIXES: &'static [&'static str] = &[SHARD_PREFIX, MANIFEST_FILE, PROTEINS_FILE];
    const NOUN: &'static str = "shards";

    fn shard_count(&self) -> usize {
        self.header.shard_count()
    }

    fn file_name(shard: usize) -> String {
        shard_file_name(shard)
    }

    fn extra(&self) -> &serde_json::Value {
        &self.header.extra
    }

    fn read_existing(&self, dir: &Path) -> Result<Existing<ShardRecord>, StoreError> {
        let existing = ActivationManifest::read(dir)?;
        if let Some((field, existing_value, requested)) = existing
            .header()
            .first_difference(&self.header, existing.complete)
        {
            return Err(StoreError::HeaderMismatch {
                dir: dir.to_path_buf(),
                field,
                existing: existing_value,
                requested,
            });
        }
        Ok(Existing {
            complete: existing.complete,
            shards: existing.shards,
        })
    }

    fn inspect(&self, path: &Path, shard: usize) -> Result<Vec<ProteinEntry>, StoreError> {
        inspect_shard_file(path, &self.header, shard)
    }

    fn recorded_sha256(
        &self,
        record: &ShardRecord,
        file: &str,
        proteins: &Vec<ProteinEntry>,
    ) -> Option<String> {
        (record.file == file
            && record.rows == shard_rows(self.header.level, proteins)
            && record.proteins == proteins.len())
        .then(|| record.sha256.clone())
    }

    fn record(
        &self,
        index: usize,
        file: String,
        proteins: &Vec<ProteinEntry>,
        sha256: String,
    ) -> ShardRecord {
        ShardRecord {
            file,
            rows: shard_rows(self.header.level, proteins),
            proteins: proteins.len(),
            first_protein: self.header.shard_proteins(index).start,
            sha256,
        }
    }

    fn write_manifest(
        &self,
        path: &Path,
        shards: Vec<ShardRecord>,
        complete: bool,
        extra: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut manifest = ActivationManifest::new(&self.header, shards, complete);
        manifest.extra = extra;
        write_json_atomic(path, &manifest)
    }
}

/// Writes an activation set (see the crate docs).
///
/// Every file goes to a temporary name, is fsynced and renamed, so an interrupted run leaves
/// only whole shards under final names; `create_or_resume` on the same directory picks them up,
/// and the finished set is byte-identical to one written in a single run.
pub struct ActivationSetWriter {
    set: ShardSetWriter<ActivationLayout>,
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
        header.extra = canonical_extra(&header.extra)?;
        let set = ShardSetWriter::create_or_resume(dir, ActivationLayout { header })?;
        Ok(ActivationSetWriter { set })
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        self.set.dir()
    }

    /// The header the set is written with.
    pub fn header(&self) -> &SetHeader {
        &self.set.layout().header
    }

    /// Number of shards the finished set has.
    pub fn shard_count(&self) -> usize {
        self.header().shard_count()
    }

    /// True when shard `shard` is on disk, whole, and need not be computed again.
    pub fn is_shard_complete(&self, shard: usize) -> bool {
        self.set.is_shard_complete(shard)
    }

    /// Shards still to write, in order.
    pub fn missing_shards(&self) -> Vec<usize> {
        self.set.missing_shards()
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
        let header = self.header();
        if shard >= header.shard_count() {
            return Err(StoreError::InvalidInput(format!(
                "{}: shard {shard} out of range, the set has {} shards",
                self.dir().display(),
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
        let path = self.set.shard_path(shard);
        let sha256 = write_shard_file(&path, header, range.start, proteins, activations)?;
        self.set.shard_written(shard, proteins.to_vec(), sha256);
        Ok(())
    }

    /// Writes `proteins.tsv` and `manifest.json` with `complete = true`. `extra` (notes such as
    /// skipped ids or truncations) is merged into the header's `extra`. Fails, leaving the set
    /// incomplete, while any shard is missing.
    pub fn finish(self, extra: serde_json::Value) -> Result<(), StoreError> {
        let shards = self.set.finished_records()?;
        let header = self.header();
        let mut records = Vec::with_capacity(header.total_proteins);
        let mut global_row = 0;
        for (shard, proteins) in self.set.done() {
            let first_protein = header.shard_proteins(shard).start;
            let mut first_row = 0;
            for (offset, protein) in proteins.iter().enumerate() {
                let rows = shard_rows(header.level, std::slice::from_ref(protein));
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
        }
        write_protein_table(&self.dir().join(PROTEINS_FILE), &records)?;
        let extra = merge_extra(&header.extra, extra);
        self.set.write_manifest(shards, true, extra)
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

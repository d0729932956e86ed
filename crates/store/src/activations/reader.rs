//! Reading a finished activation set through memory maps.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::manifest::{ActivationManifest, MANIFEST_FILE, PROTEINS_FILE};
use super::table::{read_protein_table, ProteinRecord};
use crate::convert::{decode_into, u32_at};
use crate::st::{map_file, ParsedHeader};
use crate::{Level, SetHeader, StoreError};

/// One memory-mapped shard and where its tensors lie in the file.
struct MappedShard {
    path: PathBuf,
    map: memmap2::Mmap,
    /// Bulk row reads go through `pread` on this handle, not the map (see `read_rows_into`).
    file: std::fs::File,
    /// Global index of the shard's first row.
    first_row: usize,
    rows: usize,
    activations: Range<usize>,
    /// Residue level only.
    protein: Option<Range<usize>>,
    position: Option<Range<usize>>,
}

/// A finished activation set, opened for reading.
pub struct ActivationSet {
    dir: PathBuf,
    manifest: ActivationManifest,
    header: SetHeader,
    shards: Vec<MappedShard>,
    proteins: Vec<ProteinRecord>,
    rows: usize,
}

impl ActivationSet {
    /// Opens the set in `dir`. Refuses a set that is not finished (`complete = false`, a shard
    /// missing or shorter than its header says), and checks the shards and `proteins.tsv`
    /// against the manifest. Checksums are checked only by [`ActivationSet::verify_checksums`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if !dir.join(MANIFEST_FILE).exists() {
            return Err(StoreError::NotASet {
                dir: dir.to_path_buf(),
                message: format!("no {MANIFEST_FILE}; not an activation set"),
            });
        }
        let manifest = ActivationManifest::read(dir)?;
        let incomplete = |reason: String| StoreError::Incomplete {
            dir: dir.to_path_buf(),
            reason,
        };
        if !manifest.complete {
            return Err(incomplete(
                "manifest.json says complete = false".to_string(),
            ));
        }
        let header = manifest.header();
        if manifest.shards.len() != header.shard_count() {
            return Err(StoreError::Manifest {
                path: dir.join(MANIFEST_FILE),
                message: format!(
                    "lists {} shards, {} proteins at {} per shard need {}",
                    manifest.shards.len(),
                    header.total_proteins,
                    header.proteins_per_shard,
                    header.shard_count()
                ),
            });
        }
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
            let rows = record.rows;
            let activations = parsed.tensor(
                &path,
                "activations",
                header.dtype.safetensors_dtype(),
                &[rows, header.d_model],
            )?;
            let (protein, position) = match header.level {
                Level::Residue => (
                    Some(parsed.tensor(&path, "protein", safetensors::Dtype::U32, &[rows])?),
                    Some(parsed.tensor(&path, "position", safetensors::Dtype::U32, &[rows])?),
                ),
                Level::Protein => (None, None),
            };
            let file = std::fs::File::open(&path).map_err(|e| StoreError::io(&path, e))?;
            shards.push(MappedShard {
                path,
                map,
                file,
                first_row,
                rows,
                activations,
                protein,
                position,
            });
            first_row += rows;
        }
        let proteins = read_protein_table(&dir.join(PROTEINS_FILE))?;
        let set = ActivationSet {
            dir: dir.to_path_buf(),
            header,
            manifest,
            shards,
            proteins,
            rows: first_row,
        };
        set.check_protein_table()?;
        Ok(set)
    }

    /// Checks `proteins.tsv` against the manifest's shards and, at residue level, against each
    /// protein's first and last stored `protein`/`position` values.
    fn check_protein_table(&self) -> Result<(), StoreError> {
        let path = self.dir.join(PROTEINS_FILE);
        let bad = |index: usize, message: String| StoreError::ProteinTable {
            path: path.clone(),
            line: index + 2,
            message,
        };
        if self.proteins.len() != self.header.total_proteins {
            return Err(bad(
                self.proteins.len(),
                format!(
                    "{} proteins, the manifest says {}",
                    self.proteins.len(),
                    self.header.total_proteins
                ),
            ));
        }
        for (shard_index, record) in self.manifest.shards.iter().enumerate() {
            let mut next_row = 0;
            let range = record.first_protein..record.first_protein + record.proteins;
            for p in self.proteins.get(range).unwrap_or_default() {
                let expected_rows = match self.header.level {
                    Level::Residue => p.length,
                    Level::Protein => 1,
                };
                if p.shard != shard_index || p.first_row != next_row || p.rows != expected_rows {
                    return Err(bad(
                        p.index,
                        format!(
                            "protein {} at shard {} row {} ({} rows) does not follow the manifest",
                            p.id, p.shard, p.first_row, p.rows
                        ),
                    ));
                }
                next_row += p.rows;
            }
            if next_row != record.rows {
                return Err(bad(
                    record.first_protein,
                    format!(
                        "shard {shard_index} proteins cover {next_row} rows, manifest says {}",
                        record.rows
                    ),
                ));
            }
        }
        if self.header.level == Level::Residue {
            for p in &self.proteins {
                let last = p.global_first_row + p.rows - 1;
                let stored_first = self.stored_protein_position(p.global_first_row);
                let stored_last = self.stored_protein_position(last);
                if stored_first != Some((p.index, 0)) || stored_last != Some((p.index, p.rows - 1))
                {
                    return Err(StoreError::shard(
                        &self.shards[p.shard].path,
                        format!("stored protein/position columns disagree with {PROTEINS_FILE} for protein {}", p.id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The set's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Model, layer, site, level, dtype, sizes, notes.
    pub fn header(&self) -> &SetHeader {
        &self.header
    }

    /// The parsed manifest (shard list with checksums).
    pub fn manifest(&self) -> &ActivationManifest {
        &self.manifest
    }

    /// Rows in the whole set.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row width.
    pub fn d_model(&self) -> usize {
        self.header.d_model
    }

    /// Residue or protein rows.
    pub fn level(&self) -> Level {
        self.header.level
    }

    /// Every protein, in index order, with its rows.
    pub fn proteins(&self) -> &[ProteinRecord] {
        &self.proteins
    }

    /// Global rows of protein `protein_index` (panics when out of range, like slice indexing).
    pub fn protein_rows(&self, protein_index: usize) -> Range<usize> {
        let p = &self.proteins[protein_index];
        p.global_first_row..p.global_first_row + p.rows
    }

    /// Index of the protein that row `row` belongs to (panics when `row >= rows()`).
    pub fn row_protein(&self, row: usize) -> usize {
        assert!(
            row < self.rows,
            "row {row} out of range ({} rows)",
            self.rows
        );
        self.proteins
            .partition_point(|p| p.global_first_row + p.rows <= row)
    }

    /// 0-based residue position of row `row` at residue level; `None` at protein level.
    pub fn row_position(&self, row: usize) -> Option<usize> {
        match self.header.level {
            Level::Residue => {
                let p = &self.proteins[self.row_protein(row)];
                Some(row - p.global_first_row)
            }
            Level::Protein => None,
        }
    }

    /// The `(protein, position)` the shard itself stores for `row` (residue level only).
    pub fn stored_protein_position(&self, row: usize) -> Option<(usize, usize)> {
        let (shard, local) = self.locate(row);
        let shard = &self.shards[shard];
        let protein = u32_at(&shard.map[shard.protein.clone()?], local);
        let position = u32_at(&shard.map[shard.position.clone()?], local);
        Some((protein as usize, position as usize))
    }

    /// Shard index and row within it of global row `row`.
    fn locate(&self, row: usize) -> (usize, usize) {
        let shard = self.shards.partition_point(|s| s.first_row + s.rows <= row);
        (shard, row - self.shards[shard].first_row)
    }

    /// Replaces `out` with rows `start .. start + count` as row-major f32, across shards.
    pub fn read_rows(
        &self,
        start: usize,
        count: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), StoreError> {
        out.clear();
        out.resize(count * self.header.d_model, 0.0);
        self.read_rows_into(start, out)
    }

    /// Fills `out` (a multiple of `d_model` long) with the rows starting at `start`.
    pub fn read_rows_into(&self, start: usize, out: &mut [f32]) -> Result<(), StoreError> {
        let d = self.header.d_model;
        let count = out.len() / d;
        if count * d != out.len()
            || start
                .checked_add(count)
                .filter(|&end| end <= self.rows)
                .is_none()
        {
            return Err(StoreError::InvalidInput(format!(
                "{}: rows {start}..{} (buffer of {}) out of range, the set has {} rows of width {d}",
                self.dir.display(),
                start.saturating_add(count),
                out.len(),
                self.rows
            )));
        }
        let size = self.header.dtype.size();
        let mut row = start;
        let mut filled = 0;
        while filled < count {
            let (shard_index, local) = self.locate(row);
            let shard = &self.shards[shard_index];
            let take = (shard.rows - local).min(count - filled);
            // pread into a scratch buffer rather than copying from the map: mapped pages stay
            // resident once touched (a training epoch over an 8 GB set peaked at 8.4 GB RSS,
            // and madvise(DONTNEED) after each read still left 2.5 GB), while the page cache
            // that pread goes through is not counted against the process.
            let byte_start = shard.activations.start + local * d * size;
            let n = take * d * size;
            READ_BUFFER.with(|cell| -> Result<(), StoreError> {
                let mut buffer = cell.borrow_mut();
                buffer.resize(n, 0);
                std::os::unix::fs::FileExt::read_exact_at(
                    &shard.file,
                    &mut buffer,
                    byte_start as u64,
                )
                .map_err(|e| StoreError::io(&shard.path, e))?;
                decode_into(
                    self.header.dtype,
                    &buffer,
                    &mut out[filled * d..(filled + take) * d],
                );
                Ok(())
            })?;
            row += take;
            filled += take;
        }
        Ok(())
    }

    /// Recomputes every shard's sha256 and compares it with the manifest (reads the whole set).
    pub fn verify_checksums(&self) -> Result<(), StoreError> {
        for (shard, record) in self.shards.iter().zip(&self.manifest.shards) {
            let actual = crate::fsio::hex(&<sha2::Sha256 as sha2::Digest>::digest(&shard.map[..]));
            if actual != record.sha256 {
                return Err(StoreError::shard(
                    &shard.path,
                    format!(
                        "sha256 {actual} differs from the manifest's {}",
                        record.sha256
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `other` lines up with this set row by row: same level, same proteins (ids,
    /// lengths) in the same order, hence the same rows. Needed to pair a transcoder's source
    /// and target sets.
    pub fn check_aligned(&self, other: &ActivationSet) -> Result<(), StoreError> {
        let (a, b) = (self.dir.display(), other.dir.display());
        if self.header.level != other.header.level {
            return Err(StoreError::NotAligned(format!(
                "{a} is {} level, {b} is {} level",
                self.header.level, other.header.level
            )));
        }
        if self.proteins.len() != other.proteins.len() || self.rows != other.rows {
            return Err(StoreError::NotAligned(format!(
                "{a} has {} proteins / {} rows, {b} has {} / {}",
                self.proteins.len(),
                self.rows,
                other.proteins.len(),
                other.rows
            )));
        }
        for (p, q) in self.proteins.iter().zip(&other.proteins) {
            if p.id != q.id || p.length != q.length || p.rows != q.rows {
                return Err(StoreError::NotAligned(format!(
                    "protein {} is {} ({} residues) in {a} but {} ({} residues) in {b}",
                    p.index, p.id, p.length, q.id, q.length
                )));
            }
        }
        Ok(())
    }
}

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

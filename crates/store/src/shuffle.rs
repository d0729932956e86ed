//! A seeded stream of shuffled rows for training, over a subset of proteins, resumable exactly.
//!
//! Each epoch visits the subset's proteins in a seeded order and cuts the resulting row sequence
//! into windows of `buffer_rows` rows. A window is read into RAM with contiguous reads (whole
//! proteins, shard after shard), permuted with its own seeded stream, and handed out in batches.
//! So RAM holds one window, not the set, and rows from many proteins and shards mix in a batch.
//! Every row of the subset appears exactly once per epoch; the last batch of an epoch may be
//! short. The position is (epoch, batch); [`ShuffledRows::resume`] rebuilds the window from it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::split::{derived_rng, shuffle};
use crate::{ActivationSet, StoreError};

/// How a [`ShuffledRows`] stream draws rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleConfig {
    /// Rows per batch.
    pub batch_size: usize,
    /// Rows held and shuffled together (rounded up to a multiple of `batch_size`).
    pub buffer_rows: usize,
    /// Seed of the protein order and of every window's permutation.
    pub seed: u64,
}

/// Where a stream is, and what it was built from; serialise it with a training checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleState {
    /// The configuration the stream was built with.
    pub config: ShuffleConfig,
    /// Rows in the protein subset.
    pub subset_rows: usize,
    /// sha256 of the subset's protein indices, so a state is not applied to another subset.
    pub subset_sha256: String,
    /// Epoch of the next batch (0-based).
    pub epoch: u64,
    /// Index of the next batch within its epoch.
    pub batch_in_epoch: usize,
}

/// One batch: the same rows from every set of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Epoch the batch belongs to.
    pub epoch: u64,
    /// Index of the batch within its epoch.
    pub index_in_epoch: usize,
    /// True for the epoch's last batch (which may hold fewer than `batch_size` rows).
    pub last_in_epoch: bool,
    /// Global row index of every row, in batch order.
    pub row_ids: Vec<usize>,
    /// Per set, row-major `[rows, d]` f32 with that set's `d`.
    pub data: Vec<Vec<f32>>,
}

impl Batch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.row_ids.len()
    }
}

/// The rows of one window, unpermuted, and the permutation to hand them out in.
struct Window {
    index: usize,
    row_ids: Vec<usize>,
    data: Vec<Vec<f32>>,
    order: Vec<u32>,
}

/// The protein order of one epoch and cumulative rows along it.
struct EpochPlan {
    epoch: u64,
    proteins: Vec<usize>,
    /// `row_offsets[i]` = rows of `proteins[..i]`; one longer than `proteins`.
    row_offsets: Vec<usize>,
}

/// Shuffled batches from one or several row-aligned activation sets.
pub struct ShuffledRows<'a> {
    sets: Vec<&'a ActivationSet>,
    proteins: Vec<usize>,
    config: ShuffleConfig,
    window_rows: usize,
    subset_rows: usize,
    subset_sha256: String,
    epoch: u64,
    batch_in_epoch: usize,
    plan: Option<EpochPlan>,
    window: Option<Window>,
}

impl<'a> ShuffledRows<'a> {
    /// A stream over the rows of `proteins` (indices into the sets' protein tables, no
    /// duplicates) from `sets`, which must be aligned row by row (e.g. a transcoder's source and
    /// target). Starts at epoch 0, batch 0.
    pub fn new(
        sets: Vec<&'a ActivationSet>,
        proteins: Vec<usize>,
        config: ShuffleConfig,
    ) -> Result<Self, StoreError> {
        let first = *sets
            .first()
            .ok_or_else(|| StoreError::InvalidInput("row stream needs at least one set".into()))?;
        for other in &sets[1..] {
            first.check_aligned(other)?;
        }
        if config.batch_size == 0 {
            return Err(StoreError::InvalidInput(
                "batch_size must be positive".into(),
            ));
        }
        let n_proteins = first.proteins().len();
        let mut sorted = proteins.clone();
        sorted.sort_unstable();
        if let Some(&bad) = sorted.iter().find(|&&p| p >= n_proteins) {
            return Err(StoreError::InvalidInput(format!(
                "protein index {bad} out of range, {} has {n_proteins} proteins",
                first.dir().display()
            )));
        }
        if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(StoreError::InvalidInput(format!(
                "protein index {} listed twice in the row stream's subset",
                pair[0]
            )));
        }
        let subset_rows: usize = proteins.iter().map(|&p| first.proteins()[p].rows).sum();
        if subset_rows == 0 {
            return Err(StoreError::InvalidInput(
                "the protein subset has no rows".into(),
            ));
        }
        let window_rows = config
            .buffer_rows
            .max(config.batch_size)
            .next_multiple_of(config.batch_size);
        if window_rows > u32::MAX as usize {
            return Err(StoreError::InvalidInput(
                "buffer_rows must be below 2^32".into(),
            ));
        }
        let mut hasher = Sha256::new();
        for p in &proteins {
            hasher.update((*p as u64).to_le_bytes());
        }
        Ok(ShuffledRows {
            sets,
            proteins,
            config,
            window_rows,
            subset_rows,
            subset_sha256: crate::fsio::hex(&hasher.finalize()),
            epoch: 0,
            batch_in_epoch: 0,
            plan: None,
            window: None,
        })
    }

    /// Rows of the subset (one epoch).
    pub fn rows_per_epoch(&self) -> usize {
        self.subset_rows
    }

    /// Batches per epoch, the last possibly short.
    pub fn batches_per_epoch(&self) -> usize {
        self.subset_rows.div_ceil(self.config.batch_size)
    }

    /// Epoch of the next batch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The position of the next batch, to save with a checkpoint.
    pub fn state(&self) -> ShuffleState {
        ShuffleState {
            config: self.config,
            subset_rows: self.subset_rows,
            subset_sha256: self.subset_sha256.clone(),
            epoch: self.epoch,
            batch_in_epoch: self.batch_in_epoch,
        }
    }

    /// Moves to a saved position; the batches that follow are exactly those the saving stream
    /// would have produced. Fails when the state comes from another configuration or subset.
    pub fn resume(&mut self, state: &ShuffleState) -> Result<(), StoreError> {
        if state.config != self.config {
            return Err(StoreError::ResumeMismatch(format!(
                "saved with {:?}, this stream has {:?}",
                state.config, self.config
            )));
        }
        if state.subset_rows != self.subset_rows || state.subset_sha256 != self.subset_sha256 {
            return Err(StoreError::ResumeMismatch(format!(
                "saved over another protein subset ({} rows, sha256 {}); this one has {} rows, sha256 {}",
                state.subset_rows, state.subset_sha256, self.subset_rows, self.subset_sha256
            )));
        }
        if state.batch_in_epoch >= self.batches_per_epoch() {
            return Err(StoreError::ResumeMismatch(format!(
                "batch {} is past the epoch's {} batches",
                state.batch_in_epoch,
                self.batches_per_epoch()
            )));
        }
        self.epoch = state.epoch;
        self.batch_in_epoch = state.batch_in_epoch;
        self.plan = None;
        self.window = None;
        Ok(())
    }

    /// The next batch; the stream runs through epoch after epoch without end.
    pub fn next_batch(&mut self) -> Result<Batch, StoreError> {
        let batch_size = self.config.batch_size;
        let start = self.batch_in_epoch * batch_size;
        let take = batch_size.min(self.subset_rows - start);
        let window_index = start / self.window_rows;
        if self.plan.as_ref().map(|p| p.epoch) != Some(self.epoch) {
            self.plan = Some(self.plan_epoch());
            self.window = None;
        }
        if self.window.as_ref().map(|w| w.index) != Some(window_index) {
            self.window = Some(self.load_window(window_index)?);
        }
        let window = self.window.as_ref().expect("window loaded above");
        let offset = start - window_index * self.window_rows;
        let picked = &window.order[offset..offset + take];
        let row_ids = picked.iter().map(|&i| window.row_ids[i as usize]).collect();
        let data = self
            .sets
            .iter()
            .zip(&window.data)
            .map(|(set, rows)| {
                let d = set.d_model();
                let mut out = Vec::with_capacity(take * d);
                for &i in picked {
                    out.extend_from_slice(&rows[i as usize * d..(i as usize + 1) * d]);
                }
                out
            })
            .collect();
        let batch = Batch {
            epoch: self.epoch,
            index_in_epoch: self.batch_in_epoch,
            last_in_epoch: self.batch_in_epoch + 1 == self.batches_per_epoch(),
            row_ids,
            data,
        };
        self.batch_in_epoch += 1;
        if batch.last_in_epoch {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        Ok(batch)
    }

    fn plan_epoch(&self) -> EpochPlan {
        let mut proteins = self.proteins.clone();
        shuffle(
            &mut proteins,
            &mut derived_rng(self.config.seed, "epoch", self.epoch, 0),
        );
        let table = self.sets[0].proteins();
        let mut row_offsets = Vec::with_capacity(proteins.len() + 1);
        let mut total = 0;
        row_offsets.push(0);
        for &p in &proteins {
            total += table[p].rows;
            row_offsets.push(total);
        }
        EpochPlan {
            epoch: self.epoch,
            proteins,
            row_offsets,
        }
    }

    /// Reads window `index` of the current epoch: whole runs of protein rows, in epoch order.
    fn load_window(&self, index: usize) -> Result<Window, StoreError> {
        let plan = self.plan.as_ref().expect("plan made before the window");
        let start = index * self.window_rows;
        let end = (start + self.window_rows).min(self.subset_rows);
        let len = end - start;
        let first_set = self.sets[0];
        let mut row_ids = Vec::with_capacity(len);
        let mut data: Vec<Vec<f32>> = self
            .sets
            .iter()
            .map(|s| vec![0.0; len * s.d_model()])
            .collect();
        // First protein whose rows reach past `start`.
        let mut k = plan.row_offsets.partition_point(|&o| o <= start) - 1;
        let mut position = start;
        while position < end {
            let protein_rows = first_set.protein_rows(plan.proteins[k]);
            let skip = position - plan.row_offsets[k];
            let run = (protein_rows.len() - skip).min(end - position);
            let global = protein_rows.start + skip;
            let filled = position - start;
            for (set, rows) in self.sets.iter().zip(&mut data) {
                let d = set.d_model();
                set.read_rows_into(global, &mut rows[filled * d..(filled + run) * d])?;
            }
            row_ids.extend(global..global + run);
            position += run;
            k += 1;
        }
        let mut order: Vec<u32> = (0..len as u32).collect();
        shuffle(
            &mut order,
            &mut derived_rng(self.config.seed, "window", self.epoch, index as u64),
        );
        Ok(Window {
            index,
            row_ids,
            data,
            order,
        })
    }
}

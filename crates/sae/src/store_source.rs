//! Training batches from activation sets on disk: a [`BatchSource`] over the store's seeded
//! shuffling stream ([`ShuffledRows`]), whose position goes into the train state so a resumed
//! run reads exactly the batches the interrupted one would have read.
//!
//! ```no_run
//! use plmscope_sae::store_source::StoreBatches;
//! use plmscope_sae::trainer::{TrainConfig, Trainer};
//! use plmscope_store::{split_by_protein, ActivationSet, ShuffleConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let set = ActivationSet::open(std::path::Path::new("acts/layer4.resid_post.residue"))?;
//! let (train, _validation) = split_by_protein(set.proteins().len(), 0.05, 7);
//! let config = ShuffleConfig { batch_size: 4096, buffer_rows: 1 << 18, seed: 7 };
//! let mut batches = StoreBatches::new(&set, None, train, config)?.with_max_epochs(1);
//! let mut trainer = Trainer::new(TrainConfig::topk(set.d_model(), 32 * set.d_model(), 32))?;
//! trainer.train(&mut batches, 100, |_, _| {})?;
//! trainer.save_state(std::path::Path::new("out"), batches.position())?;
//! # Ok(()) }
//! ```

use plmscope_store::{ActivationSet, Level, ShuffleConfig, ShuffleState, ShuffledRows};

use crate::architecture::Kind;
use crate::dictionary::Dictionary;
use crate::error::{Result, SaeError};
use crate::metrics::{Evaluation, EvaluationAccumulator};
use crate::trainer::BatchSource;

/// Rows read per block when scanning a set for non-finite values.
const SCAN_BLOCK_ROWS: usize = 8192;

/// Batches of rows from an activation set (and, for transcoders, the same rows of an aligned
/// target set), in the store's seeded shuffled order.
///
/// Only full batches are served: the short last batch of an epoch is skipped (its rows come
/// back in other positions in later epochs), so every step sees the same number of rows, as
/// with [`crate::trainer::InMemoryBatches`]. Every batch is checked for NaN and infinities; an
/// error names the set, protein, residue and column.
pub struct StoreBatches<'a> {
    stream: ShuffledRows<'a>,
    source: &'a ActivationSet,
    target: Option<&'a ActivationSet>,
    batch_rows: usize,
    max_epochs: Option<u64>,
}

impl<'a> StoreBatches<'a> {
    /// A stream over the rows of `proteins` (indices into the set's protein table) of
    /// `source`, with `target`'s matching rows as targets when given. Refuses a target that
    /// does not line up with the source row by row, and a subset smaller than one batch.
    pub fn new(
        source: &'a ActivationSet,
        target: Option<&'a ActivationSet>,
        proteins: Vec<usize>,
        config: ShuffleConfig,
    ) -> Result<Self> {
        if let Some(target) = target {
            check_pair(source, target)?;
        }
        let sets: Vec<&ActivationSet> = std::iter::once(source).chain(target).collect();
        let stream = ShuffledRows::new(sets, proteins, config)?;
        if stream.rows_per_epoch() < config.batch_size {
            return Err(SaeError::Config(format!(
                "{}: the training proteins hold {} rows, fewer than one batch of {}; \
                 use a smaller batch or a larger set",
                source.dir().display(),
                stream.rows_per_epoch(),
                config.batch_size
            )));
        }
        Ok(StoreBatches {
            stream,
            source,
            target,
            batch_rows: config.batch_size,
            max_epochs: None,
        })
    }

    /// Stops after `epochs` passes instead of cycling forever.
    pub fn with_max_epochs(mut self, epochs: u64) -> Self {
        self.max_epochs = Some(epochs);
        self
    }

    /// Rows of the training subset (one epoch).
    pub fn rows_per_epoch(&self) -> usize {
        self.stream.rows_per_epoch()
    }

    /// Full batches, hence training steps, per epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        (self.stream.rows_per_epoch() / self.batch_rows) as u64
    }

    /// The position of the next batch, for [`crate::trainer::Trainer::save_state`].
    pub fn position(&self) -> serde_json::Value {
        serde_json::to_value(self.stream.state()).unwrap_or_default()
    }

    /// Continues from a position saved by [`StoreBatches::position`]; fails when it was saved
    /// with another batch size, seed, buffer or protein subset.
    pub fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let state: ShuffleState = serde_json::from_value(position.clone()).map_err(|e| {
            SaeError::Config(format!(
                "saved data position {position} is not a row-stream state: {e}"
            ))
        })?;
        self.stream.resume(&state)?;
        Ok(())
    }

    /// Names global row `row` of `set` for error messages: set, protein id and residue.
    fn describe_row(set: &ActivationSet, row: usize) -> String {
        let p = &set.proteins()[set.row_protein(row)];
        match set.level() {
            Level::Residue => format!(
                "{}: protein {} (index {}) residue {}",
                set.dir().display(),
                p.id,
                p.index,
                row - p.global_first_row + 1
            ),
            Level::Protein => format!(
                "{}: protein {} (index {})",
                set.dir().display(),
                p.id,
                p.index
            ),
        }
    }
}

impl BatchSource for StoreBatches<'_> {
    fn d_in(&self) -> usize {
        self.source.d_model()
    }
    fn d_out(&self) -> Option<usize> {
        self.target.map(ActivationSet::d_model)
    }
    fn next_batch(&mut self, out_x: &mut Vec<f32>, out_y: Option<&mut Vec<f32>>) -> Result<bool> {
        let batch = loop {
            if self.max_epochs.is_some_and(|m| self.stream.epoch() >= m) {
                return Ok(false);
            }
            let batch = self.stream.next_batch()?;
            if batch.rows() == self.batch_rows {
                break batch;
            }
        };
        let mut data = batch.data.into_iter();
        let x = data.next().unwrap_or_default();
        for (set, values) in std::iter::once(self.source)
            .chain(self.target)
            .zip(std::iter::once(&x).chain(data.as_slice()))
        {
            let d = set.d_model();
            if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
                return Err(SaeError::NonFinite {
                    what: Self::describe_row(set, batch.row_ids[pos / d]),
                    row: batch.row_ids[pos / d],
                    column: pos % d,
                    value: values[pos],
                });
            }
        }
        if let Some(out_y) = out_y {
            *out_y = data.next().ok_or_else(|| {
                SaeError::Config("targets asked of a source without a target set".into())
            })?;
        }
        *out_x = x;
        Ok(true)
    }
}

/// Checks that a transcoder's source and target sets can be paired: same proteins and rows in
/// the same order (the store's `check_aligned`), and the same model.
pub fn check_pair(source: &ActivationSet, target: &ActivationSet) -> Result<()> {
    let (a, b) = (source.dir().display(), target.dir().display());
    source.check_aligned(target).map_err(|e| {
        SaeError::Config(format!(
            "transcoder source {a} and target {b} do not line up row by row ({e}); \
             embed both sites from the same FASTA in one run"
        ))
    })?;
    let (m, n) = (&source.header().model, &target.header().model);
    if m.weights_sha256 != n.weights_sha256 {
        return Err(SaeError::Config(format!(
            "transcoder source {a} comes from model {} (weights {}), target {b} from {} ({}); \
             both sites must come from the same model",
            m.id, m.weights_sha256, n.id, n.weights_sha256
        )));
    }
    Ok(())
}

/// Reads every row of `set` once and fails on the first NaN or infinity, naming the protein,
/// residue and column. Run before writing anything, so bad data never leaves half a result.
pub fn check_finite(set: &ActivationSet) -> Result<()> {
    let d = set.d_model();
    let mut buffer = Vec::new();
    for start in (0..set.rows()).step_by(SCAN_BLOCK_ROWS) {
        let count = (set.rows() - start).min(SCAN_BLOCK_ROWS);
        set.read_rows(start, count, &mut buffer)?;
        if let Some(pos) = buffer.iter().position(|v| !v.is_finite()) {
            let row = start + pos / d;
            return Err(SaeError::NonFinite {
                what: StoreBatches::describe_row(set, row),
                row,
                column: pos % d,
                value: buffer[pos],
            });
        }
    }
    Ok(())
}

/// Reads the rows of `proteins` of `set` in blocks of at most `block_rows` rows (whole runs of
/// consecutive rows, in protein order) and hands each block to `visit`.
pub fn for_each_block(
    set: &ActivationSet,
    proteins: &[usize],
    block_rows: usize,
    mut visit: impl FnMut(&[f32], std::ops::Range<usize>) -> Result<()>,
) -> Result<()> {
    let mut buffer = Vec::new();
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &p in proteins {
        let rows = set.protein_rows(p);
        match runs.last_mut() {
            Some(last) if last.end == rows.start => last.end = rows.end,
            _ => runs.push(rows),
        }
    }
    for run in runs {
        let mut start = run.start;
        while start < run.end {
            let count = (run.end - start).min(block_rows.max(1));
            set.read_rows(start, count, &mut buffer)?;
            visit(&buffer, start..start + count)?;
            start += count;
        }
    }
    Ok(())
}

/// Evaluates `dict` on the rows of `proteins` of `source` (against the same rows of `target`
/// for transcoders), streaming blocks of `block_rows` rows; `on_block` sees the rows done.
pub fn evaluate_set(
    dict: &Dictionary,
    source: &ActivationSet,
    target: Option<&ActivationSet>,
    proteins: &[usize],
    block_rows: usize,
    mut on_block: impl FnMut(usize),
) -> Result<Evaluation> {
    check_dimensions(dict, source, target)?;
    let mut acc = EvaluationAccumulator::new(dict);
    let mut y = Vec::new();
    for_each_block(source, proteins, block_rows, |x, rows| {
        let y = match target {
            Some(t) => {
                t.read_rows(rows.start, rows.len(), &mut y)?;
                Some(&y[..])
            }
            None => None,
        };
        acc.add(dict, x, y)?;
        on_block(rows.len());
        Ok(())
    })?;
    Ok(acc.finish())
}

/// Up to about `max_rows` rows of `proteins`, taken from proteins spread evenly over the list
/// (whole proteins), as (inputs, targets): a probe for [`crate::metrics::check_fvu`].
pub fn probe_sample(
    source: &ActivationSet,
    target: Option<&ActivationSet>,
    proteins: &[usize],
    max_rows: usize,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let total: usize = proteins.iter().map(|&p| source.proteins()[p].rows).sum();
    let stride = total.div_ceil(max_rows.max(1)).max(1);
    let picked: Vec<usize> = proteins.iter().copied().step_by(stride).collect();
    let mut x = Vec::new();
    let mut y = target.map(|_| Vec::new());
    let mut buffer = Vec::new();
    for_each_block(source, &picked, SCAN_BLOCK_ROWS, |block, rows| {
        x.extend_from_slice(block);
        if let (Some(t), Some(y)) = (target, y.as_mut()) {
            t.read_rows(rows.start, rows.len(), &mut buffer)?;
            y.extend_from_slice(&buffer);
        }
        Ok(())
    })?;
    Ok((x, y))
}

/// Checks that a dictionary's input (and output) width matches the sets it is used on.
pub fn check_dimensions(
    dict: &Dictionary,
    source: &ActivationSet,
    target: Option<&ActivationSet>,
) -> Result<()> {
    if dict.d_in != source.d_model() {
        return Err(SaeError::Config(format!(
            "the dictionary takes rows of width d_in = {}, but {} holds rows of width {} \
             (another model size?)",
            dict.d_in,
            source.dir().display(),
            source.d_model()
        )));
    }
    match (dict.kind, target) {
        (Kind::Sae, _) => Ok(()),
        (_, None) => Err(SaeError::Config(format!(
            "the dictionary is a {:?} transcoder: give the target activations it predicts too",
            dict.kind
        ))),
        (_, Some(t)) if t.d_model() != dict.d_out => Err(SaeError::Config(format!(
            "the transcoder predicts rows of width d_out = {}, but target {} holds width {}",
            dict.d_out,
            t.dir().display(),
            t.d_model()
        ))),
        (_, Some(t)) => check_pair(source, t),
    }
}

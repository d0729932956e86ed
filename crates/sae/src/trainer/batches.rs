//! Where training batches come from: a small trait (the activation store implements it later)
//! and an in-memory, seeded, shuffling implementation.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{check_rows, Result, SaeError};

/// A stream of training batches: rows of inputs `x` and, for transcoders, targets `y`.
pub trait BatchSource {
    /// Width of an input row.
    fn d_in(&self) -> usize;
    /// Width of a target row, when the source carries targets.
    fn d_out(&self) -> Option<usize>;
    /// Fills `out_x` (and `out_y` when given) with the next batch, replacing their contents;
    /// returns false when the stream is exhausted.
    fn next_batch(&mut self, out_x: &mut Vec<f32>, out_y: Option<&mut Vec<f32>>) -> Result<bool>;
}

/// Position of an [`InMemoryBatches`] stream, saved with the train state for exact resumption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: u64,
    pub cursor: usize,
}

/// Rows held in memory, served in batches in a seeded random order reshuffled every epoch.
pub struct InMemoryBatches {
    x: Vec<f32>,
    y: Option<Vec<f32>>,
    d_in: usize,
    d_out: usize,
    rows: usize,
    batch_rows: usize,
    seed: u64,
    max_epochs: Option<u64>,
    order: Vec<usize>,
    position: StreamPosition,
}

impl InMemoryBatches {
    /// Serves `x` ([rows, d_in]) and optional `y` ([rows, d_out]) in batches of `batch_rows`.
    /// Incomplete final batches are skipped so every step sees the same number of rows.
    pub fn new(
        x: Vec<f32>,
        d_in: usize,
        y: Option<(Vec<f32>, usize)>,
        batch_rows: usize,
        seed: u64,
    ) -> Result<Self> {
        let rows = check_rows("in-memory batches x", &x, d_in)?;
        let (y, d_out) = match y {
            Some((y, d_out)) => {
                let y_rows = check_rows("in-memory batches y", &y, d_out)?;
                if y_rows != rows {
                    return Err(SaeError::Config(format!(
                        "x has {rows} rows but y has {y_rows}"
                    )));
                }
                (Some(y), d_out)
            }
            None => (None, d_in),
        };
        if batch_rows == 0 || batch_rows > rows {
            return Err(SaeError::Config(format!(
                "batch of {batch_rows} rows from a set of {rows} rows"
            )));
        }
        let mut s = InMemoryBatches {
            x,
            y,
            d_in,
            d_out,
            rows,
            batch_rows,
            seed,
            max_epochs: None,
            order: Vec::new(),
            position: StreamPosition {
                epoch: 0,
                cursor: 0,
            },
        };
        s.shuffle();
        Ok(s)
    }

    /// Stops after `epochs` passes instead of cycling forever.
    pub fn with_max_epochs(mut self, epochs: u64) -> Self {
        self.max_epochs = Some(epochs);
        self
    }

    pub fn position(&self) -> StreamPosition {
        self.position
    }

    /// Continues from a saved position (same data, batch size and seed).
    pub fn seek(&mut self, position: StreamPosition) {
        self.position = position;
        self.shuffle();
    }

    fn shuffle(&mut self) {
        // One generator per epoch, so seeking never replays earlier epochs.
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ self.position.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        self.order = (0..self.rows).collect();
        self.order.shuffle(&mut rng);
    }
}

impl BatchSource for InMemoryBatches {
    fn d_in(&self) -> usize {
        self.d_in
    }
    fn d_out(&self) -> Option<usize> {
        self.y.as_ref().map(|_| self.d_out)
    }
    fn next_batch(&mut self, out_x: &mut Vec<f32>, out_y: Option<&mut Vec<f32>>) -> Result<bool> {
        if self.position.cursor + self.batch_rows > self.rows {
            self.position = StreamPosition {
                epoch: self.position.epoch + 1,
                cursor: 0,
            };
            self.shuffle();
        }
        if self.max_epochs.is_some_and(|m| self.position.epoch >= m) {
            return Ok(false);
        }
        let picked = &self.order[self.position.cursor..self.position.cursor + self.batch_rows];
        out_x.clear();
        for &r in picked {
            out_x.extend_from_slice(&self.x[r * self.d_in..(r + 1) * self.d_in]);
        }
        if let Some(out_y) = out_y {
            let y = self
                .y
                .as_ref()
                .ok_or_else(|| SaeError::Config("targets asked of a source without y".into()))?;
            out_y.clear();
            for &r in picked {
                out_y.extend_from_slice(&y[r * self.d_out..(r + 1) * self.d_out]);
            }
        }
        self.position.cursor += self.batch_rows;
        Ok(true)
    }
}

//! Sparse (row, latent, value) entries of a training batch, built row by row in parallel.

use rayon::prelude::*;

/// Sparse entries of a batch, row by row.
#[derive(Default)]
pub(crate) struct Csr {
    pub row_ptr: Vec<usize>,
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl Csr {
    /// Builds rows in parallel; `fill(row, scratch, idx, val)` appends row `row`'s entries.
    pub(crate) fn build(
        rows: usize,
        fill: impl Fn(usize, &mut Vec<f32>, &mut Vec<u32>, &mut Vec<f32>) + Sync,
    ) -> Csr {
        let per_row: Vec<(Vec<u32>, Vec<f32>)> = (0..rows)
            .into_par_iter()
            .map_init(Vec::new, |scratch, r| {
                let (mut i, mut v) = (Vec::new(), Vec::new());
                fill(r, scratch, &mut i, &mut v);
                (i, v)
            })
            .collect();
        let mut csr = Csr {
            row_ptr: Vec::with_capacity(rows + 1),
            ..Default::default()
        };
        csr.row_ptr.push(0);
        for (i, v) in per_row {
            csr.idx.extend_from_slice(&i);
            csr.val.extend_from_slice(&v);
            csr.row_ptr.push(csr.idx.len());
        }
        csr
    }
    pub(crate) fn entry_rows(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.idx.len());
        for r in 0..self.row_ptr.len() - 1 {
            out.extend(std::iter::repeat_n(
                r as u32,
                self.row_ptr[r + 1] - self.row_ptr[r],
            ));
        }
        out
    }
}

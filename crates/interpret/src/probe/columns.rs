//! The standardised units of a probe, dense or sparse, and the few column operations the
//! solver needs.

use super::solver::LogisticFit;

/// The units of a probe, column by column, standardised with the training rows' statistics.
///
/// Dense columns are centred and scaled (`(x − μ)/σ`, scikit-learn's `StandardScaler`).
/// Sparse columns (code sets, where a unit is zero on most rows) are only scaled (`x/σ`) so
/// that they stay sparse: the intercept is unpenalised, so a fit on `x/σ` has the same
/// coefficients and the same linear predictor as one on `(x − μ)/σ`, with the intercept
/// shifted by `Σ β_j μ_j/σ_j` ([`Columns::centred_intercept`] undoes the shift).
#[derive(Clone, Debug)]
pub struct Columns {
    pub rows: usize,
    pub cols: usize,
    storage: Storage,
    /// `μ_j/σ_j` of each sparse column (zero for dense ones, which are centred).
    shift: Vec<f64>,
}

#[derive(Clone, Debug)]
enum Storage {
    /// Column `j` is `data[j*rows .. (j+1)*rows]`.
    Dense(Vec<f32>),
    /// Column `j`'s nonzero rows and values are `row/value[col_ptr[j] .. col_ptr[j+1]]`.
    Sparse {
        col_ptr: Vec<usize>,
        row: Vec<u32>,
        value: Vec<f32>,
    },
}

impl Columns {
    /// Centred columns, column-major.
    pub fn dense(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * cols);
        Columns {
            rows,
            cols,
            storage: Storage::Dense(data),
            shift: vec![0.0; cols],
        }
    }

    /// Scaled, uncentred sparse columns (CSC) with each column's `μ/σ` in `shift`.
    pub fn sparse(
        rows: usize,
        col_ptr: Vec<usize>,
        row: Vec<u32>,
        value: Vec<f32>,
        shift: Vec<f64>,
    ) -> Self {
        let cols = col_ptr.len() - 1;
        assert_eq!(shift.len(), cols);
        assert_eq!(row.len(), value.len());
        Columns {
            rows,
            cols,
            storage: Storage::Sparse {
                col_ptr,
                row,
                value,
            },
            shift,
        }
    }

    /// Column `j` written out densely.
    pub fn column(&self, j: usize) -> Vec<f64> {
        match &self.storage {
            Storage::Dense(data) => data[j * self.rows..(j + 1) * self.rows]
                .iter()
                .map(|&v| v as f64)
                .collect(),
            Storage::Sparse {
                col_ptr,
                row,
                value,
            } => {
                let mut out = vec![0.0; self.rows];
                for k in col_ptr[j]..col_ptr[j + 1] {
                    out[row[k] as usize] = value[k] as f64;
                }
                out
            }
        }
    }

    /// Column `j`'s stored entries as (row, value): every row when dense.
    pub fn entries(&self, j: usize) -> Box<dyn Iterator<Item = (usize, f32)> + '_> {
        match &self.storage {
            Storage::Dense(data) => Box::new(
                data[j * self.rows..(j + 1) * self.rows]
                    .iter()
                    .copied()
                    .enumerate(),
            ),
            Storage::Sparse {
                col_ptr,
                row,
                value,
            } => Box::new(
                row[col_ptr[j]..col_ptr[j + 1]]
                    .iter()
                    .zip(&value[col_ptr[j]..col_ptr[j + 1]])
                    .map(|(&r, &v)| (r as usize, v)),
            ),
        }
    }

    /// Rows where column `j` is stored as zero because the storage is sparse.
    pub fn implicit_zeros(&self, j: usize) -> usize {
        match &self.storage {
            Storage::Dense(_) => 0,
            Storage::Sparse { col_ptr, .. } => self.rows - (col_ptr[j + 1] - col_ptr[j]),
        }
    }

    /// `Σ_i a_i b_i x_ij`.
    pub(super) fn dot2(&self, j: usize, a: &[f64], b: &[f64]) -> f64 {
        match &self.storage {
            Storage::Dense(data) => data[j * self.rows..(j + 1) * self.rows]
                .iter()
                .zip(a)
                .zip(b)
                .map(|((&v, &a), &b)| a * b * v as f64)
                .sum(),
            Storage::Sparse {
                col_ptr,
                row,
                value,
            } => {
                let (lo, hi) = (col_ptr[j], col_ptr[j + 1]);
                row[lo..hi]
                    .iter()
                    .zip(&value[lo..hi])
                    .map(|(&r, &v)| a[r as usize] * b[r as usize] * v as f64)
                    .sum()
            }
        }
    }

    /// `Σ_i w_i x_ij²`.
    pub(super) fn weighted_square(&self, j: usize, w: &[f64]) -> f64 {
        match &self.storage {
            Storage::Dense(data) => data[j * self.rows..(j + 1) * self.rows]
                .iter()
                .zip(w)
                .map(|(&v, &w)| w * (v as f64) * (v as f64))
                .sum(),
            Storage::Sparse {
                col_ptr,
                row,
                value,
            } => {
                let (lo, hi) = (col_ptr[j], col_ptr[j + 1]);
                row[lo..hi]
                    .iter()
                    .zip(&value[lo..hi])
                    .map(|(&r, &v)| w[r as usize] * (v as f64) * (v as f64))
                    .sum()
            }
        }
    }

    /// `y += a · x_j`.
    pub(super) fn axpy(&self, j: usize, a: f64, y: &mut [f64]) {
        match &self.storage {
            Storage::Dense(data) => {
                for (y, &v) in y.iter_mut().zip(&data[j * self.rows..(j + 1) * self.rows]) {
                    *y += a * v as f64;
                }
            }
            Storage::Sparse {
                col_ptr,
                row,
                value,
            } => {
                let (lo, hi) = (col_ptr[j], col_ptr[j + 1]);
                for (&r, &v) in row[lo..hi].iter().zip(&value[lo..hi]) {
                    y[r as usize] += a * v as f64;
                }
            }
        }
    }

    /// Whether the inner solver may work on the Gram matrix of the active columns: dense
    /// columns (each coordinate step over the rows costs O(rows), a step on the Gram matrix
    /// O(active)) whose weighted copy stays under 512 MB.
    pub(super) fn gram_fits(&self) -> bool {
        matches!(self.storage, Storage::Dense(_))
            && (self.cols + 1).saturating_mul(self.rows).saturating_mul(8) < 512 << 20
    }

    /// The intercept a fit on centred columns would have (see the type's doc).
    pub fn centred_intercept(&self, fit: &LogisticFit) -> f64 {
        fit.intercept
            + fit
                .coef
                .iter()
                .zip(&self.shift)
                .map(|(b, s)| b * s)
                .sum::<f64>()
    }
}

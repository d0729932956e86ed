//! Sparse rows built in parallel into [`CsrRows`], the one owned CSR type (the store's, which a
//! code shard holds): the encoder's codes and the trainer's selections are built here.

use plmscope_store::CsrRows;
use rayon::prelude::*;

/// Appends `rows` rows to `csr`, built in parallel and kept in row order:
/// `fill(row, scratch, features, values)` pushes row `row`'s entries onto the two empty
/// vectors; `scratch` is a buffer reused within a thread.
pub(crate) fn extend_rows(
    csr: &mut CsrRows,
    rows: usize,
    fill: impl Fn(usize, &mut Vec<f32>, &mut Vec<u32>, &mut Vec<f32>) + Sync,
) {
    let per_row: Vec<(Vec<u32>, Vec<f32>)> = (0..rows)
        .into_par_iter()
        .map_init(Vec::new, |scratch, r| {
            let (mut features, mut values) = (Vec::new(), Vec::new());
            fill(r, scratch, &mut features, &mut values);
            (features, values)
        })
        .collect();
    let nnz: usize = per_row.iter().map(|(f, _)| f.len()).sum();
    csr.row_ptr.reserve(rows);
    csr.feature.reserve(nnz);
    csr.value.reserve(nnz);
    for (features, values) in per_row {
        csr.push_row(&features, &values);
    }
}

/// `rows` rows built in parallel, as [`extend_rows`] builds them.
pub(crate) fn build_rows(
    rows: usize,
    fill: impl Fn(usize, &mut Vec<f32>, &mut Vec<u32>, &mut Vec<f32>) + Sync,
) -> CsrRows {
    let mut csr = CsrRows::new();
    extend_rows(&mut csr, rows, fill);
    csr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows must come back in row order whatever order the threads finish in (a mutation that
    /// appends as rows complete fails here), with empty rows kept.
    #[test]
    fn rows_keep_their_order_and_empty_rows() {
        let fill = |r: usize, _: &mut Vec<f32>, f: &mut Vec<u32>, v: &mut Vec<f32>| {
            for j in 0..(r % 3) as u32 {
                f.push(j * 10 + r as u32);
                v.push(r as f32);
            }
        };
        let csr = build_rows(1000, fill);
        let mut want = CsrRows::new();
        for r in 0..1000 {
            let (mut f, mut v) = (Vec::new(), Vec::new());
            fill(r, &mut Vec::new(), &mut f, &mut v);
            want.push_row(&f, &v);
        }
        assert_eq!(csr, want);
        let mut more = build_rows(2, fill);
        extend_rows(&mut more, 3, fill);
        assert_eq!(more.rows(), 5);
        // Row 4 is the extension's row 2: `fill` numbers rows from 0 within each call.
        assert_eq!(more.row(4), (&[2u32, 12][..], &[2.0f32, 2.0][..]));
    }
}

//! Hot loops: the dense matmul behind the encoder, and per-row TopK selection.
//!
//! The encoder matmul `[rows, d_in] × [d_in, d_sae]` dominates both inference and (with the
//! sparse backward) training: ~6.6 MFLOP per row at d_in = 320, 32× expansion. It runs on `gemm`
//! with the `x86-v4` feature, measured at 236–306 GFLOP/s on 2 AVX-512 cores against 84–146
//! without it (ARCHITECTURE.md, "Compute"); `examples/bench_train.rs` measures the whole step.

/// Row-major matrix operand of `matmul`, optionally read transposed.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    /// Number of columns of the stored (untransposed) matrix.
    pub stored_cols: usize,
    /// Read the stored matrix transposed.
    pub transposed: bool,
}

impl<'a> Operand<'a> {
    pub fn plain(data: &'a [f32], cols: usize) -> Self {
        Operand {
            data,
            stored_cols: cols,
            transposed: false,
        }
    }
    pub fn transposed(data: &'a [f32], stored_cols: usize) -> Self {
        Operand {
            data,
            stored_cols,
            transposed: true,
        }
    }
    /// (row stride, column stride) of the logical (possibly transposed) matrix.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.stored_cols as isize)
        } else {
            (self.stored_cols as isize, 1)
        }
    }
}

/// `out[m, n] = (accumulate ? out : 0) + a[m, kk] × b[kk, n]`, all row-major.
pub(crate) fn matmul(
    out: &mut [f32],
    a: Operand,
    b: Operand,
    m: usize,
    kk: usize,
    n: usize,
    accumulate: bool,
) {
    assert_eq!(out.len(), m * n, "matmul output size");
    assert_eq!(a.data.len(), m * kk, "matmul lhs size");
    assert_eq!(b.data.len(), kk * n, "matmul rhs size");
    if m == 0 || n == 0 {
        return;
    }
    if kk == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    // Small products run on one thread: rayon's fork/join costs more than it saves there.
    let flops = m * n * kk;
    let parallelism = if flops >= 1 << 20 && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // SAFETY: the asserts above bound every index gemm computes from (m, kk, n) and the
    // strides, which describe exactly the row-major (or transposed) layouts of these slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            kk,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Appends to `out_idx`/`out_val` the positive entries among the `k` largest of `row` (restricted
/// to `subset` when given), in increasing index order. Ties at the k-th value go to lower indices.
pub(crate) fn top_k_positive(
    row: &[f32],
    subset: Option<&[u32]>,
    k: usize,
    scratch: &mut Vec<f32>,
    out_idx: &mut Vec<u32>,
    out_val: &mut Vec<f32>,
) {
    match subset {
        None => top_k_streaming(row, k, out_idx, out_val),
        Some(s) => top_k_subset(row, s, k, scratch, out_idx, out_val),
    }
}

/// Whole-row TopK with a k-entry min-heap and a running threshold. Blocks of 16 values none of
/// which beats the threshold are skipped with one vectorised comparison, so after the first few
/// hundred values almost every block costs one compare. Measured with `examples/bench_train.rs`
/// (4096 × 10240, k = 32, 2 heavily shared cores): selection + decode fell from 292 ms to 154 ms
/// per step against a copy + `select_nth_unstable` per row.
fn top_k_streaming(row: &[f32], k: usize, out_idx: &mut Vec<u32>, out_val: &mut Vec<f32>) {
    let k = k.min(row.len());
    if k == 0 {
        return;
    }
    // Heap ordered so the root is the entry to evict: smallest value, and among equal values the
    // highest index (ties go to lower indices). Only positive values can win.
    let mut heap: Vec<(f32, u32)> = Vec::with_capacity(k);
    let mut threshold = 0.0f32;
    let evict_first = |a: (f32, u32), b: (f32, u32)| a.0 < b.0 || (a.0 == b.0 && a.1 > b.1);
    let offer = |heap: &mut Vec<(f32, u32)>, threshold: &mut f32, v: f32, j: u32| {
        if v.partial_cmp(threshold) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        if heap.len() < k {
            heap.push((v, j));
            let last = heap.len() - 1;
            sift_up(heap, last, &evict_first);
            if heap.len() == k {
                *threshold = heap[0].0.max(0.0);
            }
        } else {
            heap[0] = (v, j);
            sift_down(heap, 0, &evict_first);
            *threshold = heap[0].0;
        }
    };
    const BLOCK: usize = 16;
    let mut chunks = row.chunks_exact(BLOCK);
    let mut base = 0u32;
    for chunk in &mut chunks {
        // A non-short-circuiting OR of comparisons vectorises; `any` or a float max fold does not.
        if chunk.iter().fold(false, |any, &v| any | (v > threshold)) {
            for (o, &v) in chunk.iter().enumerate() {
                offer(&mut heap, &mut threshold, v, base + o as u32);
            }
        }
        base += BLOCK as u32;
    }
    for (o, &v) in chunks.remainder().iter().enumerate() {
        offer(&mut heap, &mut threshold, v, base + o as u32);
    }
    heap.sort_unstable_by_key(|&(_, j)| j);
    for (v, j) in heap {
        out_idx.push(j);
        out_val.push(v);
    }
}

fn sift_up(heap: &mut [(f32, u32)], mut i: usize, first: &impl Fn((f32, u32), (f32, u32)) -> bool) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if first(heap[i], heap[parent]) {
            heap.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

fn sift_down(
    heap: &mut [(f32, u32)],
    mut i: usize,
    first: &impl Fn((f32, u32), (f32, u32)) -> bool,
) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut best = i;
        if l < heap.len() && first(heap[l], heap[best]) {
            best = l;
        }
        if r < heap.len() && first(heap[r], heap[best]) {
            best = r;
        }
        if best == i {
            return;
        }
        heap.swap(i, best);
        i = best;
    }
}

/// TopK over a subset of indices (AuxK over dead latents): partial selection on a copy.
fn top_k_subset(
    row: &[f32],
    subset: &[u32],
    k: usize,
    scratch: &mut Vec<f32>,
    out_idx: &mut Vec<u32>,
    out_val: &mut Vec<f32>,
) {
    scratch.clear();
    scratch.extend(subset.iter().map(|&j| row[j as usize]));
    let n = scratch.len();
    if k == 0 || n == 0 {
        return;
    }
    let kth = if k >= n {
        f32::NEG_INFINITY
    } else {
        let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        *kth
    };
    // Entries strictly above the k-th value all win; ties at it fill the remaining places.
    let above = if k >= n {
        n
    } else {
        scratch.iter().filter(|&&v| v > kth).count()
    };
    let mut ties_left = k.min(n) - above;
    for &j in subset {
        let v = row[j as usize];
        let wins = v > kth || (v == kth && ties_left > 0);
        if v == kth && wins {
            ties_left -= 1;
        }
        if wins && v > 0.0 {
            out_idx.push(j);
            out_val.push(v);
        }
    }
}

/// Dot product written so LLVM vectorises it (eight independent accumulators).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (rem_a, rem_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in rem_a.iter().zip(rem_b) {
        sum += x * y;
    }
    sum
}

/// `y += alpha * x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_picks_largest_positive_in_index_order_with_ties_to_lower_index() {
        let row = [0.5, 3.0, -1.0, 3.0, 2.0, 3.0, 0.0];
        let (mut s, mut i, mut v) = (Vec::new(), Vec::new(), Vec::new());
        top_k_positive(&row, None, 2, &mut s, &mut i, &mut v);
        assert_eq!(i, vec![1, 3]);
        assert_eq!(v, vec![3.0, 3.0]);
        i.clear();
        v.clear();
        // k larger than the positives: non-positive winners are dropped.
        top_k_positive(&row, None, 7, &mut s, &mut i, &mut v);
        assert_eq!(i, vec![0, 1, 3, 4, 5]);
        i.clear();
        v.clear();
        top_k_positive(&row, Some(&[0, 2, 4]), 1, &mut s, &mut i, &mut v);
        assert_eq!((i, v), (vec![4], vec![2.0]));
    }

    #[test]
    fn streaming_top_k_agrees_with_partial_selection_on_random_rows() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Coarse values so ties occur.
            ((state >> 33) % 41) as f32 - 20.0
        };
        let all: Vec<u32> = (0..203).collect();
        for k in [1, 5, 32, 203, 300] {
            for _ in 0..20 {
                let row: Vec<f32> = (0..203).map(|_| next()).collect();
                let (mut s, mut i1, mut v1, mut i2, mut v2) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                top_k_positive(&row, None, k, &mut s, &mut i1, &mut v1);
                top_k_positive(&row, Some(&all), k, &mut s, &mut i2, &mut v2);
                assert_eq!((i1, v1), (i2, v2), "k = {k}");
            }
        }
    }

    #[test]
    fn matmul_matches_naive_in_all_layouts() {
        let (m, kk, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * kk).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..kk * n).map(|i| (i as f32).sin()).collect();
        let mut naive = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                naive[i * n + j] = (0..kk).map(|t| a[i * kk + t] * b[t * n + j]).sum();
            }
        }
        let mut out = vec![1.0; m * n];
        matmul(
            &mut out,
            Operand::plain(&a, kk),
            Operand::plain(&b, n),
            m,
            kk,
            n,
            false,
        );
        out.iter()
            .zip(&naive)
            .for_each(|(x, y)| assert!((x - y).abs() < 1e-5));
        // b stored transposed as [n, kk]
        let mut bt = vec![0.0; kk * n];
        for t in 0..kk {
            for j in 0..n {
                bt[j * kk + t] = b[t * n + j];
            }
        }
        let mut at = vec![0.0; m * kk];
        for i in 0..m {
            for t in 0..kk {
                at[t * m + i] = a[i * kk + t];
            }
        }
        let mut out2 = vec![1.0; m * n];
        matmul(
            &mut out2,
            Operand::transposed(&at, m),
            Operand::transposed(&bt, kk),
            m,
            kk,
            n,
            true,
        );
        out2.iter()
            .zip(&naive)
            .for_each(|(x, y)| assert!((x - 1.0 - y).abs() < 1e-5));
    }
}

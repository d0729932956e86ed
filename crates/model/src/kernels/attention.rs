//! Fused multi-head self-attention over packed sequences: no padding, one task per
//! (sequence, head) run in parallel, each with a single-threaded gemm for QKᵀ and PV and the
//! T×T score block kept in a per-thread scratch buffer (ARCHITECTURE.md "Compute": candle's
//! unfused attention, 160 small matmuls in a row and a 57 MB score tensor, was half its time).

use super::matmul::matmul_into;
use super::softmax_rows;
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

/// Layout of the packed `[tokens, 3·hidden]` QKV buffer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub hidden: usize,
    pub heads: usize,
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: every task writes a disjoint (rows of one sequence) × (columns of one head) block.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// A method, so closures capture the whole Send wrapper rather than its raw field.
    fn get(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `context[t, h·dh..(h+1)·dh] = softmax(q_h k_hᵀ) v_h` for every sequence (token ranges given
/// by `offsets`, length n+1) and head. q must already be scaled and rotated.
pub fn attend(qkv: &[f32], offsets: &[usize], shape: AttentionShape, context: &mut [f32]) {
    let d = shape.hidden;
    let dh = d / shape.heads;
    let tokens = *offsets.last().unwrap_or(&0);
    assert_eq!(qkv.len(), tokens * 3 * d);
    assert_eq!(context.len(), tokens * d);
    let mut tasks: Vec<(usize, usize)> = (0..offsets.len() - 1)
        .flat_map(|s| (0..shape.heads).map(move |h| (s, h)))
        .collect();
    // Longest sequences first, so the tail of the parallel loop is short tasks.
    tasks.sort_by_key(|&(s, _)| std::cmp::Reverse(offsets[s + 1] - offsets[s]));
    let ctx = SendPtr(context.as_mut_ptr());
    let qkv_ptr = qkv.as_ptr() as usize;
    tasks.par_iter().for_each(|&(s, h)| {
        let start = offsets[s];
        let t = offsets[s + 1] - start;
        let base = qkv_ptr as *const f32;
        SCORES.with(|cell| {
            let mut scores = cell.borrow_mut();
            scores.resize(t * t, 0.0);
            // SAFETY: q, k, v of this sequence and head lie inside qkv (rows start..start+t,
            // row stride 3d, columns within the head); scores holds t×t; the context block is
            // disjoint from every other task's.
            unsafe {
                let q = base.add(start * 3 * d + h * dh);
                let k = q.add(d);
                let v = q.add(2 * d);
                matmul_into(
                    t,
                    t,
                    dh,
                    scores.as_mut_ptr(),
                    t,
                    false,
                    q,
                    3 * d,
                    1,
                    k,
                    3 * d,
                    1,
                    Parallelism::None,
                );
                softmax_rows(&mut scores, t);
                matmul_into(
                    t,
                    dh,
                    t,
                    ctx.get().add(start * d + h * dh),
                    d,
                    false,
                    scores.as_ptr(),
                    t,
                    1,
                    v,
                    1,
                    3 * d,
                    Parallelism::None,
                );
            }
        });
    });
}

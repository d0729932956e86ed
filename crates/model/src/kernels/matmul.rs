//! Linear layers on the `gemm` crate (x86-v4 kernels: 236-306 GFLOP/s on ESM2's shapes, level
//! with MKL, where candle's default build reaches 84-146; ARCHITECTURE.md "Compute").

use gemm::Parallelism;

/// `y = x W^T + b` with W stored transposed, `[in, out]` row-major, so rows of x stream.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight_t: Vec<f32>,
    pub bias: Vec<f32>,
    pub in_dim: usize,
    pub out_dim: usize,
}

impl Linear {
    /// From a PyTorch-convention weight `[out, in]`.
    pub fn from_torch(weight: &[f32], bias: Vec<f32>, out_dim: usize, in_dim: usize) -> Self {
        let mut weight_t = vec![0f32; in_dim * out_dim];
        for o in 0..out_dim {
            for i in 0..in_dim {
                weight_t[i * out_dim + o] = weight[o * in_dim + i];
            }
        }
        Linear {
            weight_t,
            bias,
            in_dim,
            out_dim,
        }
    }
}

fn threads() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `out = x · W^T + b` for `rows` rows; `out` is resized.
pub fn linear(x: &[f32], layer: &Linear, out: &mut Vec<f32>) {
    let rows = x.len() / layer.in_dim;
    out.clear();
    out.reserve(rows * layer.out_dim);
    for _ in 0..rows {
        out.extend_from_slice(&layer.bias);
    }
    // SAFETY: the slices hold rows×in, in×out and rows×out elements with the strides given.
    unsafe {
        matmul_into(
            rows,
            layer.out_dim,
            layer.in_dim,
            out.as_mut_ptr(),
            layer.out_dim,
            true,
            x.as_ptr(),
            layer.in_dim,
            1,
            layer.weight_t.as_ptr(),
            1,
            layer.out_dim,
            threads(),
        );
    }
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]` with explicit strides (dst row-major with row stride
/// `dst_rs`); `lhs(i, p) = lhs[i*lhs_rs + p*lhs_cs]`, `rhs(p, j) = rhs[p*rhs_rs + j*rhs_cs]`.
///
/// # Safety
/// Every index reachable through the strides must lie inside its allocation.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const f32,
    rhs_cs: usize,
    rhs_rs: usize,
    parallelism: Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    );
}

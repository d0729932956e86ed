//! CPU kernels of the forward pass. Each hot loop is written once as plain arithmetic and
//! compiled three times (AVX-512, AVX2+FMA, baseline) with the widest chosen at run time, so
//! one portable binary runs vectorised exp/erf/LayerNorm on the AVX-512 machines we measure on
//! (ARCHITECTURE.md "Compute": scalar softmax/GELU was half of stock candle's layer time).

mod attention;
pub(crate) mod elementwise;
mod matmul;

pub use attention::{attend, AttentionShape};
pub use elementwise::{add_inplace, gelu_inplace, layer_norm, softmax_rows};
pub use matmul::{linear, matmul_into, Linear};

/// Defines `pub fn $name` that dispatches to the widest instruction set the CPU has; `$body`
/// must be a generic-free function `$imp` marked `#[inline(always)]`.
macro_rules! multiversion {
    (pub fn $name:ident($($arg:ident : $ty:ty),*) => $imp:ident) => {
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) { $imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) { $imp($($arg),*) }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features v4 was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above, for v3.
                    return unsafe { v3($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// e^x for f32, branch-free so loops over it vectorise: Cody–Waite range reduction to
/// r in [-ln2/2, ln2/2] and a degree-7 Taylor polynomial (relative error < 1e-7 there).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x/ln2 to nearest with the 1.5*2^23 trick (no rounding instruction needed).
    let shifter = 12_582_912.0f32;
    let t = x * std::f32::consts::LOG2_E + shifter;
    let n = t - shifter;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let exponent = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    p * f32::from_bits(((exponent + 127) << 23) as u32)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), branch-free.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_f32(-a * a);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_libm() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -800..800 {
            let x = i as f32 * 0.01 + 0.003;
            let e = (x as f64).exp();
            worst_exp = worst_exp.max(((exp_f32(x) as f64) - e).abs() / e);
            let erf = libm_erf(x as f64);
            worst_erf = worst_erf.max(((erf_f32(x) as f64) - erf).abs());
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        // A&S 7.1.26 is 1.5e-7 in exact arithmetic; f32 evaluation adds about 3e-7.
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
    }

    /// Reference erf: Simpson's rule on 2/sqrt(pi) e^(-t^2), 20,000 intervals per unit of x
    /// (error far below 1e-12).
    fn libm_erf(x: f64) -> f64 {
        let n = ((x.abs() * 20_000.0) as usize).max(2) & !1;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }
}

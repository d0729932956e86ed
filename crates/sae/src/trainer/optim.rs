//! Adam with bias correction (as `torch.optim.Adam`) and the learning-rate schedule.

use serde::{Deserialize, Serialize};

/// Shape of the learning rate after warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Constant after warmup (the seed paper).
    Constant,
    /// Linear from `lr` to `lr × min_lr_fraction` at `total_steps`.
    Linear,
    /// Half cosine from `lr` to `lr × min_lr_fraction` at `total_steps`.
    Cosine,
}

/// Learning-rate schedule: linear warmup, then `decay`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub lr: f32,
    pub warmup_steps: u64,
    pub decay: Decay,
    pub total_steps: u64,
    pub min_lr_fraction: f32,
}

impl Schedule {
    /// Learning rate for the step that follows `steps_done` completed steps.
    pub fn lr_at(&self, steps_done: u64) -> f32 {
        if steps_done < self.warmup_steps {
            return self.lr * (steps_done + 1) as f32 / self.warmup_steps as f32;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((steps_done - self.warmup_steps) as f64 / span as f64).min(1.0);
        let floor = self.min_lr_fraction as f64;
        let factor = match self.decay {
            Decay::Constant => 1.0,
            Decay::Linear => 1.0 - (1.0 - floor) * progress,
            Decay::Cosine => {
                floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        (self.lr as f64 * factor) as f32
    }
}

/// Adam hyperparameters (torch defaults: betas 0.9, 0.999; eps 1e-8).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// One Adam update of `param` from `grad`, with moments `m`, `v`; `step` counts from 1.
///
/// Written as torch does it (`p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps)`) so one step matches
/// PyTorch to float rounding.
pub(crate) fn adam_update(
    cfg: &AdamConfig,
    lr: f32,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    use rayon::prelude::*;
    let bc1 = 1.0 - (cfg.beta1 as f64).powi(step as i32);
    let bc2 = 1.0 - (cfg.beta2 as f64).powi(step as i32);
    let step_size = (lr as f64 / bc1) as f32;
    let bc2_sqrt = bc2.sqrt() as f32;
    let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
    const CHUNK: usize = 1 << 14;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                let denom = v[i].sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * m[i] / denom;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_floor() {
        let s = Schedule {
            lr: 1.0,
            warmup_steps: 10,
            decay: Decay::Linear,
            total_steps: 110,
            min_lr_fraction: 0.1,
        };
        assert!((s.lr_at(0) - 0.1).abs() < 1e-6);
        assert!((s.lr_at(9) - 1.0).abs() < 1e-6);
        assert!((s.lr_at(60) - 0.55).abs() < 1e-6);
        assert!((s.lr_at(500) - 0.1).abs() < 1e-6);
        let c = Schedule {
            decay: Decay::Cosine,
            ..s
        };
        assert!((c.lr_at(60) - 0.55).abs() < 1e-6);
        assert!((c.lr_at(110) - 0.1).abs() < 1e-6);
    }
}

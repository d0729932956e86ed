//! One training step: forward, loss, sparse backward, gradient projection, Adam, renormalisation.
//!
//! The backward touches only active (latent, row) pairs: gradients are grouped by latent, so each
//! latent's `W_dec` row and encoder row are written by one thread, in row order, and results do
//! not depend on the thread count. Cost: the encoder matmul + O(rows · k · d).

use rayon::prelude::*;

use crate::architecture::{Architecture, Kind};
use crate::csr::build_rows;
use crate::dictionary::{biased_layer_norm_row, layer_norm_row};
use crate::error::{check_rows, Result, SaeError};
use crate::kernels::{axpy, dot, matmul, top_k_positive, Operand};
use crate::trainer::config::{BDecInit, DeadRule, ReconLoss, TrainNorm};
use crate::trainer::init::{geometric_median, mean_rows};
use crate::trainer::optim::adam_update;
use crate::trainer::select::{batch_top_k, jumprelu_threshold_grad};
use crate::trainer::Trainer;

/// What one step measured (losses before the update).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StepStats {
    pub loss: f64,
    pub recon_loss: f64,
    pub aux_loss: f64,
    pub sparsity_loss: f64,
    /// Σ‖x̂ − y‖² / Σ‖y − ȳ‖² on this batch (normalised space).
    pub fvu: f64,
    /// Mean active latents per row.
    pub l0: f64,
    /// Dead latents over d_sae: before this step's update of the counters with
    /// [`DeadRule::Rows`], after it with Rep's [`DeadRule::IdleSteps`] (the set AuxK used).
    pub dead_fraction: f64,
    pub lr: f32,
    /// Wall time of the step's phases, for benchmarks.
    pub timings: StepTimings,
}

/// Milliseconds spent in each phase of a step.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StepTimings {
    /// Centring and the encoder matmul.
    pub encoder_ms: f64,
    /// Code selection (TopK etc.), decoding and AuxK selection.
    pub select_decode_ms: f64,
    /// Sparse backward.
    pub backward_ms: f64,
    /// Projection, Adam and renormalisation.
    pub update_ms: f64,
}

/// Reusable buffers (not part of the saved state).
#[derive(Default)]
pub(crate) struct Workspace {
    x: Vec<f32>,
    y: Vec<f32>,
    xc: Vec<f32>,
    pre: Vec<f32>,
    /// Reconstruction error, then its gradient.
    err: Vec<f32>,
    /// AuxK reconstruction of the error, then its gradient.
    ehat: Vec<f32>,
}

impl Trainer {
    /// One optimisation step on `x` ([rows, d_in]); `y` ([rows, d_out]) for transcoders.
    pub fn step(&mut self, x: &[f32], y: Option<&[f32]>) -> Result<StepStats> {
        let (d_in, d_out) = (self.cfg.d_in, self.cfg.d_out);
        let rows = check_rows("training batch x", x, d_in)?;
        if rows == 0 {
            return Err(SaeError::Config("empty training batch".into()));
        }
        let mut ws = std::mem::take(&mut self.work);
        ws.x.clear();
        ws.x.extend_from_slice(x);
        match (self.cfg.kind, y) {
            (Kind::Sae, None) => {}
            (Kind::Sae, Some(_)) => {
                return Err(SaeError::Config("an SAE takes no separate targets".into()))
            }
            (_, None) => return Err(SaeError::Config("a transcoder step needs targets y".into())),
            (_, Some(y)) => {
                let y_rows = check_rows("training batch y", y, d_out)?;
                if y_rows != rows {
                    return Err(SaeError::Config(format!(
                        "batch x has {rows} rows, y has {y_rows}"
                    )));
                }
                ws.y.clear();
                ws.y.extend_from_slice(y);
            }
        }
        let is_sae = self.cfg.kind == Kind::Sae;
        self.normalise(&mut ws, is_sae);
        if self.steps_done == 0 {
            let target = if is_sae { &ws.x } else { &ws.y };
            match self.cfg.b_dec_init {
                BDecInit::Zeros => {}
                BDecInit::Mean => self.params.b_dec = mean_rows(target, d_out),
                BDecInit::GeometricMedian => {
                    self.params.b_dec = geometric_median(target, d_out, 100)
                }
            }
        }
        let result = self.step_normalised(&mut ws, rows, is_sae);
        self.work = ws;
        let stats = result?;
        Ok(stats)
    }

    fn normalise(&mut self, ws: &mut Workspace, is_sae: bool) {
        let (d_in, d_out) = (self.cfg.d_in, self.cfg.d_out);
        match self.cfg.input_norm {
            TrainNorm::None => {}
            TrainNorm::LayerNorm { eps } => ws.x.chunks_mut(d_in).for_each(|r| {
                layer_norm_row(r, eps);
            }),
            TrainNorm::BiasedLayerNorm { eps } => ws.x.chunks_mut(d_in).for_each(|r| {
                biased_layer_norm_row(r, eps);
            }),
            TrainNorm::UnitMeanSquare => {
                let scale_for = |v: &[f32], d: usize| {
                    let rows = (v.len() / d).max(1);
                    let ms = v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>() / (rows * d) as f64;
                    if ms > 0.0 {
                        (1.0 / ms.sqrt()) as f32
                    } else {
                        1.0
                    }
                };
                let (c_in, c_out) = *self.scales.get_or_insert_with(|| {
                    let c_in = scale_for(&ws.x, d_in);
                    (
                        c_in,
                        if is_sae {
                            c_in
                        } else {
                            scale_for(&ws.y, d_out)
                        },
                    )
                });
                ws.x.iter_mut().for_each(|v| *v *= c_in);
                ws.y.iter_mut().for_each(|v| *v *= c_out);
            }
        }
    }

    fn step_normalised(
        &mut self,
        ws: &mut Workspace,
        rows: usize,
        is_sae: bool,
    ) -> Result<StepStats> {
        let cfg = self.cfg.clone();
        let (d_in, d_sae, d_out) = (cfg.d_in, cfg.d_sae, cfg.d_out);
        let p = &self.params;
        let clock = std::time::Instant::now();
        let mut timings = StepTimings::default();
        let lap = |slot: &mut f64, last: &mut std::time::Duration| {
            let now = clock.elapsed();
            *slot = (now - *last).as_secs_f64() * 1e3;
            *last = now;
        };
        let mut last = std::time::Duration::ZERO;

        // Forward: encoder input and pre-activations (the dominant matmul).
        ws.xc.clear();
        if cfg.apply_b_dec_to_input {
            ws.xc.extend(
                ws.x.chunks(d_in)
                    .flat_map(|r| r.iter().zip(&p.b_dec).map(|(a, b)| a - b)),
            );
        } else {
            ws.xc.extend_from_slice(&ws.x);
        }
        ws.pre.clear();
        ws.pre.resize(rows * d_sae, 0.0);
        ws.pre
            .par_chunks_mut(d_sae)
            .for_each(|r| r.copy_from_slice(&p.b_enc));
        matmul(
            &mut ws.pre,
            Operand::plain(&ws.xc, d_in),
            Operand::transposed(&p.enc_t, d_in),
            rows,
            d_in,
            d_sae,
            true,
        );

        lap(&mut timings.encoder_ms, &mut last);
        let theta: Option<Vec<f32>> = p
            .log_threshold
            .as_ref()
            .map(|t| t.iter().map(|v| v.exp()).collect());
        let pre = &ws.pre;
        let codes = match cfg.architecture {
            Architecture::TopK => build_rows(rows, |r, s, i, v| {
                top_k_positive(&pre[r * d_sae..(r + 1) * d_sae], None, cfg.k, s, i, v)
            }),
            Architecture::Relu => build_rows(rows, |r, _, i, v| {
                for (j, &a) in pre[r * d_sae..(r + 1) * d_sae].iter().enumerate() {
                    if a > 0.0 {
                        i.push(j as u32);
                        v.push(a);
                    }
                }
            }),
            Architecture::JumpRelu => {
                let theta = theta.as_deref().unwrap_or(&[]);
                build_rows(rows, |r, _, i, v| {
                    for (j, (&a, &t)) in pre[r * d_sae..(r + 1) * d_sae]
                        .iter()
                        .zip(theta)
                        .enumerate()
                    {
                        if a > t && a > 0.0 {
                            i.push(j as u32);
                            v.push(a);
                        }
                    }
                })
            }
            Architecture::BatchTopK => {
                let (csr, min_kept) = batch_top_k(pre, rows, d_sae, cfg.k * rows);
                if let Some(m) = min_kept {
                    let mom = cfg.batchtopk_threshold_momentum;
                    self.batch_threshold = Some(match self.batch_threshold {
                        Some(t) => mom * t + (1.0 - mom) * m,
                        None => m,
                    });
                }
                csr
            }
        };

        // Reconstruction and its error.
        let target: &[f32] = if is_sae { &ws.x } else { &ws.y };
        ws.err.clear();
        ws.err.resize(rows * d_out, 0.0);
        ws.err.par_chunks_mut(d_out).enumerate().for_each(|(r, e)| {
            e.copy_from_slice(&p.b_dec);
            let (features, values) = codes.row(r);
            for (&j, &v) in features.iter().zip(values) {
                axpy(v, &p.w_dec[j as usize * d_out..(j as usize + 1) * d_out], e);
            }
        });
        if let Some(w_skip) = &p.w_skip {
            matmul(
                &mut ws.err,
                Operand::plain(&ws.x, d_in),
                Operand::transposed(w_skip, d_in),
                rows,
                d_in,
                d_out,
                true,
            );
        }
        ws.err.iter_mut().zip(target).for_each(|(e, t)| *e -= t);
        let sq_err: f64 = ws.err.iter().map(|&e| (e as f64).powi(2)).sum();
        let total_var = total_variance(target, d_out);
        let denom = match cfg.recon_loss {
            ReconLoss::Fvu => total_var,
            ReconLoss::Mse => (rows * d_out) as f64,
        };
        if denom <= 0.0 || denom.is_nan() {
            return Err(SaeError::Config(
                "training batch has zero variance: FVU loss undefined".into(),
            ));
        }
        let recon_loss = sq_err / denom;

        // Rep's idle-step counters take this batch into account before AuxK reads them.
        if let DeadRule::IdleSteps { .. } = cfg.dead_rule {
            let mut fired = vec![false; d_sae];
            codes.feature.iter().for_each(|&j| fired[j as usize] = true);
            for (c, f) in self.rows_since_fired.iter_mut().zip(fired) {
                *c = if f { 1 } else { *c + 1 };
            }
        }
        // AuxK: dead latents reconstruct the residual error (TopK family only).
        let dead: Vec<u32> = if cfg.auxk_coefficient > 0.0 && cfg.architecture.uses_k() {
            (0..d_sae as u32)
                .filter(|&j| cfg.is_dead(self.rows_since_fired[j as usize]))
                .collect()
        } else {
            Vec::new()
        };
        let dead_fraction = self.dead_fraction();
        let mut aux_loss = 0.0;
        let aux = if dead.is_empty() {
            build_rows(rows, |_, _, _, _| {})
        } else {
            let k_nominal = cfg.k_aux_nominal();
            let k_aux = k_nominal.min(dead.len());
            let scale = (dead.len() as f64 / k_nominal as f64).min(1.0);
            let aux = build_rows(rows, |r, s, i, v| {
                top_k_positive(
                    &pre[r * d_sae..(r + 1) * d_sae],
                    Some(&dead),
                    k_aux,
                    s,
                    i,
                    v,
                )
            });
            ws.ehat.clear();
            ws.ehat.resize(rows * d_out, 0.0);
            ws.ehat
                .par_chunks_mut(d_out)
                .enumerate()
                .for_each(|(r, e)| {
                    let (features, values) = aux.row(r);
                    for (&j, &v) in features.iter().zip(values) {
                        axpy(v, &p.w_dec[j as usize * d_out..(j as usize + 1) * d_out], e);
                    }
                });
            // The residual to explain is y − x̂ = −err; ehat − (−err) = ehat + err.
            let coef = cfg.auxk_coefficient as f64 * scale;
            let mut sq = 0.0f64;
            for (h, &e) in ws.ehat.iter_mut().zip(&ws.err) {
                let diff = *h + e;
                sq += (diff as f64).powi(2);
                *h = (2.0 * coef / denom) as f32 * diff;
            }
            aux_loss = coef * sq / denom;
            aux
        };

        // Sparsity penalties.
        let dec_norms: Vec<f32> = if cfg.architecture == Architecture::Relu {
            p.w_dec
                .par_chunks(d_out)
                .map(|w| dot(w, w).sqrt())
                .collect()
        } else {
            Vec::new()
        };
        let l1_per_row = cfg.l1_coefficient / rows as f32;
        let sparsity_loss = match cfg.architecture {
            Architecture::Relu => {
                let s: f64 = codes
                    .feature
                    .iter()
                    .zip(&codes.value)
                    .map(|(&j, &v)| (v * dec_norms[j as usize]) as f64)
                    .sum();
                cfg.l1_coefficient as f64 * s / rows as f64
            }
            Architecture::JumpRelu => {
                cfg.l0_coefficient as f64 * codes.feature.len() as f64 / rows as f64
            }
            _ => 0.0,
        };
        let recon_scale = (2.0 / denom) as f32;
        ws.err.iter_mut().for_each(|e| *e *= recon_scale);

        lap(&mut timings.select_decode_ms, &mut last);
        // d loss / d code for every active entry (and for AuxK entries).
        let de = &ws.err;
        let entry_rows = codes.entry_rows();
        let dcode: Vec<f32> = (0..codes.feature.len())
            .into_par_iter()
            .map(|e| {
                let (r, j) = (entry_rows[e] as usize, codes.feature[e] as usize);
                let mut g = dot(
                    &de[r * d_out..(r + 1) * d_out],
                    &p.w_dec[j * d_out..(j + 1) * d_out],
                );
                if !dec_norms.is_empty() {
                    g += l1_per_row * dec_norms[j];
                }
                g
            })
            .collect();
        let aux_rows = aux.entry_rows();
        let ehat_grad = &ws.ehat;
        let daux: Vec<f32> = (0..aux.feature.len())
            .into_par_iter()
            .map(|e| {
                let (r, j) = (aux_rows[e] as usize, aux.feature[e] as usize);
                dot(
                    &ehat_grad[r * d_out..(r + 1) * d_out],
                    &p.w_dec[j * d_out..(j + 1) * d_out],
                )
            })
            .collect();

        // Group entries by latent (counting sort; main entries first, each in row order).
        let n_main = codes.feature.len();
        let mut latent_ptr = vec![0usize; d_sae + 1];
        for &j in codes.feature.iter().chain(&aux.feature) {
            latent_ptr[j as usize + 1] += 1;
        }
        for j in 0..d_sae {
            latent_ptr[j + 1] += latent_ptr[j];
        }
        let mut fill = latent_ptr.clone();
        let mut order = vec![0u32; latent_ptr[d_sae]];
        for (e, &j) in codes.feature.iter().chain(&aux.feature).enumerate() {
            order[fill[j as usize]] = e as u32;
            fill[j as usize] += 1;
        }

        let g = &mut self.grads;
        let xc = &ws.xc;
        let relu_l1 = !dec_norms.is_empty() && cfg.l1_coefficient != 0.0;
        g.w_dec
            .par_chunks_mut(d_out)
            .zip(g.enc_t.par_chunks_mut(d_in))
            .zip(g.b_enc.par_iter_mut())
            .enumerate()
            .for_each(|(j, ((gw, ge), gb))| {
                gw.fill(0.0);
                ge.fill(0.0);
                *gb = 0.0;
                let mut code_sum = 0.0f32;
                for &e in &order[latent_ptr[j]..latent_ptr[j + 1]] {
                    let e = e as usize;
                    let (r, code, dpre, dvec) = if e < n_main {
                        code_sum += codes.value[e];
                        (entry_rows[e] as usize, codes.value[e], dcode[e], de)
                    } else {
                        let a = e - n_main;
                        (aux_rows[a] as usize, aux.value[a], daux[a], ehat_grad)
                    };
                    axpy(code, &dvec[r * d_out..(r + 1) * d_out], gw);
                    axpy(dpre, &xc[r * d_in..(r + 1) * d_in], ge);
                    *gb += dpre;
                }
                if relu_l1 && code_sum > 0.0 && dec_norms[j] > 0.0 {
                    let w = &p.w_dec[j * d_out..(j + 1) * d_out];
                    axpy(l1_per_row * code_sum / dec_norms[j], w, gw);
                }
            });
        // b_dec: the output bias, and (SAEs) the input centring through the encoder.
        g.b_dec.fill(0.0);
        for r in de.chunks(d_out) {
            axpy(1.0, r, &mut g.b_dec);
        }
        if cfg.apply_b_dec_to_input {
            for j in 0..d_sae {
                if g.b_enc[j] != 0.0 {
                    axpy(
                        -g.b_enc[j],
                        &p.enc_t[j * d_in..(j + 1) * d_in],
                        &mut g.b_dec,
                    );
                }
            }
        }
        if let Some(gs) = &mut g.w_skip {
            matmul(
                gs,
                Operand::transposed(de, d_out),
                Operand::plain(&ws.x, d_in),
                d_out,
                rows,
                d_in,
                false,
            );
        }
        if let (Some(glt), Some(theta)) = (&mut g.log_threshold, &theta) {
            jumprelu_threshold_grad(glt, theta, pre, de, &p.w_dec, rows, d_sae, d_out, &cfg);
        }

        let loss = recon_loss + aux_loss + sparsity_loss;
        if !loss.is_finite() {
            return Err(SaeError::Diverged {
                step: self.steps_done,
                loss: loss as f32,
            });
        }
        lap(&mut timings.backward_ms, &mut last);
        self.apply_update();
        lap(&mut timings.update_ms, &mut last);

        // Dead-latent counters: every latent ages by the batch; those that fired restart.
        if cfg.dead_rule == DeadRule::Rows {
            self.rows_since_fired
                .iter_mut()
                .for_each(|c| *c += rows as u64);
            for &j in &codes.feature {
                self.rows_since_fired[j as usize] = 0;
            }
        }
        self.rows_seen += rows as u64;
        let fvu = sq_err / total_var;
        self.last_fvu = Some(fvu);
        Ok(StepStats {
            loss,
            recon_loss,
            aux_loss,
            sparsity_loss,
            fvu,
            l0: codes.feature.len() as f64 / rows as f64,
            dead_fraction,
            lr: cfg.schedule.lr_at(self.steps_done - 1),
            timings,
        })
    }

    /// Gradient projection, Adam and decoder renormalisation.
    fn apply_update(&mut self) {
        let d_out = self.cfg.d_out;
        if self.cfg.unit_norm_decoder {
            // Remove the part of each row's gradient that would only change its norm.
            self.grads
                .w_dec
                .par_chunks_mut(d_out)
                .zip(self.params.w_dec.par_chunks(d_out))
                .for_each(|(g, w)| {
                    let ww = dot(w, w);
                    if ww > 0.0 {
                        axpy(-dot(g, w) / ww, w, g);
                    }
                });
        }
        let lr = self.cfg.schedule.lr_at(self.steps_done);
        self.steps_done += 1;
        let step = self.steps_done;
        let adam = self.cfg.adam;
        let grads = self.grads.named();
        for (((_, param), (_, m)), ((_, v), (_, g))) in self
            .params
            .named_mut()
            .into_iter()
            .zip(self.adam_m.named_mut())
            .zip(self.adam_v.named_mut().into_iter().zip(grads))
        {
            adam_update(&adam, lr, step, param, g, m, v);
        }
        if self.cfg.unit_norm_decoder {
            self.params.w_dec.par_chunks_mut(d_out).for_each(|w| {
                let n = dot(w, w).sqrt();
                if n > 0.0 {
                    w.iter_mut().for_each(|v| *v /= n);
                }
            });
        }
    }
}

/// Σ over rows of ‖y − ȳ‖², ȳ the batch mean (f64).
pub(crate) fn total_variance(y: &[f32], d: usize) -> f64 {
    let mean = mean_rows(y, d);
    y.chunks(d)
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&a, &m)| ((a - m) as f64).powi(2))
                .sum::<f64>()
        })
        .sum()
}

//! ESM2 (Lin et al. 2023), the forward pass on packed tokens: pre-LayerNorm blocks with
//! rotary self-attention and an exact-GELU MLP, final LayerNorm, and the masked-LM head.
//! Tensor names follow HF `EsmForMaskedLM`, so a missing-tensor error names the HF weight.

use crate::alphabet::{MASK, PAD};
use crate::config::EsmConfig;
use crate::error::ModelError;
use crate::kernels::{self, AttentionShape, Linear};
use crate::weights::{Checkpoint, TensorMap};
use plmscope_store::Site;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(t: &mut TensorMap, prefix: &str, d: usize, eps: f64) -> Result<Self, ModelError> {
        Ok(LayerNorm {
            weight: t.take(&format!("{prefix}.weight"), &[d])?,
            bias: t.take(&format!("{prefix}.bias"), &[d])?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &[f32], out: &mut Vec<f32>) {
        out.resize(x.len(), 0.0);
        kernels::layer_norm(x, out, &self.weight, &self.bias, self.eps);
    }
}

fn load_linear(
    t: &mut TensorMap,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) -> Result<Linear, ModelError> {
    let w = t.take(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
    let b = t.take(&format!("{prefix}.bias"), &[out_dim])?;
    Ok(Linear::from_torch(&w, b, out_dim, in_dim))
}

/// One transformer block.
#[derive(Debug, Clone)]
struct Block {
    attention_norm: LayerNorm,
    /// q, k and v projections fused into one `[hidden, 3·hidden]` matmul.
    qkv: Linear,
    attention_out: Linear,
    mlp_norm: LayerNorm,
    mlp_up: Linear,
    mlp_down: Linear,
}

impl Block {
    fn load(t: &mut TensorMap, i: usize, c: &EsmConfig) -> Result<Self, ModelError> {
        let d = c.hidden_size;
        let p = format!("encoder.layer.{i}");
        let mut w = Vec::with_capacity(3 * d * d);
        let mut b = Vec::with_capacity(3 * d);
        for part in ["query", "key", "value"] {
            w.extend(t.take(&format!("{p}.attention.self.{part}.weight"), &[d, d])?);
            b.extend(t.take(&format!("{p}.attention.self.{part}.bias"), &[d])?);
        }
        Ok(Block {
            attention_norm: LayerNorm::load(
                t,
                &format!("{p}.attention.LayerNorm"),
                d,
                c.layer_norm_eps,
            )?,
            qkv: Linear::from_torch(&w, b, 3 * d, d),
            attention_out: load_linear(t, &format!("{p}.attention.output.dense"), d, d)?,
            mlp_norm: LayerNorm::load(t, &format!("{p}.LayerNorm"), d, c.layer_norm_eps)?,
            mlp_up: load_linear(
                t,
                &format!("{p}.intermediate.dense"),
                c.intermediate_size,
                d,
            )?,
            mlp_down: load_linear(t, &format!("{p}.output.dense"), d, c.intermediate_size)?,
        })
    }
}

/// Masked-LM head: dense, GELU, LayerNorm, then the decoder tied to the token embeddings.
#[derive(Debug, Clone)]
struct LmHead {
    dense: Linear,
    norm: LayerNorm,
    decoder: Linear,
}

/// What a forward pass should keep.
#[derive(Debug, Clone, Default)]
pub struct CaptureRequest {
    /// (layer, site) pairs; layer 0 is only valid for `ResidPost`.
    pub sites: Vec<(usize, Site)>,
    pub logits: bool,
}

/// Captured activations of one batch, packed: sequence s owns token rows
/// `offsets[s]..offsets[s+1]` (including `<cls>` and `<eos>`).
#[derive(Debug, Clone)]
pub struct Captured {
    pub offsets: Vec<usize>,
    pub hidden: usize,
    pub sites: BTreeMap<(usize, Site), Vec<f32>>,
    /// `[tokens, 33]` when requested.
    pub logits: Option<Vec<f32>>,
}

/// An ESM2 model ready to run on the CPU.
#[derive(Debug, Clone)]
pub struct Esm2 {
    pub config: EsmConfig,
    embeddings: Vec<f32>,
    blocks: Vec<Block>,
    final_norm: LayerNorm,
    lm_head: Option<LmHead>,
    /// cos/sin of the rotary angles, `[max_positions, head_dim/2]` each.
    rotary_cos: Vec<f32>,
    rotary_sin: Vec<f32>,
}

impl Esm2 {
    /// Builds the model from a checkpoint; the LM head is optional (bare `EsmModel` files).
    pub fn from_checkpoint(ck: Checkpoint) -> Result<Self, ModelError> {
        let c = ck.config;
        let mut t = ck.tensors;
        let d = c.hidden_size;
        let embeddings = t.take("embeddings.word_embeddings.weight", &[c.vocab_size, d])?;
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::load(&mut t, i, &c))
            .collect::<Result<Vec<_>, _>>()?;
        let final_norm =
            LayerNorm::load(&mut t, "encoder.emb_layer_norm_after", d, c.layer_norm_eps)?;
        let lm_head = if t.contains("lm_head.dense.weight") {
            let decoder_w = if t.contains("lm_head.decoder.weight") {
                t.take("lm_head.decoder.weight", &[c.vocab_size, d])?
            } else {
                embeddings.clone()
            };
            Some(LmHead {
                dense: load_linear(&mut t, "lm_head.dense", d, d)?,
                norm: LayerNorm::load(&mut t, "lm_head.layer_norm", d, c.layer_norm_eps)?,
                decoder: Linear::from_torch(
                    &decoder_w,
                    t.take("lm_head.bias", &[c.vocab_size])?,
                    c.vocab_size,
                    d,
                ),
            })
        } else {
            None
        };
        let (rotary_cos, rotary_sin) =
            rotary_tables(c.head_dim(), c.max_position_embeddings.max(1026));
        Ok(Esm2 {
            config: c,
            embeddings,
            blocks,
            final_norm,
            lm_head,
            rotary_cos,
            rotary_sin,
        })
    }

    pub fn has_lm_head(&self) -> bool {
        self.lm_head.is_some()
    }

    /// Runs the batch (each sequence `<cls> … <eos>`, no padding) and returns the requested
    /// captures. Stops after the deepest requested layer unless logits are asked for.
    pub fn forward(
        &self,
        sequences: &[&[u32]],
        request: &CaptureRequest,
    ) -> Result<Captured, ModelError> {
        self.forward_patched(sequences, request, None)
    }

    /// `forward`, with the residue rows of the residual stream after block `patch.layer`
    /// replaced by what `patch.apply` makes of them (the spliced-in test of an SAE).
    /// Captures at that layer see the stream before the patch.
    pub fn forward_patched(
        &self,
        sequences: &[&[u32]],
        request: &CaptureRequest,
        mut patch: Option<ResidualPatch<'_>>,
    ) -> Result<Captured, ModelError> {
        let c = &self.config;
        let d = c.hidden_size;
        let n_layers = c.num_hidden_layers;
        for &(layer, site) in &request.sites {
            if layer > n_layers || (layer == 0 && site != Site::ResidPost) {
                return Err(ModelError::Request(format!(
                    "layer {layer} has no site {}: this model has layers 0..={n_layers} (0 = embeddings, resid_post only)",
                    site.name()
                )));
            }
        }
        if request.logits && self.lm_head.is_none() {
            return Err(ModelError::Request(
                "this checkpoint has no LM head (bare EsmModel); logits are unavailable".into(),
            ));
        }
        let mut offsets = Vec::with_capacity(sequences.len() + 1);
        offsets.push(0);
        for s in sequences {
            if s.len() > self.rotary_cos.len() / (c.head_dim() / 2) {
                return Err(ModelError::Request(format!(
                    "a sequence of {} tokens exceeds the model's positions",
                    s.len()
                )));
            }
            offsets.push(offsets.last().unwrap() + s.len());
        }
        let tokens = *offsets.last().unwrap();
        if let Some(p) = &patch {
            if p.layer > n_layers {
                return Err(ModelError::Request(format!(
                    "cannot patch layer {}: this model has layers 0..={n_layers}",
                    p.layer
                )));
            }
        }
        let last_needed = if request.logits {
            n_layers
        } else {
            request.sites.iter().map(|s| s.0).max().unwrap_or(0)
        };
        let wants = |layer: usize, site: Site| request.sites.contains(&(layer, site));

        let mut x = self.embed(sequences, tokens);
        let mut captured = BTreeMap::new();
        if wants(0, Site::ResidPost) {
            captured.insert(
                (0, Site::ResidPost),
                if n_layers == 0 {
                    self.final_normed(&x)
                } else {
                    x.clone()
                },
            );
        }
        let mut apply_patch = |layer: usize, x: &mut [f32]| {
            if let Some(p) = patch.as_mut().filter(|p| p.layer == layer) {
                patch_residues(x, &offsets, d, &mut *p.apply);
            }
        };
        apply_patch(0, &mut x);
        let mut normed = Vec::new();
        let mut qkv = Vec::new();
        let mut context = vec![0f32; tokens * d];
        let mut proj = Vec::new();
        let mut up = Vec::new();
        let shape = AttentionShape {
            hidden: d,
            heads: c.num_attention_heads,
        };
        for (i, block) in self.blocks.iter().enumerate().take(last_needed) {
            let layer = i + 1;
            let before = if wants(layer, Site::BlockDelta) {
                Some(x.clone())
            } else {
                None
            };
            block.attention_norm.forward(&x, &mut normed);
            kernels::linear(&normed, &block.qkv, &mut qkv);
            self.rotate_and_scale(&mut qkv, &offsets);
            kernels::attend(&qkv, &offsets, shape, &mut context);
            kernels::linear(&context, &block.attention_out, &mut proj);
            kernels::add_inplace(&mut x, &proj);
            block.mlp_norm.forward(&x, &mut normed);
            if wants(layer, Site::MlpIn) {
                captured.insert((layer, Site::MlpIn), normed.clone());
            }
            kernels::linear(&normed, &block.mlp_up, &mut up);
            kernels::gelu_inplace(&mut up);
            kernels::linear(&up, &block.mlp_down, &mut proj);
            if wants(layer, Site::MlpOut) {
                captured.insert((layer, Site::MlpOut), proj.clone());
            }
            kernels::add_inplace(&mut x, &proj);
            let post = if layer == n_layers {
                Some(self.final_normed(&x))
            } else {
                None
            };
            let post_ref = post.as_deref().unwrap_or(&x);
            if let Some(mut delta) = before {
                delta
                    .iter_mut()
                    .zip(post_ref)
                    .for_each(|(b, a)| *b = a - *b);
                captured.insert((layer, Site::BlockDelta), delta);
            }
            if wants(layer, Site::ResidPost) {
                captured.insert((layer, Site::ResidPost), post_ref.to_vec());
            }
            if let Some(p) = post {
                x = p;
            }
            apply_patch(layer, &mut x);
        }
        let logits = match (&self.lm_head, request.logits) {
            (Some(head), true) => {
                let mut h = Vec::new();
                kernels::linear(&x, &head.dense, &mut h);
                kernels::gelu_inplace(&mut h);
                head.norm.forward(&h, &mut normed);
                let mut out = Vec::new();
                kernels::linear(&normed, &head.decoder, &mut out);
                Some(out)
            }
            _ => None,
        };
        Ok(Captured {
            offsets,
            hidden: d,
            sites: captured,
            logits,
        })
    }

    fn final_normed(&self, x: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        self.final_norm.forward(x, &mut out);
        out
    }

    /// Token embeddings with ESM2's inference-time token-dropout rescaling:
    /// × (1 − 0.15·0.8) / (1 − observed mask fraction), `<mask>` rows zeroed.
    fn embed(&self, sequences: &[&[u32]], tokens: usize) -> Vec<f32> {
        let d = self.config.hidden_size;
        let mut x = Vec::with_capacity(tokens * d);
        for s in sequences {
            let masked = s.iter().filter(|&&t| t == MASK).count();
            let scale = if self.config.token_dropout {
                (1.0 - 0.15 * 0.8) / (1.0 - masked as f32 / s.len() as f32)
            } else {
                1.0
            };
            for &t in s.iter() {
                let row = &self.embeddings[t as usize * d..(t as usize + 1) * d];
                if (t == MASK && self.config.token_dropout) || t == PAD {
                    x.extend(std::iter::repeat_n(0.0, d));
                } else {
                    x.extend(row.iter().map(|v| v * scale));
                }
            }
        }
        x
    }

    /// Scales q by head_dim^-½ and applies rotary embeddings (HF's `rotate_half` layout) to q
    /// and k, in place in the packed `[tokens, 3·hidden]` buffer.
    fn rotate_and_scale(&self, qkv: &mut [f32], offsets: &[usize]) {
        use rayon::prelude::*;
        let d = self.config.hidden_size;
        let dh = self.config.head_dim();
        let half = dh / 2;
        let scale = (dh as f32).powf(-0.5);
        let mut positions = Vec::with_capacity(qkv.len() / (3 * d));
        for w in offsets.windows(2) {
            positions.extend(0..w[1] - w[0]);
        }
        qkv.par_chunks_mut(3 * d)
            .zip(positions.par_iter())
            .for_each(|(row, &pos)| {
                let cos = &self.rotary_cos[pos * half..(pos + 1) * half];
                let sin = &self.rotary_sin[pos * half..(pos + 1) * half];
                let (q, rest) = row.split_at_mut(d);
                let k = &mut rest[..d];
                for head in q.chunks_exact_mut(dh) {
                    head.iter_mut().for_each(|v| *v *= scale);
                    rotate(head, cos, sin);
                }
                for head in k.chunks_exact_mut(dh) {
                    rotate(head, cos, sin);
                }
            });
    }
}

/// A replacement of the residual stream's residue rows after one layer.
pub struct ResidualPatch<'a> {
    /// 0 = embedding output, L = after block L (after the final LayerNorm for the last).
    pub layer: usize,
    /// Called with the residue rows (no `<cls>`/`<eos>`) of the whole batch, row-major
    /// `[rows, hidden]`, to rewrite in place.
    pub apply: &'a mut dyn FnMut(&mut [f32]),
}

/// Gathers every sequence's residue rows, lets `apply` rewrite them, scatters them back.
fn patch_residues(x: &mut [f32], offsets: &[usize], d: usize, apply: &mut dyn FnMut(&mut [f32])) {
    let mut rows = Vec::new();
    for w in offsets.windows(2) {
        rows.extend_from_slice(&x[(w[0] + 1) * d..(w[1] - 1) * d]);
    }
    apply(&mut rows);
    let mut at = 0;
    for w in offsets.windows(2) {
        let n = (w[1] - w[0] - 2) * d;
        x[(w[0] + 1) * d..(w[1] - 1) * d].copy_from_slice(&rows[at..at + n]);
        at += n;
    }
}

#[inline]
fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    let (a, b) = x.split_at_mut(half);
    for i in 0..half {
        let (x1, x2) = (a[i], b[i]);
        a[i] = x1 * cos[i] - x2 * sin[i];
        b[i] = x2 * cos[i] + x1 * sin[i];
    }
}

/// Rotary tables computed as HF does in f32 (inv_freq = 1/10000^(2i/dh), angle = pos·inv_freq
/// rounded to f32), so angles at position 1000 agree with the reference to the last bit.
fn rotary_tables(head_dim: usize, positions: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0f32 / (10000f64.powf(exponent as f64) as f32)
        })
        .collect();
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for p in 0..positions {
        for &f in &inv_freq {
            let angle = (p as f32 * f) as f64;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

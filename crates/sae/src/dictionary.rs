//! The inference form of a dictionary: weights in SAELens' layout and the plain formula
//! `codes = act((x − b_dec·apply) W_enc + b_enc)`, `x̂ = codes W_dec + b_dec (+ x W_skipᵀ)`.

use plmscope_store::{CsrRows, Level, Site};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::architecture::{Architecture, Kind};
use crate::csr::extend_rows;
use crate::error::{check_rows, Result, SaeError};
use crate::kernels::{axpy, matmul, Operand};

/// Per-sample input normalisation that cannot be folded into the weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputNorm {
    /// Raw activations in, raw activations out (constant scalings are folded into the weights).
    #[default]
    None,
    /// Each row is centred and divided by (its unbiased standard deviation + eps) before encoding;
    /// the reconstruction is multiplied by that standard deviation and the mean added back, as
    /// InterProt (OpenAI's `LN`) does.
    LayerNorm { eps: f32 },
    /// The seed paper's (Gujral et al.) rule, `FeatureNormalizer` in Rep's
    /// `sparse_auto_script.py`: each row is centred and divided by √(σ² + eps), σ² its biased
    /// variance (mean over d), eps inside the root (1e-5 there); the reconstruction is multiplied
    /// by σ = √σ² (no eps) and the mean added back.
    BiasedLayerNorm { eps: f32 },
}

/// Where activations come from or go to: enough to refuse a mismatched layer. Site and level
/// are `None` when unrecorded (imported dictionaries); written as the manifests' strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SiteRef {
    pub model: String,
    pub layer: Option<u32>,
    #[serde(default, deserialize_with = "unrecorded_as_none")]
    pub site: Option<Site>,
    #[serde(default, deserialize_with = "unrecorded_as_none")]
    pub level: Option<Level>,
}

/// Reads a site or level by its manifest string; `null` and `""` (what `cfg.json` files written
/// while these fields were strings hold when unrecorded) read as `None`.
fn unrecorded_as_none<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Quality measured at the end of training, recorded so a load can be checked against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct RecordedMetrics {
    pub fvu: Option<f64>,
    pub mse: Option<f64>,
    pub l0: Option<f64>,
    pub dead_fraction: Option<f64>,
    pub rows_trained: Option<u64>,
}

/// Our own metadata, stored in `cfg.json` under `plmscope`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct DictionaryMeta {
    pub source: SiteRef,
    /// For transcoders, the predicted site; for SAEs, equal to `source`.
    pub target: SiteRef,
    /// How inputs were normalised during training (e.g. a folded scale), for the record.
    pub normalisation: serde_json::Value,
    /// Training hyperparameters, for the record.
    pub hyperparameters: serde_json::Value,
    pub metrics: RecordedMetrics,
    /// Where this dictionary was read from when it is not ours (`sparsify`, `interprot`...).
    pub imported_from: Option<String>,
    /// What it was trained on (activation sets, train/validation split, steps), for the record
    /// and so `eval` can find the validation proteins again. Typed through
    /// [`DictionaryMeta::training_record`] / `set_training_record` ([`crate::TrainingRecord`]).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// A sparse dictionary ready for inference.
#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    pub architecture: Architecture,
    pub kind: Kind,
    pub d_in: usize,
    pub d_sae: usize,
    pub d_out: usize,
    /// Active latents per row for TopK (BatchTopK: the training budget; inference uses `threshold`).
    pub k: usize,
    /// `W_enc` [d_in, d_sae], row-major.
    pub w_enc: Vec<f32>,
    /// `b_enc` [d_sae].
    pub b_enc: Vec<f32>,
    /// `W_dec` [d_sae, d_out], row-major: row j is latent j's direction.
    pub w_dec: Vec<f32>,
    /// `b_dec` [d_out].
    pub b_dec: Vec<f32>,
    /// `threshold` [d_sae]: JumpReLU, and BatchTopK at inference.
    pub threshold: Option<Vec<f32>>,
    /// `W_skip` [d_out, d_in] for skip transcoders.
    pub w_skip: Option<Vec<f32>>,
    /// Subtract `b_dec` from the input before encoding (SAEs; never for transcoders).
    pub apply_b_dec_to_input: bool,
    pub input_norm: InputNorm,
    pub meta: DictionaryMeta,
}

/// Per-row statistics of a LayerNorm'd input, needed to undo the normalisation on decode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowNorm {
    pub mean: f32,
    pub std: f32,
}

/// Sparse codes of a batch: the code-set file's CSR rows ([`CsrRows`], one type for both) plus
/// what decoding needs besides them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SparseCodes {
    pub d_sae: usize,
    /// Row r's active features and values.
    pub csr: CsrRows,
    /// Present when the dictionary LayerNorms its inputs.
    pub row_norm: Option<Vec<RowNorm>>,
}

impl SparseCodes {
    pub fn rows(&self) -> usize {
        self.csr.rows()
    }
    /// Row r's (features, values).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        self.csr.row(r)
    }
    /// Number of stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.csr.nnz()
    }
}

/// Rows encoded per block: bounds the dense pre-activation buffer to block × d_sae floats.
const ENCODE_BLOCK_ROWS: usize = 2048;

impl Dictionary {
    /// Checks that every tensor has the size the dimensions imply.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, expected: usize, got: usize| {
            Err(SaeError::Config(format!(
                "tensor {what} has {got} values, expected {expected}"
            )))
        };
        let (i, s, o) = (self.d_in, self.d_sae, self.d_out);
        if self.w_enc.len() != i * s {
            return bad("W_enc", i * s, self.w_enc.len());
        }
        if self.b_enc.len() != s {
            return bad("b_enc", s, self.b_enc.len());
        }
        if self.w_dec.len() != s * o {
            return bad("W_dec", s * o, self.w_dec.len());
        }
        if self.b_dec.len() != o {
            return bad("b_dec", o, self.b_dec.len());
        }
        if self.apply_b_dec_to_input && i != o {
            return Err(SaeError::Config(
                "apply_b_dec_to_input needs d_in == d_out".into(),
            ));
        }
        match (&self.threshold, self.architecture.uses_threshold()) {
            (Some(t), true) if t.len() != s => return bad("threshold", s, t.len()),
            (None, true) => {
                return Err(SaeError::Config(format!(
                    "{} needs a threshold tensor",
                    self.architecture
                )))
            }
            _ => {}
        }
        if self.architecture == Architecture::TopK && (self.k == 0 || self.k > s) {
            return Err(SaeError::Config(format!(
                "topk needs 0 < k <= d_sae, got k = {}",
                self.k
            )));
        }
        match (&self.w_skip, self.kind) {
            (Some(w), Kind::SkipTranscoder) if w.len() != o * i => bad("W_skip", o * i, w.len()),
            (None, Kind::SkipTranscoder) => {
                Err(SaeError::Config("skip_transcoder needs W_skip".into()))
            }
            (Some(_), _) => Err(SaeError::Config(
                "W_skip present but kind is not skip_transcoder".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Encodes rows of `x` ([rows, d_in], row-major) into sparse codes.
    pub fn encode(&self, x: &[f32]) -> Result<SparseCodes> {
        let rows = check_rows("encode input", x, self.d_in)?;
        let (normalised, row_norm) = self.normalise_input(x);
        let x = normalised.as_deref().unwrap_or(x);
        let mut codes = SparseCodes {
            d_sae: self.d_sae,
            csr: CsrRows::new(),
            row_norm,
        };
        let mut pre = Vec::new();
        for start in (0..rows).step_by(ENCODE_BLOCK_ROWS) {
            let block = (rows - start).min(ENCODE_BLOCK_ROWS);
            let xb = &x[start * self.d_in..(start + block) * self.d_in];
            self.pre_activations(xb, block, &mut pre);
            let d_sae = self.d_sae;
            extend_rows(&mut codes.csr, block, |r, scratch, features, values| {
                self.architecture.activate_row(
                    &pre[r * d_sae..(r + 1) * d_sae],
                    self.k,
                    self.threshold.as_deref(),
                    scratch,
                    features,
                    values,
                )
            });
        }
        Ok(codes)
    }

    /// Dense pre-activations `(x − b_dec·apply) W_enc + b_enc` of `rows` rows into `pre`.
    pub(crate) fn pre_activations(&self, x: &[f32], rows: usize, pre: &mut Vec<f32>) {
        pre.clear();
        pre.resize(rows * self.d_sae, 0.0);
        for row in pre.chunks_mut(self.d_sae) {
            row.copy_from_slice(&self.b_enc);
        }
        let centred;
        let input = if self.apply_b_dec_to_input {
            centred = x
                .chunks(self.d_in)
                .flat_map(|r| r.iter().zip(&self.b_dec).map(|(a, b)| a - b))
                .collect::<Vec<f32>>();
            &centred[..]
        } else {
            x
        };
        matmul(
            pre,
            Operand::plain(input, self.d_in),
            Operand::plain(&self.w_enc, self.d_sae),
            rows,
            self.d_in,
            self.d_sae,
            true,
        );
    }

    /// LayerNorms rows when the dictionary asks for it; returns the normalised copy and stats.
    fn normalise_input(&self, x: &[f32]) -> (Option<Vec<f32>>, Option<Vec<RowNorm>>) {
        match self.input_norm {
            InputNorm::None => (None, None),
            InputNorm::LayerNorm { eps } => {
                let mut out = x.to_vec();
                let stats = out
                    .chunks_mut(self.d_in)
                    .map(|r| layer_norm_row(r, eps))
                    .collect();
                (Some(out), Some(stats))
            }
            InputNorm::BiasedLayerNorm { eps } => {
                let mut out = x.to_vec();
                let stats = out
                    .chunks_mut(self.d_in)
                    .map(|r| biased_layer_norm_row(r, eps))
                    .collect();
                (Some(out), Some(stats))
            }
        }
    }

    /// Decodes codes to [rows, d_out]; undoes a LayerNorm with the codes' row statistics.
    /// A skip transcoder's `x W_skipᵀ` term needs the input: use [`Dictionary::forward`].
    pub fn decode(&self, codes: &SparseCodes) -> Result<Vec<f32>> {
        if codes.d_sae != self.d_sae {
            return Err(SaeError::Shape {
                what: "decode codes".into(),
                expected: self.d_sae,
                got: codes.d_sae,
            });
        }
        let mut out = vec![0.0f32; codes.rows() * self.d_out];
        out.par_chunks_mut(self.d_out)
            .enumerate()
            .for_each(|(r, y)| {
                y.copy_from_slice(&self.b_dec);
                let (features, values) = codes.row(r);
                // Only the active rows of W_dec are read.
                for (&j, &v) in features.iter().zip(values) {
                    let j = j as usize;
                    axpy(v, &self.w_dec[j * self.d_out..(j + 1) * self.d_out], y);
                }
            });
        if let Some(stats) = &codes.row_norm {
            for (y, s) in out.chunks_mut(self.d_out).zip(stats) {
                y.iter_mut().for_each(|v| *v = *v * s.std + s.mean);
            }
        }
        Ok(out)
    }

    /// Encodes and decodes `x`, including the skip path; returns (codes, reconstruction).
    pub fn forward(&self, x: &[f32]) -> Result<(SparseCodes, Vec<f32>)> {
        let codes = self.encode(x)?;
        let mut out = self.decode(&codes)?;
        if let Some(w_skip) = &self.w_skip {
            matmul(
                &mut out,
                Operand::plain(x, self.d_in),
                Operand::transposed(w_skip, self.d_in),
                codes.rows(),
                self.d_in,
                self.d_out,
                true,
            );
        }
        Ok((codes, out))
    }
}

/// LayerNorms one row in place (no affine); returns its mean and unbiased std.
pub(crate) fn layer_norm_row(row: &mut [f32], eps: f32) -> RowNorm {
    let n = row.len();
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
    let std = var.sqrt() as f32;
    let mean = mean as f32;
    row.iter_mut().for_each(|v| *v = (*v - mean) / (std + eps));
    RowNorm { mean, std }
}

/// Rep's per-row normalisation in place: `(x − μ)/√(σ² + eps)` with σ² the biased variance
/// (computed in f64); returns μ and σ = √σ², what Rep's decode multiplies back.
pub(crate) fn biased_layer_norm_row(row: &mut [f32], eps: f32) -> RowNorm {
    let n = row.len().max(1) as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps as f64).sqrt();
    row.iter_mut()
        .for_each(|v| *v = ((*v as f64 - mean) * inv) as f32);
    RowNorm {
        mean: mean as f32,
        std: var.sqrt() as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` as `cfg.json` held it while site and level were strings: a trained dictionary's
    /// and an imported one's (empty strings). Catches a typed field that stops reading them.
    #[test]
    fn site_refs_written_as_strings_still_read() {
        let trained: SiteRef = serde_json::from_str(
            r#"{"model": "m", "layer": 4, "site": "mlp_out", "level": "protein"}"#,
        )
        .unwrap();
        assert_eq!(trained.site, Some(Site::MlpOut));
        assert_eq!(trained.level, Some(Level::Protein));
        let imported: SiteRef =
            serde_json::from_str(r#"{"model": "", "layer": null, "site": "", "level": ""}"#)
                .unwrap();
        assert_eq!(imported, SiteRef::default());
        let back: SiteRef =
            serde_json::from_value(serde_json::to_value(&trained).unwrap()).unwrap();
        assert_eq!(back, trained);
        assert_eq!(serde_json::to_value(&trained).unwrap()["site"], "mlp_out");
        let err = serde_json::from_str::<SiteRef>(r#"{"model": "", "layer": 1, "site": "resid"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown site"), "{err}");
    }
}

//! InterPLM `ae.pt` (and dictionary_learning's, which shares the key names): a torch
//! `state_dict` with nn.Linear weights (`encoder.weight` [d_sae, d_in], `decoder.weight`
//! [d_in, d_sae]), mapped onto our layout by transposing both.
//!
//! The layouts and the inference rule each one follows (`y = x Wᵀ + b` for nn.Linear):
//!
//! | layout | keys | codes `f` | reconstruction |
//! |---|---|---|---|
//! | ReLUSAE | `bias`, `encoder.*`, `decoder.weight` | `relu((x − bias) W_eᵀ + b_e)` | `f W_dᵀ + bias` |
//! | Tied ReLU | `encoder.*`, `decoder.weight`, `decoder.bias` | `relu(x W_eᵀ + b_e)` | `f W_dᵀ + b_d` |
//! | TopK | `encoder.*`, `decoder.weight`, `b_dec`, `k`, `threshold` | `topk_k(relu((x − b_dec) W_eᵀ + b_e))` | `f W_dᵀ + b_dec` |
//! | BatchTopK | same keys as TopK | `g·[g > threshold]`, `g = relu((x − b_dec) W_eᵀ + b_e)` | `f W_dᵀ + b_dec` |
//! | JumpReLU | `encoder.*`, `decoder.*`, `threshold` [d_sae] | `relu(p·[p > threshold])`, `p = x W_eᵀ + b_e` | `f W_dᵀ + b_d` |
//!
//! So ReLUSAE's pre-encoder `bias` is our `b_dec` with `apply_b_dec_to_input` (subtracted from
//! the input, added back on decode); TopK/BatchTopK's `b_dec` likewise; JumpReLU and tied ReLU
//! do not centre the input (`apply_b_dec_to_input = false`, `b_dec` = `decoder.bias`).
//! TopK and BatchTopK share their keys; a `config.json`/`config.yaml` beside the file that names
//! BatchTopK selects the threshold rule, else the per-row top-k rule (InterPLM `TopKSAE.forward`).
//!
//! `activation_rescale_factor` holds each feature's maximum activation `m_j` over InterPLM's
//! calibration set (ones when never computed); InterPLM's normalised codes are `f_j / m_j`.
//! [`InterplmCodes::Raw`] (the default, and what [`super::load`] uses) keeps raw codes, as
//! InterPLM's `encode(x)` and `forward` return them, for every layout; the factor is recorded in
//! `meta.normalisation`. [`InterplmCodes::Normalised`] folds `1/m_j` into encoder column j, its
//! bias and threshold, and `m_j` into decoder row j, which is exact for ReLU, JumpReLU and
//! BatchTopK (positive scaling commutes with relu and thresholds) and refused for TopK (scaling
//! before top-k would change which features win). `normalize_to_sqrt_d = true` (each row scaled
//! to norm √d before encoding) has no counterpart in [`InputNorm`] and is refused.

use std::path::Path;

use plmscope_torchfile::Tensor;
use serde_json::{json, Value};

use super::torch_zip::{self, StateDict};
use crate::architecture::{Architecture, Kind};
use crate::dictionary::{Dictionary, DictionaryMeta, InputNorm};
use crate::error::{Result, SaeError};

/// Which codes an imported InterPLM dictionary produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InterplmCodes {
    /// Raw activations, as InterPLM's `encode(x)` returns them.
    #[default]
    Raw,
    /// Divided by `activation_rescale_factor` (InterPLM's `normalize_features=True`).
    Normalised,
}

/// Choices a bare `ae.pt` cannot make for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InterplmOptions {
    pub codes: InterplmCodes,
    /// Read TopK-shaped keys as BatchTopK (`Some(true)`) or TopK (`Some(false)`); `None`
    /// decides from a config file beside the checkpoint, defaulting to TopK.
    pub batch_topk: Option<bool>,
}

/// Reads an InterPLM checkpoint: the `ae.pt` file, or a directory holding it.
pub fn load_interplm(path: &Path, options: &InterplmOptions) -> Result<Dictionary> {
    let file = if path.is_dir() {
        path.join("ae.pt")
    } else {
        path.to_path_buf()
    };
    let ckpt = torch_zip::read(&file)?;
    if ckpt.tensor("encoder.weight").is_none() {
        return Err(torch_zip::unknown_torch_layout(&file, &ckpt.root));
    }
    from_state_dict(StateDict::new(&file, &ckpt, ""), options)
}

/// The layouts told apart by their keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Relu,
    TiedRelu,
    TopK,
    BatchTopK,
    JumpRelu,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Relu => "relu",
            Layout::TiedRelu => "tied_relu",
            Layout::TopK => "topk",
            Layout::BatchTopK => "batchtopk",
            Layout::JumpRelu => "jumprelu",
        }
    }
}

const BOOKKEEPING: [&str; 2] = ["activation_rescale_factor", "normalize_to_sqrt_d"];

fn layout(sd: &StateDict, options: &InterplmOptions) -> Result<Layout> {
    let has_all = |names: &[&str]| names.iter().all(|n| sd.has(n));
    let linear = has_all(&["encoder.weight", "encoder.bias", "decoder.weight"]);
    let found = if !linear {
        None
    } else if has_all(&["bias"]) && !sd.has("decoder.bias") {
        Some((Layout::Relu, &["bias"][..]))
    } else if has_all(&["b_dec", "k"]) {
        let batch = options
            .batch_topk
            .unwrap_or_else(|| config_names_batch_topk(&sd.path));
        let l = if batch {
            Layout::BatchTopK
        } else {
            Layout::TopK
        };
        Some((l, &["b_dec", "k", "threshold"][..]))
    } else if has_all(&["decoder.bias", "threshold"]) {
        Some((Layout::JumpRelu, &["decoder.bias", "threshold"][..]))
    } else if has_all(&["decoder.bias"]) {
        Some((Layout::TiedRelu, &["decoder.bias"][..]))
    } else {
        None
    };
    let Some((layout, extra)) = found else {
        return Err(SaeError::UnsupportedFormat {
            path: sd.path.clone(),
            message: format!(
                "not a known InterPLM layout; keys found: {}. Known: ReLUSAE (bias, encoder.weight, \
                 encoder.bias, decoder.weight), TopK/BatchTopK (encoder.*, decoder.weight, b_dec, k, \
                 threshold), JumpReLU (encoder.*, decoder.weight, decoder.bias, threshold), tied ReLU \
                 (encoder.*, decoder.weight, decoder.bias)",
                sd.key_list()
            ),
        });
    };
    // A key we would ignore may change the formula (a gate, a second bias): refuse rather than guess.
    let known = |k: &str| {
        k.starts_with("encoder.")
            || k == "decoder.weight"
            || extra.contains(&k)
            || BOOKKEEPING.contains(&k)
    };
    let stray: Vec<&str> = sd
        .keys
        .iter()
        .map(String::as_str)
        .filter(|k| !known(k))
        .collect();
    if !stray.is_empty() {
        return Err(SaeError::UnsupportedFormat {
            path: sd.path.clone(),
            message: format!(
                "InterPLM {} layout with unexpected keys {}; keys found: {}",
                layout.name(),
                stray.join(", "),
                sd.key_list()
            ),
        });
    }
    Ok(layout)
}

/// Whether a trainer config beside the checkpoint names a BatchTopK dictionary or trainer.
fn config_names_batch_topk(checkpoint: &Path) -> bool {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    ["config.json", "config.yaml"].iter().any(|name| {
        std::fs::read_to_string(dir.join(name)).is_ok_and(|text| text.contains("BatchTopK"))
    })
}

pub(crate) fn from_state_dict(sd: StateDict, options: &InterplmOptions) -> Result<Dictionary> {
    let layout = layout(&sd, options)?;
    if sd.has("normalize_to_sqrt_d")
        && sd.scalar("normalize_to_sqrt_d", "bool", Tensor::scalar_bool)?
    {
        return Err(SaeError::UnsupportedFormat {
            path: sd.path.clone(),
            message: "normalize_to_sqrt_d = true: InterPLM scales each input row to norm √d before \
                      encoding and back after decoding, a per-row scaling plmscope dictionaries do \
                      not have (InputNorm is none or layer_norm); refusing rather than giving other codes"
                .into(),
        });
    }
    let shape = sd.shape("encoder.weight").unwrap_or(&[]).to_vec();
    let [d_sae, d_in] = shape[..] else {
        return Err(SaeError::tensors(
            &sd.path,
            format!("encoder.weight has shape {shape:?}, expected [d_sae, d_in]"),
        ));
    };
    let mut w_enc = sd.f32_transposed("encoder.weight", d_sae, d_in)?;
    let mut b_enc = sd.f32("encoder.bias", &[d_sae])?;
    let mut w_dec = sd.f32_transposed("decoder.weight", d_in, d_sae)?;
    let (architecture, apply_b_dec_to_input, b_dec_name) = match layout {
        Layout::Relu => (Architecture::Relu, true, "bias"),
        Layout::TiedRelu => (Architecture::Relu, false, "decoder.bias"),
        Layout::TopK => (Architecture::TopK, true, "b_dec"),
        Layout::BatchTopK => (Architecture::BatchTopK, true, "b_dec"),
        Layout::JumpRelu => (Architecture::JumpRelu, false, "decoder.bias"),
    };
    let b_dec = sd.f32(b_dec_name, &[d_in])?;
    let k = if sd.has("k") {
        let k = sd.scalar("k", "integer", Tensor::scalar_i64)?;
        usize::try_from(k)
            .map_err(|_| SaeError::tensors(&sd.path, format!("k = {k} is negative")))?
    } else {
        0
    };
    // TopK keeps its (optional) scalar threshold for the record only: InterPLM's TopK forward
    // ignores it.
    let scalar_threshold =
        if sd.has("threshold") && matches!(layout, Layout::TopK | Layout::BatchTopK) {
            Some(sd.scalar("threshold", "float", Tensor::scalar_f64)? as f32)
        } else {
            None
        };
    let mut threshold = match layout {
        Layout::JumpRelu => Some(sd.f32("threshold", &[d_sae])?),
        // A scalar threshold on relu'd values; -1 (never learned) lets every positive value through,
        // which our rule `pre > t && pre > 0` reproduces.
        Layout::BatchTopK => Some(vec![scalar_threshold.unwrap_or(-1.0); d_sae]),
        _ => None,
    };
    let factor = if sd.has("activation_rescale_factor") {
        sd.f32("activation_rescale_factor", &[d_sae])?
    } else {
        vec![1.0; d_sae]
    };
    let trivial = factor.iter().all(|&m| m == 1.0);
    let mut unusable = 0usize;
    if options.codes == InterplmCodes::Normalised && !trivial {
        if layout == Layout::TopK {
            return Err(SaeError::UnsupportedFormat {
                path: sd.path.clone(),
                message:
                    "normalised codes cannot be folded into a TopK dictionary (scaling before \
                          top-k changes which features win); load raw codes and divide by \
                          meta.normalisation.activation_rescale_factor"
                        .into(),
            });
        }
        for (j, &m) in factor.iter().enumerate() {
            // A feature that never fired on the calibration set has m = 0; InterPLM would divide
            // by zero. Leave it raw and count it.
            if !(m.is_finite() && m > 0.0) {
                unusable += 1;
                continue;
            }
            w_enc
                .iter_mut()
                .skip(j)
                .step_by(d_sae)
                .for_each(|w| *w /= m);
            b_enc[j] /= m;
            if let Some(t) = threshold.as_mut() {
                t[j] /= m;
            }
            w_dec[j * d_in..(j + 1) * d_in]
                .iter_mut()
                .for_each(|w| *w *= m);
        }
    }
    let codes = match options.codes {
        InterplmCodes::Normalised if !trivial => "normalised",
        _ => "raw",
    };
    let meta = DictionaryMeta {
        imported_from: Some(format!(
            "interplm ae.pt ({}, {})",
            layout.name(),
            sd.dtype_name("encoder.weight")
        )),
        hyperparameters: json!({
            "layout": layout.name(),
            "k": if sd.has("k") { json!(k) } else { Value::Null },
            "threshold": scalar_threshold,
            "config": sibling_config(&sd.path),
        }),
        normalisation: json!({
            "codes": codes,
            "activation_rescale_factor": if trivial { json!("ones") } else { json!(factor) },
            "features_left_raw": unusable,
            "normalize_to_sqrt_d": false,
        }),
        ..Default::default()
    };
    let dict = Dictionary {
        architecture,
        kind: Kind::Sae,
        d_in,
        d_sae,
        d_out: d_in,
        k,
        w_enc,
        b_enc,
        w_dec,
        b_dec,
        threshold: threshold.take(),
        w_skip: None,
        apply_b_dec_to_input,
        input_norm: InputNorm::None,
        meta,
    };
    dict.validate().map_err(|e| SaeError::UnsupportedFormat {
        path: sd.path.clone(),
        message: e.to_string(),
    })?;
    Ok(dict)
}

/// The trainer config beside the checkpoint, for the record: JSON as parsed, YAML as text.
fn sibling_config(checkpoint: &Path) -> Value {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    if let Ok(text) = std::fs::read_to_string(dir.join("config.json")) {
        return serde_json::from_str(&text).unwrap_or(Value::String(text));
    }
    std::fs::read_to_string(dir.join("config.yaml")).map_or(Value::Null, Value::String)
}

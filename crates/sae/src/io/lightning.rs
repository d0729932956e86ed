//! The seed paper's ("Rep") PyTorch Lightning `.ckpt`: a dict whose `state_dict` holds
//! `model.weights.0` W_enc [d_in, d_sae], `.1` W_dec [d_sae, d_in], `.2` b_enc [d_sae],
//! `.3` b_dec [d_in] and `model.neuron_idle_counts` [d_sae], and whose `hyper_parameters`
//! hold `k`. Optimiser state, loops and callbacks are read past, not used.
//!
//! Rep's rule (`TopKAuto.forward` and `FeatureNormalizer` in Rep's
//! `Folder_Random_Seed_Regular_Pooling_Scripts/sparse_auto_script.py`), with `μ`, `σ²` the mean
//! and biased variance of a row over its d values:
//! `n = (x − μ) / √(σ² + 1e-5)`, `f = relu(topk_k((n − b_dec) W_enc + b_enc))`,
//! `x̂ = (f W_dec + b_dec) · σ + μ`. That is [`InputNorm::BiasedLayerNorm`] with eps 1e-5 and
//! the weights as stored, so the reader is exact.

use std::path::Path;

use plmscope_torchfile::{TensorData, TorchCheckpoint, Value};
use serde_json::json;

use super::torch_zip::StateDict;
use crate::architecture::{Architecture, Kind};
use crate::dictionary::{Dictionary, DictionaryMeta, InputNorm};
use crate::error::{Result, SaeError};
use crate::record::TrainingRecord;

const WEIGHTS: [&str; 4] = [
    "model.weights.0",
    "model.weights.1",
    "model.weights.2",
    "model.weights.3",
];
const IDLE_COUNTS: &str = "model.neuron_idle_counts";
/// `FeatureNormalizer.forward(x, epsilon=1e-5)` in Rep's `sparse_auto_script.py`.
const REP_LAYER_NORM_EPS: f32 = 1e-5;
/// Rep's default `inactive_threshold` (batches without firing before a latent counts as dead).
const DEFAULT_INACTIVE_THRESHOLD: i64 = 200;

pub(crate) fn from_checkpoint(path: &Path, ckpt: &TorchCheckpoint) -> Result<Dictionary> {
    let sd = StateDict::new(path, ckpt, "state_dict.");
    let stray: Vec<&str> = sd
        .keys
        .iter()
        .map(String::as_str)
        .filter(|k| !WEIGHTS.contains(k) && *k != IDLE_COUNTS)
        .collect();
    if !WEIGHTS.iter().all(|w| sd.has(w)) || !stray.is_empty() {
        return Err(SaeError::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!(
                "a Lightning checkpoint whose state_dict is not Rep's TopK SAE (model.weights.0..3, \
                 model.neuron_idle_counts); state_dict keys found: {}",
                sd.key_list()
            ),
        });
    }
    let hparams = ckpt.root.get("hyper_parameters");
    let k = hparams
        .and_then(|h| h.get("k"))
        .and_then(Value::as_i64)
        .ok_or_else(|| SaeError::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!(
                "hyper_parameters has no integer k (Rep's TopK needs it); hyper_parameters keys: {}",
                hparams.map(|h| h.keys().join(", ")).unwrap_or_else(|| "(none)".into())
            ),
        })?;
    let k = usize::try_from(k)
        .map_err(|_| SaeError::tensors(path, format!("hyper_parameters.k = {k} is negative")))?;
    let shape = sd.shape(WEIGHTS[0]).unwrap_or(&[]).to_vec();
    let [d_in, d_sae] = shape[..] else {
        return Err(SaeError::tensors(
            path,
            format!("{} has shape {shape:?}, expected [d_in, d_sae]", WEIGHTS[0]),
        ));
    };
    if d_in < 2 {
        return Err(SaeError::tensors(
            path,
            "d_in < 2: a row LayerNorm needs two values",
        ));
    }
    let w_enc = sd.f32(WEIGHTS[0], &[d_in, d_sae])?;
    let w_dec = sd.f32(WEIGHTS[1], &[d_sae, d_in])?;
    let b_enc = sd.f32(WEIGHTS[2], &[d_sae])?;
    let b_dec = sd.f32(WEIGHTS[3], &[d_in])?;

    let inactive_threshold = hparams
        .and_then(|h| h.get("inactive_threshold"))
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_INACTIVE_THRESHOLD);
    // Latents idle for more batches than the threshold are what Rep counts as dead.
    let dead_fraction = match sd.tensors.get(IDLE_COUNTS).map(|t| &t.data) {
        Some(TensorData::Int(idle)) if idle.len() == d_sae => {
            let dead = idle.iter().filter(|&&n| n > inactive_threshold).count();
            Some(dead as f64 / d_sae as f64)
        }
        _ => None,
    };
    let root_u64 = |name: &str| {
        ckpt.root
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|v| u64::try_from(v).ok())
    };
    let mut meta = DictionaryMeta {
        imported_from: Some(format!(
            "rep lightning .ckpt ({}, lightning {})",
            sd.dtype_name(WEIGHTS[0]),
            ckpt.root
                .get("pytorch-lightning_version")
                .and_then(Value::as_str)
                .unwrap_or("?")
        )),
        hyperparameters: hparams.map_or(serde_json::Value::Null, Value::to_json),
        normalisation: json!({
            "input": "per-row layer norm, undone on decode",
            "rep_convention": "biased variance, eps 1e-5 inside the square root",
        }),
        training: TrainingRecord {
            epoch: root_u64("epoch"),
            global_step: root_u64("global_step"),
            inactive_threshold: Some(inactive_threshold),
            ..Default::default()
        }
        .to_json(),
        ..Default::default()
    };
    meta.metrics.dead_fraction = dead_fraction;
    let dict = Dictionary {
        architecture: Architecture::TopK,
        kind: Kind::Sae,
        d_in,
        d_sae,
        d_out: d_in,
        k,
        w_enc,
        b_enc,
        w_dec,
        b_dec,
        threshold: None,
        w_skip: None,
        apply_b_dec_to_input: true,
        input_norm: InputNorm::BiasedLayerNorm {
            eps: REP_LAYER_NORM_EPS,
        },
        meta,
    };
    dict.validate().map_err(|e| SaeError::UnsupportedFormat {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(dict)
}

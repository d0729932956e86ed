//! Readers for other projects' safetensors checkpoints (EleutherAI sparsify, InterProt), and
//! the dispatch of single files to the torch readers.

use std::path::Path;

use serde_json::Value;

use super::tensors::TensorFile;
use super::torch_zip::{self, FileKind};
use crate::architecture::{Architecture, Kind};
use crate::dictionary::{Dictionary, DictionaryMeta, InputNorm};
use crate::error::{Result, SaeError};

/// sparsify: `encoder.weight` [d_sae, d_in], `encoder.bias`, `W_dec` [d_sae, d_out], `b_dec`,
/// optional `W_skip` [d_out, d_in]; encode = topk(relu((x − b_dec) Wᵀ + b)) (no centring when
/// `transcode`). The file's dtype (bf16, f16, f32) is read as stored.
pub(crate) fn sparsify(mut file: TensorFile, cfg: &Value, cfg_path: &Path) -> Result<Dictionary> {
    let activation = cfg
        .get("activation")
        .and_then(Value::as_str)
        .unwrap_or("topk");
    if activation != "topk" {
        return Err(SaeError::UnsupportedFormat {
            path: cfg_path.to_path_buf(),
            message: format!("sparsify activation {activation:?} is not supported (only topk)"),
        });
    }
    let k = cfg
        .get("k")
        .and_then(Value::as_u64)
        .ok_or_else(|| SaeError::json(cfg_path, "sparsify cfg.json has no integer k"))?
        as usize;
    let shape = file.shape("encoder.weight").unwrap_or(&[]).to_vec();
    let [d_sae, d_in] = shape[..] else {
        return Err(SaeError::tensors(
            &file.path,
            format!("encoder.weight has shape {shape:?}, expected [num_latents, d_in]"),
        ));
    };
    let d_out = file
        .shape("W_dec")
        .and_then(|s| s.get(1).copied())
        .unwrap_or(d_in);
    let transcode = cfg
        .get("transcode")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let skip = file.has("W_skip");
    let enc = file.take("encoder.weight", &[d_sae, d_in])?;
    let mut w_enc = vec![0.0f32; d_in * d_sae];
    for j in 0..d_sae {
        for i in 0..d_in {
            w_enc[i * d_sae + j] = enc[j * d_in + i];
        }
    }
    let dict = Dictionary {
        architecture: Architecture::TopK,
        kind: match (transcode || d_out != d_in, skip) {
            (_, true) => Kind::SkipTranscoder,
            (true, false) => Kind::Transcoder,
            (false, false) => Kind::Sae,
        },
        d_in,
        d_sae,
        d_out,
        k,
        w_enc,
        b_enc: file.take("encoder.bias", &[d_sae])?,
        w_dec: file.take("W_dec", &[d_sae, d_out])?,
        b_dec: file.take("b_dec", &[d_out])?,
        threshold: None,
        w_skip: if skip {
            Some(file.take("W_skip", &[d_out, d_in])?)
        } else {
            None
        },
        apply_b_dec_to_input: !transcode,
        input_norm: InputNorm::None,
        meta: DictionaryMeta {
            imported_from: Some(format!("sparsify ({})", file.dtype)),
            hyperparameters: cfg.clone(),
            ..Default::default()
        },
    };
    dict.validate().map_err(|e| SaeError::UnsupportedFormat {
        path: file.path.clone(),
        message: e.to_string(),
    })?;
    Ok(dict)
}

/// InterProt safetensors: `w_enc` [d, h], `w_dec` [h, d], `b_enc` [h], `b_pre` [d]; inputs are
/// LayerNorm'd per token (OpenAI's `LN`, eps 1e-5) and the output un-normalised. The file does
/// not record k (InterProt names it in the file name), so the caller gives it.
pub fn load_interprot(path: &Path, k: usize) -> Result<Dictionary> {
    let mut file = TensorFile::read(path)?;
    if !file.has("w_enc") {
        return Err(unknown_layout(&file));
    }
    let shape = file.shape("w_enc").unwrap_or(&[]).to_vec();
    let [d_in, d_sae] = shape[..] else {
        return Err(SaeError::tensors(
            path,
            format!("w_enc has shape {shape:?}, expected [d_model, d_hidden]"),
        ));
    };
    let dict = Dictionary {
        architecture: Architecture::TopK,
        kind: Kind::Sae,
        d_in,
        d_sae,
        d_out: d_in,
        k,
        w_enc: file.take("w_enc", &[d_in, d_sae])?,
        b_enc: file.take("b_enc", &[d_sae])?,
        w_dec: file.take("w_dec", &[d_sae, d_in])?,
        b_dec: file.take("b_pre", &[d_in])?,
        threshold: None,
        w_skip: None,
        apply_b_dec_to_input: true,
        input_norm: InputNorm::LayerNorm { eps: 1e-5 },
        meta: DictionaryMeta {
            imported_from: Some(format!("interprot ({})", file.dtype)),
            ..Default::default()
        },
    };
    dict.validate().map_err(|e| SaeError::UnsupportedFormat {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(dict)
}

/// A single file given to `load`: torch checkpoints by content, else safetensors (refusing
/// InterProt-without-k clearly).
pub(crate) fn load_file(path: &Path) -> Result<Dictionary> {
    match torch_zip::sniff(path)? {
        FileKind::TorchZip => return torch_zip::load(path),
        FileKind::LegacyPickle => {
            return Err(SaeError::UnsupportedFormat {
                path: path.to_path_buf(),
                message: "a pre-1.6 (non-zip) torch pickle; re-save it with torch>=1.6 \
                          `torch.save(torch.load(path, weights_only=True), path)`"
                    .into(),
            })
        }
        FileKind::Other => {}
    }
    let file = TensorFile::read(path)?;
    if file.has("w_enc") && file.has("b_pre") {
        return Err(SaeError::UnsupportedFormat {
            path: path.to_path_buf(),
            message: "an InterProt SAE: its k is not in the file; use load_interprot(path, k)"
                .into(),
        });
    }
    Err(unknown_layout(&file))
}

pub(crate) fn unknown_layout(file: &TensorFile) -> SaeError {
    SaeError::UnsupportedFormat {
        path: file.path.clone(),
        message: format!(
            "unknown dictionary layout; tensors found: {}. Known: SAELens/plmscope (W_enc, b_enc, W_dec, b_dec), \
             sparsify (encoder.weight, encoder.bias, W_dec, b_dec), InterProt (w_enc, w_dec, b_enc, b_pre); \
             InterPLM ae.pt and Rep .ckpt are read from torch zip files",
            file.names()
        ),
    }
}

//! Checkpoints: our directory format (SAELens-compatible `cfg.json` + `sae_weights.safetensors`),
//! and readers for EleutherAI sparsify and InterProt (safetensors), InterPLM `ae.pt` and the
//! seed paper's Lightning `.ckpt` (torch zip pickles, read without executing them).
//!
//! [`load`] detects the format from the file's content and the layout from the tensors or keys
//! it finds, and refuses unknown ones, naming what it found.

mod foreign;
mod interplm;
mod lightning;
pub(crate) mod tensors;
mod torch_zip;

use std::path::Path;

use serde_json::{json, Value};

pub use interplm::{InterplmCodes, InterplmOptions};

use crate::architecture::{Architecture, Kind};
use crate::dictionary::{Dictionary, DictionaryMeta, InputNorm, SiteRef};
use crate::error::{Result, SaeError};
use plmscope_store::Site;
use tensors::{write_atomic, write_tensors, OutTensor, TensorFile};

/// Weights file name (SAELens'); readers also accept the older `sae.safetensors`.
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";
pub const CONFIG_FILE: &str = "cfg.json";

/// Writes `dict` into directory `dir` (created if needed) as `cfg.json` + `sae_weights.safetensors`.
pub fn save(dict: &Dictionary, dir: &Path) -> Result<()> {
    dict.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
    let (i, s, o) = (dict.d_in, dict.d_sae, dict.d_out);
    let mut tensors = vec![
        ("W_enc".to_string(), OutTensor::F32(&dict.w_enc, vec![i, s])),
        ("b_enc".to_string(), OutTensor::F32(&dict.b_enc, vec![s])),
        ("W_dec".to_string(), OutTensor::F32(&dict.w_dec, vec![s, o])),
        ("b_dec".to_string(), OutTensor::F32(&dict.b_dec, vec![o])),
    ];
    if let Some(t) = &dict.threshold {
        tensors.push(("threshold".to_string(), OutTensor::F32(t, vec![s])));
    }
    if let Some(w) = &dict.w_skip {
        tensors.push(("W_skip".to_string(), OutTensor::F32(w, vec![o, i])));
    }
    write_tensors(&dir.join(WEIGHTS_FILE), tensors, None)?;
    let cfg = config_json(dict);
    let text =
        serde_json::to_string_pretty(&cfg).map_err(|e| SaeError::json(dir, e.to_string()))?;
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
}

fn config_json(dict: &Dictionary) -> Value {
    let m = &dict.meta;
    let site = m.source.site.map_or("", Site::name);
    let hook_name = match m.source.layer {
        Some(l) => format!("layers.{l}.{site}"),
        None => site.to_string(),
    };
    let mut cfg = json!({
        "architecture": dict.architecture.saelens_name(dict.kind),
        "d_in": dict.d_in,
        "d_sae": dict.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": dict.apply_b_dec_to_input,
        "normalize_activations": match dict.input_norm {
            InputNorm::None => "none",
            // SAELens' nearest rule (unbiased std, eps outside); our `plmscope.input_norm`
            // says which one exactly, and our reader prefers it.
            InputNorm::LayerNorm { .. } | InputNorm::BiasedLayerNorm { .. } => "layer_norm",
        },
        "reshape_activations": "none",
        "metadata": { "model_name": m.source.model, "hook_name": hook_name },
        "plmscope": {
            "format_version": 1,
            "architecture": dict.architecture,
            "kind": dict.kind,
            "k": dict.k,
            "d_out": dict.d_out,
            "input_norm": dict.input_norm,
            "source": m.source,
            "target": m.target,
            "normalisation": m.normalisation,
            "hyperparameters": m.hyperparameters,
            "metrics": m.metrics,
            "imported_from": m.imported_from,
            "training": m.training,
        },
    });
    if dict.architecture == Architecture::TopK {
        cfg["k"] = json!(dict.k);
        // Our decoder rows need not be unit norm (the seed paper trains without it); SAELens
        // would otherwise rescale activations by them.
        cfg["rescale_acts_by_decoder_norm"] = json!(false);
    }
    if dict.kind != Kind::Sae {
        cfg["d_out"] = json!(dict.d_out);
    }
    cfg
}

/// The weights file of a checkpoint: `path` itself when it is a file, else
/// `sae_weights.safetensors` (or the older `sae.safetensors`, or InterPLM's `ae.pt`) inside
/// the directory.
pub fn weights_path(path: &Path) -> Result<std::path::PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    [WEIGHTS_FILE, "sae.safetensors", "ae.pt"]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| SaeError::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!("no {WEIGHTS_FILE}, sae.safetensors or ae.pt in this directory"),
        })
}

/// sha256 (hex) of a checkpoint's weights file, to tie results (code sets) to exact weights.
pub fn weights_sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let file = weights_path(path)?;
    let mut reader = std::fs::File::open(&file).map_err(|e| SaeError::io(&file, e))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut reader, &mut hasher).map_err(|e| SaeError::io(&file, e))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Reads a dictionary from a directory (ours, SAELens, sparsify; InterPLM's holding `ae.pt`)
/// or a file: a torch zip checkpoint (InterPLM `ae.pt` with raw codes, see [`load_interplm`]
/// for options; Rep Lightning `.ckpt`) or safetensors (InterProt needs [`load_interprot`] with k).
/// Weights holding NaN or ±inf are refused, naming the file and tensor.
pub fn load(path: &Path) -> Result<Dictionary> {
    let (dict, foreign_names) = load_any(path)?;
    refuse_non_finite(dict, path, foreign_names)
}

/// Reads an InterPLM checkpoint: the `ae.pt` file, or a directory holding it.
pub fn load_interplm(path: &Path, options: &InterplmOptions) -> Result<Dictionary> {
    let dict = interplm::load_interplm(path, options)?;
    refuse_non_finite(dict, path, true)
}

/// Reads an InterProt safetensors file (`w_enc`, `w_dec`, `b_enc`, `b_pre`), which does not
/// record its k.
pub fn load_interprot(path: &Path, k: usize) -> Result<Dictionary> {
    let dict = foreign::load_interprot(path, k)?;
    refuse_non_finite(dict, path, true)
}

/// A dictionary whose weights hold NaN or ±inf encodes every row into garbage without a
/// word; this refuses it, naming the weights file, the tensor (with the file's own name
/// when the format is foreign) and the first bad position.
/// `foreign_names`: the file was read by a foreign reader, so `meta.imported_from` names the
/// layout of this file (not of an earlier import re-saved in our format).
fn refuse_non_finite(dict: Dictionary, path: &Path, foreign_names: bool) -> Result<Dictionary> {
    let mut tensors: Vec<(&str, &[f32], usize)> = vec![
        ("W_enc", &dict.w_enc, dict.d_sae),
        ("b_enc", &dict.b_enc, dict.d_sae),
        ("W_dec", &dict.w_dec, dict.d_out),
        ("b_dec", &dict.b_dec, dict.d_out),
    ];
    if let Some(t) = &dict.threshold {
        tensors.push(("threshold", t, dict.d_sae));
    }
    if let Some(w) = &dict.w_skip {
        tensors.push(("W_skip", w, dict.d_in));
    }
    for (name, data, width) in tensors {
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        let Some(pos) = data.iter().position(|v| !v.is_finite()) else {
            continue;
        };
        let file = weights_path(path).unwrap_or_else(|_| path.to_path_buf());
        let theirs = foreign_names
            .then(|| file_tensor_name(dict.meta.imported_from.as_deref(), name))
            .flatten();
        let shown = match theirs {
            Some(theirs) => format!("{theirs} (read as {name})"),
            None => name.to_string(),
        };
        let at = if data.len() > width {
            format!("[{}, {}]", pos / width, pos % width)
        } else {
            format!("[{pos}]")
        };
        return Err(SaeError::tensors(
            file,
            format!(
                "tensor {shown} holds {bad} non-finite value(s), the first {} at {at}: the \
                 checkpoint is damaged or its training diverged; retrain it or use an earlier \
                 checkpoint",
                data[pos]
            ),
        ));
    }
    Ok(dict)
}

/// The tensor's name in a foreign file, from the `imported_from` the readers record.
fn file_tensor_name(imported_from: Option<&str>, ours: &str) -> Option<&'static str> {
    let format = imported_from?.split_whitespace().next()?;
    Some(match (format, ours) {
        ("rep", "W_enc") => "model.weights.0",
        ("rep", "W_dec") => "model.weights.1",
        ("rep", "b_enc") => "model.weights.2",
        ("rep", "b_dec") => "model.weights.3",
        ("sparsify" | "interplm", "W_enc") => "encoder.weight",
        ("sparsify" | "interplm", "b_enc") => "encoder.bias",
        ("interplm", "W_dec") => "decoder.weight",
        ("interplm", "b_dec") => "bias / b_dec / decoder.bias",
        ("interprot", "W_enc") => "w_enc",
        ("interprot", "W_dec") => "w_dec",
        ("interprot", "b_enc") => "b_enc",
        ("interprot", "b_dec") => "b_pre",
        _ => return None,
    })
}

/// The dictionary, and whether the file's tensors have a foreign reader's names.
fn load_any(path: &Path) -> Result<(Dictionary, bool)> {
    if path.is_file() {
        return Ok((foreign::load_file(path)?, true));
    }
    if !path.join(CONFIG_FILE).is_file() && path.join("ae.pt").is_file() {
        let dict = interplm::load_interplm(path, &InterplmOptions::default())?;
        return Ok((dict, true));
    }
    let cfg_path = path.join(CONFIG_FILE);
    let weights = weights_path(path)?;
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| SaeError::io(&cfg_path, e))?;
    let cfg: Value =
        serde_json::from_str(&text).map_err(|e| SaeError::json(&cfg_path, e.to_string()))?;
    let file = TensorFile::read(&weights)?;
    if file.has("encoder.weight") {
        return Ok((foreign::sparsify(file, &cfg, &cfg_path)?, true));
    }
    if file.has("W_enc") {
        return Ok((saelens(file, &cfg, &cfg_path)?, false));
    }
    Err(foreign::unknown_layout(&file))
}

/// `plmscope.source` / `plmscope.target`: absent or `null` reads as unrecorded; anything else
/// must parse (an unknown site is an error naming the file, not a silently dropped layer).
fn site_ref(ours: &Value, field: &str, cfg_path: &Path) -> Result<SiteRef> {
    match &ours[field] {
        Value::Null => Ok(SiteRef::default()),
        v => serde_json::from_value(v.clone())
            .map_err(|e| SaeError::json(cfg_path, format!("plmscope.{field}: {e}"))),
    }
}

/// Our format and SAELens': tensors `W_enc`, `b_enc`, `W_dec`, `b_dec` (+ `threshold`, `W_skip`).
fn saelens(mut file: TensorFile, cfg: &Value, cfg_path: &Path) -> Result<Dictionary> {
    let ours = cfg.get("plmscope");
    let arch_name = str_field(cfg, "architecture", cfg_path)?;
    let (architecture, kind) = match ours {
        Some(o) => (
            serde_json::from_value(o["architecture"].clone())
                .map_err(|e| SaeError::json(cfg_path, format!("plmscope.architecture: {e}")))?,
            serde_json::from_value(o["kind"].clone())
                .map_err(|e| SaeError::json(cfg_path, format!("plmscope.kind: {e}")))?,
        ),
        None => match arch_name {
            "transcoder" => (Architecture::Relu, Kind::Transcoder),
            "skip_transcoder" => (Architecture::Relu, Kind::SkipTranscoder),
            "jumprelu_transcoder" => (Architecture::JumpRelu, Kind::Transcoder),
            other => (Architecture::from_name(other)?, Kind::Sae),
        },
    };
    let shape = file.shape("W_enc").unwrap_or(&[]).to_vec();
    let [d_in, d_sae] = shape[..] else {
        return Err(SaeError::tensors(
            &file.path,
            format!("W_enc has shape {shape:?}, expected [d_in, d_sae]"),
        ));
    };
    let d_out = file
        .shape("W_dec")
        .and_then(|s| s.get(1).copied())
        .unwrap_or(d_in);
    let k = cfg
        .get("k")
        .or(ours.and_then(|o| o.get("k")))
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let input_norm = match (ours.map(|o| o["input_norm"].clone()), cfg.get("normalize_activations").and_then(Value::as_str)) {
        (Some(v), _) if !v.is_null() => {
            serde_json::from_value(v).map_err(|e| SaeError::json(cfg_path, format!("plmscope.input_norm: {e}")))?
        }
        (_, None | Some("none")) => InputNorm::None,
        (_, Some("layer_norm")) => InputNorm::LayerNorm { eps: 1e-5 },
        (_, Some(other)) => {
            return Err(SaeError::UnsupportedFormat {
                path: cfg_path.to_path_buf(),
                message: format!("normalize_activations = {other:?} needs statistics this file does not carry; fold it into the weights first"),
            })
        }
    };
    if cfg
        .get("rescale_acts_by_decoder_norm")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(SaeError::UnsupportedFormat {
            path: cfg_path.to_path_buf(),
            message: "rescale_acts_by_decoder_norm = true is not folded into the weights; save it with SAELens' fold first".into(),
        });
    }
    let meta = match ours {
        Some(o) => DictionaryMeta {
            source: site_ref(o, "source", cfg_path)?,
            target: site_ref(o, "target", cfg_path)?,
            normalisation: o["normalisation"].clone(),
            hyperparameters: o["hyperparameters"].clone(),
            metrics: serde_json::from_value(o["metrics"].clone()).unwrap_or_default(),
            imported_from: serde_json::from_value(o["imported_from"].clone()).unwrap_or_default(),
            training: o.get("training").cloned().unwrap_or_default(),
        },
        None => DictionaryMeta {
            imported_from: Some("saelens".into()),
            ..Default::default()
        },
    };
    let dict = Dictionary {
        architecture,
        kind,
        d_in,
        d_sae,
        d_out,
        k,
        w_enc: file.take("W_enc", &[d_in, d_sae])?,
        b_enc: file.take("b_enc", &[d_sae])?,
        w_dec: file.take("W_dec", &[d_sae, d_out])?,
        b_dec: file.take("b_dec", &[d_out])?,
        threshold: if file.has("threshold") {
            Some(file.take("threshold", &[d_sae])?)
        } else {
            None
        },
        w_skip: if file.has("W_skip") {
            Some(file.take("W_skip", &[d_out, d_in])?)
        } else {
            None
        },
        apply_b_dec_to_input: cfg
            .get("apply_b_dec_to_input")
            .and_then(Value::as_bool)
            .unwrap_or(kind == Kind::Sae),
        input_norm,
        meta,
    };
    dict.validate().map_err(|e| SaeError::UnsupportedFormat {
        path: file.path.clone(),
        message: e.to_string(),
    })?;
    Ok(dict)
}

pub(crate) fn str_field<'a>(cfg: &'a Value, name: &str, path: &Path) -> Result<&'a str> {
    cfg.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SaeError::json(path, format!("missing string field {name:?}")))
}

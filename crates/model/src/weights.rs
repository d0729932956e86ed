//! Reading checkpoints into named f32 tensors under HF `EsmForMaskedLM` names (without the
//! `esm.` prefix): HF `model.safetensors`, HF `pytorch_model.bin` and fair-esm `.pt`.

use crate::config::{EsmConfig, ARCHITECTURES};
use crate::error::ModelError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Named tensors of one checkpoint, f32, with shapes.
pub struct TensorMap {
    pub path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl TensorMap {
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(s, _)| s.as_slice())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// Removes and returns a tensor, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let found = self.tensors.len();
        let (s, data) = self
            .tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                found,
            })?;
        if s != shape {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: name.into(),
                expected: shape.to_vec(),
                found: s,
            });
        }
        Ok(data)
    }
}

/// A checkpoint found on disk: its config, its weights file and that file's sha256.
pub struct Checkpoint {
    pub config: EsmConfig,
    pub weights_file: PathBuf,
    pub weights_sha256: String,
    pub tensors: TensorMap,
}

/// Opens a checkpoint directory (`config.json` + `model.safetensors` or `pytorch_model.bin`)
/// or a single weights file (`.safetensors`, `.bin`, fair-esm `.pt`), using a `config.json`
/// beside it when there is one. Without `config.json` the config is inferred from tensor shapes and the published ESM2 head counts.
pub fn open_checkpoint(path: &Path) -> Result<Checkpoint, ModelError> {
    let (dir, weights_file) = if path.is_dir() {
        let candidates = ["model.safetensors", "pytorch_model.bin"];
        let file = candidates
            .iter()
            .map(|c| path.join(c))
            .find(|p| p.is_file());
        let file = match file {
            Some(f) => f,
            None => single_pt(path)?,
        };
        (path.to_path_buf(), file)
    } else if path.is_file() {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    } else {
        return Err(ModelError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    };
    let bytes = std::fs::read(&weights_file).map_err(|e| ModelError::io(&weights_file, e))?;
    let weights_sha256 = hex(&Sha256::digest(&bytes));
    let raw = if bytes.starts_with(b"PK") {
        crate::pickle::load_torch_zip(&bytes).map_err(|m| ModelError::format(&weights_file, m))?
    } else {
        load_safetensors(&bytes).map_err(|m| ModelError::format(&weights_file, m))?
    };
    drop(bytes);
    let tensors = TensorMap {
        path: weights_file.clone(),
        tensors: raw
            .into_iter()
            .filter_map(|(n, s, d)| canonical_name(&n).map(|n| (n, (s, d))))
            .collect(),
    };
    let config_path = dir.join("config.json");
    let config = if config_path.is_file() {
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        serde_json::from_str::<EsmConfig>(&text)
            .map_err(|e| ModelError::format(&config_path, format!("not an ESM config.json: {e}")))?
    } else {
        infer_config(&tensors)?
    };
    config
        .validate()
        .map_err(|m| ModelError::format(&config_path, m))?;
    Ok(Checkpoint {
        config,
        weights_file,
        weights_sha256,
        tensors,
    })
}

fn single_pt(dir: &Path) -> Result<PathBuf, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    let pts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pt"))
        .collect();
    match pts.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(ModelError::format(
            dir,
            "no model.safetensors, pytorch_model.bin or single fair-esm .pt in this directory",
        )),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) type RawTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn load_safetensors(bytes: &[u8]) -> Result<RawTensors, String> {
    use safetensors::Dtype;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => continue, // integer buffers such as position_ids
        };
        out.push((name, view.shape().to_vec(), values));
    }
    Ok(out)
}

/// Maps HF (`esm.`-prefixed or bare `EsmModel`) and fair-esm names onto HF names without the
/// `esm.` prefix; drops what the forward pass does not use (contact head, rotary buffers).
fn canonical_name(name: &str) -> Option<String> {
    let mut n = name;
    for prefix in [
        "model.",
        "esm.",
        "encoder.sentence_encoder.",
        "sentence_encoder.",
    ] {
        n = n.strip_prefix(prefix).unwrap_or(n);
    }
    // fair-esm hub files nest blocks under `encoder.sentence_encoder.` and the head under
    // `encoder.lm_head.` (its `_upgrade_state_dict` strips both).
    if n.starts_with("encoder.lm_head.") {
        n = &n["encoder.".len()..];
    }
    if n.contains("contact_head") || n.contains("inv_freq") || n.contains("position_ids") {
        return None;
    }
    // transformers 5 saves LayerNorm parameters under their legacy gamma/beta names.
    let renamed;
    if let Some(stem) = n.strip_suffix(".gamma") {
        renamed = format!("{stem}.weight");
        n = &renamed;
    } else if let Some(stem) = n.strip_suffix(".beta") {
        renamed = format!("{stem}.bias");
        n = &renamed;
    }
    if n.starts_with("embeddings.") || n.starts_with("encoder.") {
        return Some(n.to_string());
    }
    if let Some(rest) = n.strip_prefix("lm_head.") {
        return Some(match rest {
            "weight" => "lm_head.decoder.weight".into(),
            _ => format!("lm_head.{rest}"),
        });
    }
    // fair-esm names.
    if n == "embed_tokens.weight" {
        return Some("embeddings.word_embeddings.weight".into());
    }
    if let Some(rest) = n.strip_prefix("emb_layer_norm_after.") {
        return Some(format!("encoder.emb_layer_norm_after.{rest}"));
    }
    let rest = n.strip_prefix("layers.")?;
    let (index, rest) = rest.split_once('.')?;
    let mapped = [
        ("self_attn.q_proj.", "attention.self.query."),
        ("self_attn.k_proj.", "attention.self.key."),
        ("self_attn.v_proj.", "attention.self.value."),
        ("self_attn.out_proj.", "attention.output.dense."),
        ("self_attn_layer_norm.", "attention.LayerNorm."),
        ("fc1.", "intermediate.dense."),
        ("fc2.", "output.dense."),
        ("final_layer_norm.", "LayerNorm."),
    ]
    .iter()
    .find_map(|(from, to)| rest.strip_prefix(from).map(|p| format!("{to}{p}")))?;
    Some(format!("encoder.layer.{index}.{mapped}"))
}

fn infer_config(t: &TensorMap) -> Result<EsmConfig, ModelError> {
    let emb = t
        .shape("embeddings.word_embeddings.weight")
        .ok_or_else(|| ModelError::MissingTensor {
            path: t.path.clone(),
            name: "embeddings.word_embeddings.weight".into(),
            found: t.len(),
        })?;
    let hidden = emb[1];
    let layers = (0..)
        .take_while(|i| t.contains(&format!("encoder.layer.{i}.attention.self.query.weight")))
        .count();
    let heads = ARCHITECTURES.iter().find(|a| a.2 == hidden).map(|a| a.3).ok_or_else(|| {
        ModelError::format(
            &t.path,
            format!("hidden size {hidden} is no published ESM2 size, so the head count is unknown; put a config.json beside the weights"),
        )
    })?;
    let mut config = EsmConfig::new(layers, hidden, heads);
    if let Some(s) = t.shape("encoder.layer.0.intermediate.dense.weight") {
        config.intermediate_size = s[0];
    }
    Ok(config)
}

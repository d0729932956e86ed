//! Reading checkpoints into named f32 tensors under HF `EsmForMaskedLM` names (without the
//! `esm.` prefix): HF `model.safetensors`, HF `pytorch_model.bin` and fair-esm `.pt`.
//!
//! The weights file is memory-mapped and each tensor is converted only when the model takes it,
//! after which its pages are released, so a load holds about one copy of the weights (the
//! model's own) instead of the file's bytes plus a converted copy plus the model's. Every shape,
//! offset and size is checked against the file before anything is allocated, and the tensors the
//! config calls for are checked against it before the model allocates from the config's sizes.

use crate::config::{EsmConfig, ARCHITECTURES};
use crate::error::ModelError;
use memmap2::Mmap;
use plmscope_torchfile::{StorageData, StorageKind, TensorData, TensorRef};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where one tensor's values are in the mapped file.
enum Source {
    /// safetensors: contiguous little-endian floats.
    Safetensors {
        dtype: safetensors::Dtype,
        range: Range<usize>,
    },
    /// torch zip: a (possibly strided) view of a storage.
    Torch { view: TensorRef, storage: Storage },
}

enum Storage {
    InFile(Range<usize>),
    Inflated(Arc<[u8]>),
}

struct Entry {
    shape: Vec<usize>,
    source: Source,
}

/// Named tensors of one checkpoint, f32, with shapes; values are read from the mapped file
/// when taken.
pub struct TensorMap {
    pub path: PathBuf,
    file: Option<Mmap>,
    tensors: HashMap<String, Entry>,
}

impl TensorMap {
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    fn missing(&self, name: &str) -> ModelError {
        ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
            found: self.tensors.len(),
        }
    }

    fn check_shape(&self, name: &str, shape: &[usize]) -> Result<(), ModelError> {
        let found = self.shape(name).ok_or_else(|| self.missing(name))?;
        if found != shape {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: name.into(),
                expected: shape.to_vec(),
                found: found.to_vec(),
            });
        }
        Ok(())
    }

    /// Removes and returns a tensor as f32, checking its shape and that every value is finite.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        self.check_shape(name, shape)?;
        let entry = self
            .tensors
            .remove(name)
            .ok_or_else(|| self.missing(name))?;
        let bytes: &[u8] = self.file.as_deref().unwrap_or(&[]);
        let (values, released) = match &entry.source {
            Source::Safetensors { dtype, range } => {
                (floats_le(*dtype, &bytes[range.clone()]), Some(range))
            }
            Source::Torch { view, storage } => {
                let (raw, range) = match storage {
                    Storage::InFile(r) => (&bytes[r.clone()], Some(r)),
                    Storage::Inflated(b) => (&b[..], None),
                };
                match plmscope_torchfile::gather(raw, view) {
                    Ok(TensorData::Float(v)) => (v, range),
                    Ok(_) => {
                        return Err(ModelError::format(
                            &self.path,
                            format!("tensor {name} is not a float tensor"),
                        ))
                    }
                    Err(e) => {
                        return Err(ModelError::format(
                            &self.path,
                            format!("tensor {name}: {e}"),
                        ))
                    }
                }
            }
        };
        if let (Some(file), Some(range)) = (&self.file, released) {
            release(file, range.clone());
        }
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(ModelError::NonFinite {
                path: self.path.clone(),
                name: name.to_string(),
                count: bad,
                total: values.len(),
            });
        }
        Ok(values)
    }
}

fn floats_le(dtype: safetensors::Dtype, data: &[u8]) -> Vec<f32> {
    use safetensors::Dtype;
    match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => unreachable!("only float tensors are indexed"),
    }
}

/// Drops `range`'s pages from this process's resident set once their values are copied out.
/// Without it every page read stays resident until the map is dropped, and a load peaks at
/// the file plus the model. Measured, `plmscope model info` on a random t33_650M (2.60 GB
/// safetensors): peak RSS 5.09 GB when the file was read into memory, 2.82 GB mapped.
fn release(file: &Mmap, range: Range<usize>) {
    #[cfg(unix)]
    // SAFETY: the map is a read-only shared mapping of a file and no reference into `range`
    // outlives this call; MADV_DONTNEED on such a mapping only drops page-table entries, and
    // a later read faults the same bytes back in from the file.
    unsafe {
        let _ = file.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            range.start,
            range.len(),
        );
    }
    #[cfg(not(unix))]
    let _ = (file, range);
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
/// beside it when there is one. Without `config.json` the config is inferred from tensor shapes
/// and the published ESM2 head counts. The config is then checked against the tensors.
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
    let file = std::fs::File::open(&weights_file).map_err(|e| ModelError::io(&weights_file, e))?;
    // SAFETY: the map is read-only; a file changed or truncated by another process while we
    // read it is outside what this program supports (as for every mmap-based reader).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&weights_file, e))?;
    let weights_sha256 = sha256_mapped(&map);
    let raw = if map.starts_with(b"PK") {
        index_torch(&map)
    } else {
        index_safetensors(&map)
    }
    .map_err(|m| ModelError::format(&weights_file, m))?;
    let tensors = TensorMap {
        path: weights_file.clone(),
        file: Some(map),
        tensors: raw
            .into_iter()
            .filter_map(|(n, e)| canonical_name(&n).map(|n| (n, e)))
            .collect(),
    };
    let config_path = dir.join("config.json");
    let config = if config_path.is_file() {
        read_config(&config_path)?
    } else {
        infer_config(&tensors)?
    };
    config
        .validate()
        .map_err(|m| ModelError::format(&config_path, m))?;
    check_layout(&config, &tensors)?;
    Ok(Checkpoint {
        config,
        weights_file,
        weights_sha256,
        tensors,
    })
}

/// A `config.json` of at most 1 MiB (HF's are about 1 KB), parsed as an ESM config.
fn read_config(path: &Path) -> Result<EsmConfig, ModelError> {
    const MAX_CONFIG_BYTES: u64 = 1 << 20;
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ModelError::io(path, e))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ModelError::format(
            path,
            "over 1 MiB, so not an HF config.json; point --model at the weights file alone",
        ));
    }
    serde_json::from_str::<EsmConfig>(&text)
        .map_err(|e| ModelError::format(path, format!("not an ESM config.json: {e}")))
}

/// Checks every tensor the forward pass takes against the config, before the model allocates
/// buffers from the config's sizes: a config.json claiming hidden_size 10^6 over small weights
/// then fails here by name instead of in an allocation.
fn check_layout(c: &EsmConfig, t: &TensorMap) -> Result<(), ModelError> {
    let (d, inter, vocab) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    t.check_shape("embeddings.word_embeddings.weight", &[vocab, d])?;
    for i in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        for (name, shape) in [
            ("attention.self.query.weight", [d, d].as_slice()),
            ("attention.self.query.bias", &[d]),
            ("attention.self.key.weight", &[d, d]),
            ("attention.self.key.bias", &[d]),
            ("attention.self.value.weight", &[d, d]),
            ("attention.self.value.bias", &[d]),
            ("attention.output.dense.weight", &[d, d]),
            ("attention.output.dense.bias", &[d]),
            ("attention.LayerNorm.weight", &[d]),
            ("attention.LayerNorm.bias", &[d]),
            ("intermediate.dense.weight", &[inter, d]),
            ("intermediate.dense.bias", &[inter]),
            ("output.dense.weight", &[d, inter]),
            ("output.dense.bias", &[d]),
            ("LayerNorm.weight", &[d]),
            ("LayerNorm.bias", &[d]),
        ] {
            t.check_shape(&format!("{p}.{name}"), shape)?;
        }
    }
    t.check_shape("encoder.emb_layer_norm_after.weight", &[d])?;
    t.check_shape("encoder.emb_layer_norm_after.bias", &[d])?;
    if t.contains("lm_head.dense.weight") {
        t.check_shape("lm_head.dense.weight", &[d, d])?;
        t.check_shape("lm_head.dense.bias", &[d])?;
        t.check_shape("lm_head.layer_norm.weight", &[d])?;
        t.check_shape("lm_head.layer_norm.bias", &[d])?;
        t.check_shape("lm_head.bias", &[vocab])?;
        if t.contains("lm_head.decoder.weight") {
            t.check_shape("lm_head.decoder.weight", &[vocab, d])?;
        }
    }
    Ok(())
}

/// sha256 of the mapped file, releasing each chunk's pages once hashed.
fn sha256_mapped(map: &Mmap) -> String {
    const CHUNK: usize = 64 << 20;
    let mut h = Sha256::new();
    let mut start = 0;
    while start < map.len() {
        let end = (start + CHUNK).min(map.len());
        h.update(&map[start..end]);
        release(map, start..end);
        start = end;
    }
    hex(&h.finalize())
}

type Indexed = Vec<(String, Entry)>;

/// The float tensors of a safetensors file (integer buffers such as `position_ids` are left
/// out). The header's offsets are validated by the safetensors crate (checked arithmetic,
/// contiguous, inside the file).
fn index_safetensors(bytes: &[u8]) -> Result<Indexed, String> {
    use safetensors::Dtype;
    safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let (header, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let base = 8 + header;
    let mut out = Vec::new();
    for (name, info) in meta.tensors() {
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            continue;
        }
        let (start, end) = info.data_offsets;
        let range = base + start..base + end;
        if range.end > bytes.len() || range.len() % (info.dtype.bitsize() / 8) != 0 {
            return Err(format!(
                "tensor {name}: bytes {range:?} lie outside the file"
            ));
        }
        out.push((
            name,
            Entry {
                shape: info.shape.clone(),
                source: Source::Safetensors {
                    dtype: info.dtype,
                    range,
                },
            },
        ));
    }
    Ok(out)
}

/// Every floating tensor in a torch zip checkpoint, by its dotted name inside the nested dicts
/// (`model.layers.0.fc1.weight` for fair-esm's `{"model": state_dict}`); views are checked
/// against their storages by the reader.
fn index_torch(bytes: &[u8]) -> Result<Indexed, String> {
    let index = plmscope_torchfile::index_torch_zip(bytes).map_err(|e| e.0)?;
    let mut out = Vec::new();
    for (name, view) in index.tensors {
        if !matches!(
            view.dtype,
            StorageKind::F32 | StorageKind::F16 | StorageKind::BF16 | StorageKind::F64
        ) {
            continue;
        }
        let storage = match index.storages.get(&view.key) {
            Some(StorageData::InArchive(r)) => Storage::InFile(r.clone()),
            Some(StorageData::Inflated(b)) => Storage::Inflated(b.clone()),
            None => return Err(format!("tensor {name}: storage {} is missing", view.key)),
        };
        out.push((
            name,
            Entry {
                shape: view.shape.clone(),
                source: Source::Torch { view, storage },
            },
        ));
    }
    Ok(out)
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
    let &[_, hidden] = emb else {
        return Err(ModelError::format(
            &t.path,
            format!(
                "tensor embeddings.word_embeddings.weight has shape {emb:?}, not [vocab, hidden]"
            ),
        ));
    };
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
    if let Some(&[inter, _]) = t.shape("encoder.layer.0.intermediate.dense.weight") {
        config.intermediate_size = inter;
    }
    Ok(config)
}

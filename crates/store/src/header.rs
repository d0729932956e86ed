//! What an activation set is: the model, the capture site, the level and the storage dtype.
//! A rerun may resume a set only when all of these are equal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a row is one residue or one protein (mean over its residues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One row per residue, proteins one after another.
    Residue,
    /// One row per protein.
    Protein,
}

impl Level {
    /// The name written in manifests and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Level::Residue => "residue",
            Level::Protein => "protein",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Level::Residue, Level::Protein]
            .into_iter()
            .find(|level| level.name() == s)
            .ok_or_else(|| format!("unknown level {s:?}; expected residue or protein"))
    }
}

/// Where in a block activations are captured (ARCHITECTURE.md "ESM2 facts"): the vocabulary the
/// model's forward pass captures at (`plmscope_model` re-exports this type) and that manifests,
/// code sets and dictionary metadata record, written as the strings [`Site::name`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// The residual stream after block L (L = 0: the embedding output; the last layer: after the
    /// final LayerNorm).
    ResidPost,
    /// The LayerNorm-ed input of block L's MLP.
    MlpIn,
    /// Block L's MLP output before it is added to the residual stream.
    MlpOut,
    /// `resid_post` L minus `resid_post` L-1: block L's update of the stream (the seed paper's
    /// inter-layer transcoder target).
    BlockDelta,
}

impl Site {
    /// Every site, in the order the CLI lists them.
    pub const ALL: [Site; 4] = [Site::ResidPost, Site::MlpIn, Site::MlpOut, Site::BlockDelta];

    /// The name written in manifests and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Site::ResidPost => "resid_post",
            Site::MlpIn => "mlp_in",
            Site::MlpOut => "mlp_out",
            Site::BlockDelta => "block_delta",
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Site {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Site::ALL
            .into_iter()
            .find(|site| site.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Site::ALL.iter().map(|site| site.name()).collect();
                format!("unknown site {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// How activations are stored on disk. Readers always hand out `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDtype {
    /// 32-bit float, exact.
    F32,
    /// IEEE half precision (10-bit mantissa): half the disk, ~3 significant digits.
    F16,
    /// bfloat16 (7-bit mantissa, f32's exponent range): half the disk, never overflows.
    Bf16,
}

impl StorageDtype {
    /// Bytes per stored element.
    pub fn size(self) -> usize {
        match self {
            StorageDtype::F32 => 4,
            StorageDtype::F16 | StorageDtype::Bf16 => 2,
        }
    }

    /// The safetensors dtype this storage dtype is written as.
    pub fn safetensors_dtype(self) -> safetensors::Dtype {
        match self {
            StorageDtype::F32 => safetensors::Dtype::F32,
            StorageDtype::F16 => safetensors::Dtype::F16,
            StorageDtype::Bf16 => safetensors::Dtype::BF16,
        }
    }
}

impl fmt::Display for StorageDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageDtype::F32 => "f32",
            StorageDtype::F16 => "f16",
            StorageDtype::Bf16 => "bf16",
        })
    }
}

impl FromStr for StorageDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(StorageDtype::F32),
            "f16" | "float16" => Ok(StorageDtype::F16),
            "bf16" | "bfloat16" => Ok(StorageDtype::Bf16),
            _ => Err(format!("unknown dtype {s:?}; expected f32, f16 or bf16")),
        }
    }
}

/// The model whose activations a set holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Hub id or path as given by the user (`facebook/esm2_t6_8M_UR50D`).
    pub id: String,
    /// Architecture name (`esm2_t6_8M`).
    pub arch: String,
    /// sha256 of the weights file, so a set is tied to exact weights.
    pub weights_sha256: String,
}

/// Everything that identifies an activation set, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetHeader {
    /// The model.
    pub model: ModelRef,
    /// Layer number as in fair-esm `repr_layers` (0 = embeddings).
    pub layer: usize,
    /// Capture site.
    pub site: Site,
    /// Residue or protein rows.
    pub level: Level,
    /// Width of a row.
    pub d_model: usize,
    /// Storage dtype.
    pub dtype: StorageDtype,
    /// Proteins per shard; the last shard may hold fewer.
    pub proteins_per_shard: usize,
    /// Proteins in the whole set.
    pub total_proteins: usize,
    /// Free-form notes (run settings); `finish` merges its notes into this object.
    pub extra: serde_json::Value,
}

impl SetHeader {
    /// Number of shards: `ceil(total_proteins / proteins_per_shard)`.
    pub fn shard_count(&self) -> usize {
        self.total_proteins.div_ceil(self.proteins_per_shard.max(1))
    }

    /// Global indices of the proteins that shard `shard` holds.
    pub fn shard_proteins(&self, shard: usize) -> std::ops::Range<usize> {
        let start = (shard * self.proteins_per_shard).min(self.total_proteins);
        let end = (start + self.proteins_per_shard).min(self.total_proteins);
        start..end
    }

    /// The first field whose value differs between `self` (the existing set) and `other` (this
    /// run's request): `(field, existing, requested)`. `extra_subset` accepts an existing `extra`
    /// that holds more keys than the requested one (a finished set has the run's notes merged in).
    pub(crate) fn first_difference(
        &self,
        other: &SetHeader,
        extra_subset: bool,
    ) -> Option<(String, String, String)> {
        fn differ<T: PartialEq + fmt::Debug>(
            name: &str,
            a: &T,
            b: &T,
        ) -> Option<(String, String, String)> {
            (a != b).then(|| (name.to_string(), format!("{a:?}"), format!("{b:?}")))
        }
        differ("model.id", &self.model.id, &other.model.id)
            .or_else(|| differ("model.arch", &self.model.arch, &other.model.arch))
            .or_else(|| {
                differ(
                    "model.weights_sha256",
                    &self.model.weights_sha256,
                    &other.model.weights_sha256,
                )
            })
            .or_else(|| differ("layer", &self.layer, &other.layer))
            .or_else(|| differ("site", &self.site, &other.site))
            .or_else(|| differ("level", &self.level, &other.level))
            .or_else(|| differ("d_model", &self.d_model, &other.d_model))
            .or_else(|| differ("dtype", &self.dtype, &other.dtype))
            .or_else(|| {
                differ(
                    "proteins_per_shard",
                    &self.proteins_per_shard,
                    &other.proteins_per_shard,
                )
            })
            .or_else(|| {
                differ(
                    "total_proteins",
                    &self.total_proteins,
                    &other.total_proteins,
                )
            })
            .or_else(|| {
                let same = if extra_subset {
                    json_is_subset(&other.extra, &self.extra)
                } else {
                    self.extra == other.extra
                };
                (!same).then(|| {
                    (
                        "extra".to_string(),
                        self.extra.to_string(),
                        other.extra.to_string(),
                    )
                })
            })
    }
}

/// True when every key of `small` is in `big` with an equal value (non-objects: equality).
fn json_is_subset(small: &serde_json::Value, big: &serde_json::Value) -> bool {
    match (small, big) {
        (serde_json::Value::Object(s), serde_json::Value::Object(b)) => {
            s.iter().all(|(k, v)| b.get(k) == Some(v))
        }
        (serde_json::Value::Null, _) => true,
        _ => small == big,
    }
}

/// `base` with the keys of `notes` added (objects), or `notes` when `base` is null.
pub(crate) fn merge_extra(base: &serde_json::Value, notes: serde_json::Value) -> serde_json::Value {
    match (base, notes) {
        (b, serde_json::Value::Null) => b.clone(),
        (serde_json::Value::Object(b), serde_json::Value::Object(n)) => {
            let mut merged = b.clone();
            merged.extend(n);
            serde_json::Value::Object(merged)
        }
        (serde_json::Value::Null, n) => n,
        (b, n) => serde_json::json!({ "header": b.clone(), "notes": n }),
    }
}

/// The same value with every object's keys sorted, so the bytes written do not depend on the
/// order a caller inserted keys (serde_json may be built with `preserve_order`).
pub(crate) fn canonical_json(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = serde_json::Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical_json(&map[key]));
            }
            serde_json::Value::Object(sorted)
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonical_json).collect())
        }
        other => other.clone(),
    }
}

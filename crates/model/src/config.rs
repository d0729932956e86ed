//! ESM2 configuration: HF `config.json` fields and the published architectures.

use serde::{Deserialize, Serialize};

/// The fields of HF `EsmConfig` that the forward pass needs; deserialises the checkpoint's own
/// `config.json` (unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsmConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_mask")]
    pub mask_token_id: u32,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_true")]
    pub token_dropout: bool,
    #[serde(default = "default_rotary")]
    pub position_embedding_type: String,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub emb_layer_norm_before: Option<bool>,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

fn default_vocab() -> usize {
    33
}
fn default_eps() -> f64 {
    1e-5
}
fn default_mask() -> u32 {
    32
}
fn default_pad() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_rotary() -> String {
    "rotary".into()
}
fn default_max_pos() -> usize {
    1026
}
fn default_hidden_act() -> String {
    "gelu".into()
}

/// The six published ESM2 sizes (Lin et al. 2023): (name, layers, hidden, heads).
pub const ARCHITECTURES: [(&str, usize, usize, usize); 6] = [
    ("esm2_t6_8M", 6, 320, 20),
    ("esm2_t12_35M", 12, 480, 20),
    ("esm2_t30_150M", 30, 640, 20),
    ("esm2_t33_650M", 33, 1280, 20),
    ("esm2_t36_3B", 36, 2560, 40),
    ("esm2_t48_15B", 48, 5120, 40),
];

/// Largest `max_position_embeddings` accepted: the rotary tables are allocated from it.
pub const MAX_POSITIONS: usize = 1 << 16;

impl EsmConfig {
    /// Config of a published architecture, by name (`esm2_t6_8M`, with or without `_UR50D`).
    pub fn for_arch(name: &str) -> Option<Self> {
        let name = name.trim_end_matches("_UR50D");
        let &(_, layers, hidden, heads) = ARCHITECTURES.iter().find(|a| a.0 == name)?;
        Some(Self::new(layers, hidden, heads))
    }

    pub fn new(layers: usize, hidden: usize, heads: usize) -> Self {
        EsmConfig {
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: 4 * hidden,
            vocab_size: 33,
            layer_norm_eps: 1e-5,
            mask_token_id: 32,
            pad_token_id: 1,
            token_dropout: true,
            position_embedding_type: "rotary".into(),
            max_position_embeddings: 1026,
            emb_layer_norm_before: Some(false),
            hidden_act: "gelu".into(),
        }
    }

    /// Published name of this shape, when it is one (`esm2_t6_8M`), else `esm2_custom`.
    pub fn arch_name(&self) -> String {
        ARCHITECTURES
            .iter()
            .find(|a| {
                a.1 == self.num_hidden_layers
                    && a.2 == self.hidden_size
                    && a.3 == self.num_attention_heads
            })
            .map(|a| a.0.to_string())
            .unwrap_or_else(|| {
                format!(
                    "esm2_custom_l{}_d{}_h{}",
                    self.num_hidden_layers, self.hidden_size, self.num_attention_heads
                )
            })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// What this implementation supports; anything else is refused before loading weights.
    pub fn validate(&self) -> Result<(), String> {
        if self.position_embedding_type != "rotary" {
            return Err(format!(
                "position_embedding_type {:?} is not ESM2's rotary; only ESM2 checkpoints are supported",
                self.position_embedding_type
            ));
        }
        // Sizes the forward pass allocates from before any weight is read; the tensor shapes
        // are checked against the rest when the weights load.
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.intermediate_size == 0 {
            return Err(format!(
                "hidden_size {}, num_attention_heads {} and intermediate_size {} must all be \
                 positive",
                self.hidden_size, self.num_attention_heads, self.intermediate_size
            ));
        }
        if self.max_position_embeddings > MAX_POSITIONS {
            return Err(format!(
                "max_position_embeddings {} is over {MAX_POSITIONS} (ESM2 uses 1026)",
                self.max_position_embeddings
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(format!(
                "layer_norm_eps {} is not a non-negative number",
                self.layer_norm_eps
            ));
        }
        if self.emb_layer_norm_before == Some(true) {
            return Err("emb_layer_norm_before=true is ESM-1b, not ESM2".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads)
            || !self.head_dim().is_multiple_of(2)
        {
            return Err(format!(
                "hidden_size {} is not divisible into {} heads of even size",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.vocab_size != 33 {
            return Err(format!("vocab_size {} is not ESM's 33", self.vocab_size));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not ESM2's exact gelu",
                self.hidden_act
            ));
        }
        Ok(())
    }

    /// HF `config.json` contents for this config (what `EsmConfig.from_pretrained` reads).
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["EsmForMaskedLM"],
            "model_type": "esm",
            "attention_probs_dropout_prob": 0.0,
            "hidden_dropout_prob": 0.0,
            "classifier_dropout": null,
            "emb_layer_norm_before": false,
            "hidden_act": self.hidden_act,
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "is_folding_model": false,
            "layer_norm_eps": self.layer_norm_eps,
            "mask_token_id": self.mask_token_id,
            "max_position_embeddings": self.max_position_embeddings,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "pad_token_id": self.pad_token_id,
            "position_embedding_type": "rotary",
            "token_dropout": self.token_dropout,
            "torch_dtype": "float32",
            "use_cache": true,
            "vocab_list": null,
            "vocab_size": self.vocab_size,
        })
    }
}

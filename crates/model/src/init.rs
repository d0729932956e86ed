//! Random-weight ESM2 checkpoints in the HF layout (`config.json`, `model.safetensors`,
//! `vocab.txt`) that HF transformers loads as `EsmForMaskedLM`. Same seed, same bytes.
//!
//! Weights are N(0, 1/fan_in), biases N(0, 0.02²), LayerNorm gains 1 + N(0, 0.1²) and
//! embeddings N(0, 1): unlike HF's N(0, 0.02²) init this makes attention scores O(1), so
//! attention is far from uniform and parity tests notice a wrong rotary or a missing scale.

use crate::alphabet;
use crate::config::EsmConfig;
use crate::error::ModelError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::path::Path;

/// Tensors in a fixed order: (HF name, shape, kind).
fn layout(c: &EsmConfig) -> Vec<(String, Vec<usize>, Init)> {
    let d = c.hidden_size;
    let i = c.intermediate_size;
    let mut t = vec![(
        "esm.embeddings.word_embeddings.weight".to_string(),
        vec![c.vocab_size, d],
        Init::Embedding,
    )];
    for l in 0..c.num_hidden_layers {
        let p = format!("esm.encoder.layer.{l}");
        for part in ["query", "key", "value"] {
            t.push((
                format!("{p}.attention.self.{part}.weight"),
                vec![d, d],
                Init::Weight(d),
            ));
            t.push((
                format!("{p}.attention.self.{part}.bias"),
                vec![d],
                Init::Bias,
            ));
        }
        t.push((
            format!("{p}.attention.self.rotary_embeddings.inv_freq"),
            vec![c.head_dim() / 2],
            Init::InvFreq,
        ));
        t.push((
            format!("{p}.attention.output.dense.weight"),
            vec![d, d],
            Init::Weight(d),
        ));
        t.push((
            format!("{p}.attention.output.dense.bias"),
            vec![d],
            Init::Bias,
        ));
        t.push((
            format!("{p}.attention.LayerNorm.weight"),
            vec![d],
            Init::Gain,
        ));
        t.push((
            format!("{p}.attention.LayerNorm.bias"),
            vec![d],
            Init::Shift,
        ));
        t.push((
            format!("{p}.intermediate.dense.weight"),
            vec![i, d],
            Init::Weight(d),
        ));
        t.push((format!("{p}.intermediate.dense.bias"), vec![i], Init::Bias));
        t.push((
            format!("{p}.output.dense.weight"),
            vec![d, i],
            Init::Weight(i),
        ));
        t.push((format!("{p}.output.dense.bias"), vec![d], Init::Bias));
        t.push((format!("{p}.LayerNorm.weight"), vec![d], Init::Gain));
        t.push((format!("{p}.LayerNorm.bias"), vec![d], Init::Shift));
    }
    t.push((
        "esm.encoder.emb_layer_norm_after.weight".into(),
        vec![d],
        Init::Gain,
    ));
    t.push((
        "esm.encoder.emb_layer_norm_after.bias".into(),
        vec![d],
        Init::Shift,
    ));
    let heads = c.num_hidden_layers * c.num_attention_heads;
    t.push((
        "esm.contact_head.regression.weight".into(),
        vec![1, heads],
        Init::Weight(heads),
    ));
    t.push((
        "esm.contact_head.regression.bias".into(),
        vec![1],
        Init::Bias,
    ));
    t.push(("lm_head.dense.weight".into(), vec![d, d], Init::Weight(d)));
    t.push(("lm_head.dense.bias".into(), vec![d], Init::Bias));
    t.push(("lm_head.layer_norm.weight".into(), vec![d], Init::Gain));
    t.push(("lm_head.layer_norm.bias".into(), vec![d], Init::Shift));
    t.push(("lm_head.bias".into(), vec![c.vocab_size], Init::Bias));
    t
}

#[derive(Clone, Copy)]
enum Init {
    Embedding,
    Weight(usize),
    Bias,
    Gain,
    Shift,
    InvFreq,
}

/// Parameters the forward pass uses (embeddings, blocks, final LayerNorm, LM head; the decoder
/// is tied to the embeddings; the unused contact head is not counted).
pub fn parameter_count(c: &EsmConfig) -> usize {
    let d = c.hidden_size;
    let i = c.intermediate_size;
    let block = 4 * (d * d + d) + 2 * d * i + i + d + 4 * d;
    c.vocab_size * d + c.num_hidden_layers * block + 2 * d + (d * d + d) + 2 * d + c.vocab_size
}

/// Writes `config.json`, `model.safetensors` and `vocab.txt` into `out` (created), each through
/// a temporary name, fsync and rename.
pub fn write_random_checkpoint(
    config: &EsmConfig,
    seed: u64,
    out: &Path,
) -> Result<(), ModelError> {
    config.validate().map_err(|m| ModelError::format(out, m))?;
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = layout(config)
        .into_iter()
        .map(|(name, shape, init)| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match init {
                Init::InvFreq => (0..n)
                    .map(|k| {
                        1.0f32 / (10000f64.powf(((2 * k) as f32 / (2 * n) as f32) as f64) as f32)
                    })
                    .collect(),
                _ => {
                    let (mean, std) = match init {
                        Init::Embedding => (0.0, 1.0),
                        Init::Weight(fan_in) => (0.0, (fan_in as f32).powf(-0.5)),
                        Init::Bias => (0.0, 0.02),
                        Init::Gain => (1.0, 0.1),
                        Init::Shift => (0.0, 0.1),
                        Init::InvFreq => unreachable!(),
                    };
                    let normal = Normal::new(mean, std).expect("finite std");
                    (0..n).map(|_| normal.sample(&mut rng)).collect()
                }
            };
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("shape matches data");
            (name.clone(), view)
        })
        .collect();
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let st = safetensors::serialize(views, Some(metadata))
        .map_err(|e| ModelError::format(out, e.to_string()))?;
    write_atomic(&out.join("model.safetensors"), &st)?;
    let config_json = serde_json::to_string_pretty(&config.to_hf_json()).expect("json");
    write_atomic(&out.join("config.json"), config_json.as_bytes())?;
    write_atomic(&out.join("vocab.txt"), alphabet::vocab_txt().as_bytes())?;
    let tokenizer_config =
        serde_json::json!({"tokenizer_class": "EsmTokenizer", "model_max_length": 1026});
    write_atomic(
        &out.join("tokenizer_config.json"),
        tokenizer_config.to_string().as_bytes(),
    )?;
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    plmscope_fsutil::write_atomic(path, bytes).map_err(|e| ModelError::io(e.path, e.source))
}

//! Saving and restoring the full train state (`train_state.safetensors` + `train_state.json`),
//! so a resumed run continues bit-identically.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SaeError};
use crate::io::tensors::{write_atomic, write_tensors, OutTensor, TensorFile};
use crate::trainer::{TrainConfig, Trainer};

const STATE_FORMAT: &str = "plmscope.train_state";

#[derive(Serialize, Deserialize)]
struct StateJson {
    format: String,
    version: u32,
    config: TrainConfig,
    steps_done: u64,
    rows_seen: u64,
    scales: Option<(f32, f32)>,
    batch_threshold: Option<f32>,
    rng_seed: u64,
    /// ChaCha word position, as a decimal string (u128).
    rng_word_pos: String,
    last_fvu: Option<f64>,
    /// The batch source's position, opaque to the trainer.
    data_position: serde_json::Value,
}

impl Trainer {
    /// Writes the train state into `dir` (created if needed), each file atomically.
    /// `data_position` records where the batch source stands (e.g. [`super::StreamPosition`]).
    pub fn save_state(&self, dir: &Path, data_position: serde_json::Value) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| SaeError::io(dir, e))?;
        let shapes = self.shapes();
        let mut tensors = Vec::new();
        for (prefix, params) in [
            ("param", &self.params),
            ("adam_m", &self.adam_m),
            ("adam_v", &self.adam_v),
        ] {
            for (name, data) in params.named() {
                tensors.push((
                    format!("{prefix}.{name}"),
                    OutTensor::F32(data, shape_of(&shapes, name)),
                ));
            }
        }
        tensors.push((
            "rows_since_fired".into(),
            OutTensor::U64(&self.rows_since_fired, vec![self.cfg.d_sae]),
        ));
        write_tensors(&dir.join("train_state.safetensors"), tensors, None)?;
        let json = StateJson {
            format: STATE_FORMAT.into(),
            version: 1,
            config: self.cfg.clone(),
            steps_done: self.steps_done,
            rows_seen: self.rows_seen,
            scales: self.scales,
            batch_threshold: self.batch_threshold,
            rng_seed: self.cfg.seed,
            rng_word_pos: self.rng.get_word_pos().to_string(),
            last_fvu: self.last_fvu,
            data_position,
        };
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| SaeError::json(dir, e.to_string()))?;
        write_atomic(&dir.join("train_state.json"), text.as_bytes())
    }

    /// Restores a trainer saved by [`Trainer::save_state`]; returns it and the data position.
    pub fn load_state(dir: &Path) -> Result<(Trainer, serde_json::Value)> {
        let json_path = dir.join("train_state.json");
        let text = std::fs::read_to_string(&json_path).map_err(|e| SaeError::io(&json_path, e))?;
        let js: StateJson =
            serde_json::from_str(&text).map_err(|e| SaeError::json(&json_path, e.to_string()))?;
        if js.format != STATE_FORMAT {
            return Err(SaeError::json(
                &json_path,
                format!("format is {:?}, expected {STATE_FORMAT:?}", js.format),
            ));
        }
        let mut t = Trainer::new(js.config)?;
        let mut file = TensorFile::read(&dir.join("train_state.safetensors"))?;
        let shapes = t.shapes();
        for (prefix, params) in [
            ("param", &mut t.params),
            ("adam_m", &mut t.adam_m),
            ("adam_v", &mut t.adam_v),
        ] {
            for (name, data) in params.named_mut() {
                *data = file.take(&format!("{prefix}.{name}"), &shape_of(&shapes, name))?;
            }
        }
        t.rows_since_fired = file.integers.remove("rows_since_fired").ok_or_else(|| {
            SaeError::tensors(
                &file.path,
                format!("missing tensor rows_since_fired; found: {}", file.names()),
            )
        })?;
        if t.rows_since_fired.len() != t.cfg.d_sae {
            return Err(SaeError::tensors(
                &file.path,
                "rows_since_fired does not have d_sae entries",
            ));
        }
        t.steps_done = js.steps_done;
        t.rows_seen = js.rows_seen;
        t.scales = js.scales;
        t.batch_threshold = js.batch_threshold;
        t.last_fvu = js.last_fvu;
        let word_pos: u128 = js.rng_word_pos.parse().map_err(|_| {
            SaeError::json(
                &json_path,
                format!("rng_word_pos {:?} is not an integer", js.rng_word_pos),
            )
        })?;
        t.rng = ChaCha8Rng::seed_from_u64(js.rng_seed);
        t.rng.set_word_pos(word_pos);
        Ok((t, js.data_position))
    }

    fn shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let c = &self.cfg;
        vec![
            ("enc_t", vec![c.d_sae, c.d_in]),
            ("b_enc", vec![c.d_sae]),
            ("w_dec", vec![c.d_sae, c.d_out]),
            ("b_dec", vec![c.d_out]),
            ("log_threshold", vec![c.d_sae]),
            ("w_skip", vec![c.d_out, c.d_in]),
        ]
    }
}

fn shape_of(shapes: &[(&'static str, Vec<usize>)], name: &str) -> Vec<usize> {
    shapes
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s.clone())
        .unwrap_or_default()
}

//! What a dictionary was trained on, typed: the record `plmscope train` writes into
//! `cfg.json` under `plmscope.training`, and `eval` reads back to find the validation proteins.
//!
//! Every field is optional so that records written before this type existed (string-keyed JSON,
//! some fields absent or `null`) still read; fields this type does not know are kept in
//! [`TrainingRecord::extra`] and written back unchanged.

use std::collections::BTreeMap;

use plmscope_store::{ActivationSet, Level, ModelRef, Site};
use serde::{Deserialize, Serialize};

use crate::dictionary::DictionaryMeta;
use crate::error::{Result, SaeError};

/// What identifies an activation set's content (not its path): equal identities mean the
/// same rows, so a recorded validation split applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_model: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proteins: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl SetIdentity {
    /// The identity of an open set, as `plmscope train` records it.
    pub fn of(set: &ActivationSet) -> SetIdentity {
        let h = set.header();
        SetIdentity {
            model: Some(h.model.clone()),
            layer: Some(h.layer),
            site: Some(h.site),
            level: Some(h.level),
            d_model: Some(h.d_model),
            proteins: Some(h.total_proteins),
            rows: Some(set.rows() as u64),
        }
    }
}

/// The held-out proteins: `split_by_protein(n, fraction, seed)` gives them back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ValidationSplit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Validation proteins, and proteins in the set, when the split was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proteins: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of_proteins: Option<usize>,
}

/// The evaluation at the end of training (`metrics::Evaluation`, summarised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct EvaluationSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fvu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fve: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l0: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_fraction: Option<f64>,
}

/// What a dictionary was trained on and how (field names are those `cfg.json` files hold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingRecord {
    /// Path of the source activation set, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SetIdentity>,
    /// Path of a transcoder's target set, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_activations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<SetIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSplit>,
    /// Rows per batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Seed of the weights, the split and the row order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_buffer_rows: Option<usize>,
    /// Which proteins `final_metrics` was measured on (`validation` or `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_metrics: Option<EvaluationSummary>,
    /// Lightning imports (the seed paper's `.ckpt`): epoch and step counters, and the idle
    /// batches after which a latent counted as dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_threshold: Option<i64>,
    /// Fields this version does not know, kept so a read-modify-write loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl TrainingRecord {
    /// Reads a record from `cfg.json`'s JSON; `null` (no record) gives an empty one.
    pub fn from_json(value: &serde_json::Value) -> std::result::Result<Self, String> {
        if value.is_null() {
            return Ok(TrainingRecord::default());
        }
        serde_json::from_value(value.clone()).map_err(|e| format!("plmscope.training: {e}"))
    }

    pub fn to_json(&self) -> serde_json::Value {
        // Plain structs of options, numbers and strings: serialisation cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl DictionaryMeta {
    /// `training`, typed. An error names the field that does not fit.
    pub fn training_record(&self) -> Result<TrainingRecord> {
        TrainingRecord::from_json(&self.training).map_err(SaeError::Config)
    }

    /// Replaces `training` with `record`.
    pub fn set_training_record(&mut self, record: &TrainingRecord) {
        self.training = record.to_json();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as `plmscope train` wrote it before this type (dictionary_cmd.rs `training`).
    const WRITTEN_BEFORE: &str = r#"{
        "activations": "sets/l6.resid_post.protein",
        "source": {"model": {"id": "facebook/esm2_t6_8M_UR50D", "arch": "esm2_t6_8M",
                             "weights_sha256": "ab12"},
                   "layer": 6, "site": "resid_post", "level": "protein", "d_model": 320,
                   "proteins": 46, "rows": 46},
        "target_activations": null, "target": null,
        "validation": {"fraction": 0.05, "seed": 3, "proteins": 2, "of_proteins": 46},
        "batch": 16, "steps": 40, "epochs": null, "rows_per_epoch": 44,
        "shuffle_buffer_rows": 4096, "metrics_split": "validation",
        "final_metrics": {"rows": 2, "mse": 0.5, "fvu": 0.25, "fve": 0.75, "l0": 31.5,
                          "dead_fraction": 0.1, "dense_fraction": 0.0},
        "note": "a field from the future"
    }"#;

    #[test]
    fn a_record_written_as_json_before_reads_typed_and_writes_back_the_same() {
        let value: serde_json::Value = serde_json::from_str(WRITTEN_BEFORE).unwrap();
        let r = TrainingRecord::from_json(&value).unwrap();
        let source = r.source.as_ref().unwrap();
        assert_eq!(source.level, Some(Level::Protein));
        assert_eq!(source.model.as_ref().unwrap().arch, "esm2_t6_8M");
        assert_eq!((source.d_model, source.rows), (Some(320), Some(46)));
        assert_eq!(r.target, None);
        let v = r.validation.as_ref().unwrap();
        assert_eq!((v.fraction, v.seed), (Some(0.05), Some(3)));
        assert_eq!(r.final_metrics.as_ref().unwrap().fve, Some(0.75));
        assert_eq!(r.seed, None, "absent in old records");
        assert_eq!(r.extra["note"], "a field from the future");
        // Written back: the same JSON, less the nulls.
        let mut expected = value.clone();
        let obj = expected.as_object_mut().unwrap();
        obj.retain(|_, v| !v.is_null());
        assert_eq!(r.to_json(), expected);
    }

    #[test]
    fn missing_or_null_records_read_as_empty_and_wrong_types_are_named() {
        assert_eq!(
            TrainingRecord::from_json(&serde_json::Value::Null).unwrap(),
            TrainingRecord::default()
        );
        let partial = serde_json::json!({"validation": {"fraction": 0.1}});
        let r = TrainingRecord::from_json(&partial).unwrap();
        assert_eq!(r.validation.unwrap().seed, None);
        let bad = serde_json::json!({"steps": "many"});
        let err = TrainingRecord::from_json(&bad).unwrap_err();
        assert!(
            err.contains("plmscope.training") && err.contains("many"),
            "{err}"
        );
    }
}

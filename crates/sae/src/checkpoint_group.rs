//! Checkpoints of several dictionaries trained together on one stream (`train_many`), kept
//! consistent with one another across `kill -9`.
//!
//! Each dictionary has a directory holding `cfg.json`, `sae_weights.safetensors` and its train
//! state (`train_state.safetensors` + `train_state.json`); the run directory holds
//! `train_run.json`, the commit record. A checkpoint at step s is written in three phases:
//! 1. every dictionary's train state goes to `<dir>/train_state.next/`;
//! 2. `train_run.json` is rewritten (atomically) with `committed_step = s`: the commit point;
//! 3. every staged state is renamed over the current one, and `cfg.json` + weights rewritten.
//!
//! Resuming finishes phase 3 for staged states of the committed step and discards staged
//! states of an uncommitted one, so every dictionary restarts from the same step and the same
//! data position, whichever instant the previous process died at.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dictionary::Dictionary;
use crate::error::{Result, SaeError};
use crate::io::tensors::write_atomic;
use crate::trainer::Trainer;

/// The commit record's file name, in the run directory.
pub const RUN_FILE: &str = "train_run.json";
const RUN_FORMAT: &str = "plmscope.train_run";
const STAGING_DIR: &str = "train_state.next";
const STATE_FILES: [&str; 2] = ["train_state.safetensors", "train_state.json"];

/// The content of `train_run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: String,
    pub version: u32,
    /// Sub-directory of each dictionary; `""` is the run directory itself.
    pub dictionaries: Vec<String>,
    /// What defines the run (data, configurations, batch, seed...); a resume must match it.
    pub settings: serde_json::Value,
    /// Step of the last checkpoint every dictionary has; 0 = none yet.
    pub committed_step: u64,
    /// True once the run has finished and its final dictionaries are written.
    pub complete: bool,
}

/// A run directory of dictionaries checkpointed together.
pub struct CheckpointGroup {
    dir: PathBuf,
    record: RunRecord,
}

/// What [`CheckpointGroup::resume`] found.
pub struct Resumed {
    pub group: CheckpointGroup,
    /// The trainers at the committed step, with the data position saved with them; `None`
    /// when the run was interrupted before its first checkpoint.
    pub state: Option<(Vec<Trainer>, serde_json::Value)>,
}

impl CheckpointGroup {
    /// Starts a run in `dir`, which must be absent or empty.
    pub fn create(
        dir: &Path,
        dictionaries: Vec<String>,
        settings: serde_json::Value,
    ) -> Result<Self> {
        if dir.join(RUN_FILE).exists() {
            return Err(SaeError::Config(format!(
                "{} already holds a training run; pass --resume to continue it, or choose another --out",
                dir.display()
            )));
        }
        let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if not_empty {
            return Err(SaeError::Config(format!(
                "{} is not empty and holds no {RUN_FILE}; choose another --out or delete it",
                dir.display()
            )));
        }
        let group = CheckpointGroup {
            dir: dir.to_path_buf(),
            record: RunRecord {
                format: RUN_FORMAT.into(),
                version: 1,
                dictionaries,
                settings,
                committed_step: 0,
                complete: false,
            },
        };
        for i in 0..group.len() {
            let d = group.dictionary_dir(i);
            std::fs::create_dir_all(&d).map_err(|e| SaeError::io(&d, e))?;
        }
        group.write_record()?;
        Ok(group)
    }

    /// Reopens the run in `dir`; `settings` must equal those it was created with.
    pub fn resume(dir: &Path, settings: &serde_json::Value) -> Result<Resumed> {
        let path = dir.join(RUN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| SaeError::io(&path, e))?;
        let record: RunRecord =
            serde_json::from_str(&text).map_err(|e| SaeError::json(&path, e.to_string()))?;
        if record.format != RUN_FORMAT {
            return Err(SaeError::json(
                &path,
                format!("format is {:?}, expected {RUN_FORMAT:?}", record.format),
            ));
        }
        // Compare through the same JSON text, so float fields parse identically on both sides.
        let settings: serde_json::Value = serde_json::from_str(&settings.to_string())
            .map_err(|e| SaeError::json(&path, e.to_string()))?;
        if record.settings != settings {
            return Err(SaeError::Config(format!(
                "{}: cannot resume, the run was started with other settings: {}",
                path.display(),
                first_difference(&record.settings, &settings, "")
            )));
        }
        let group = CheckpointGroup {
            dir: dir.to_path_buf(),
            record,
        };
        let step = group.record.committed_step;
        for i in 0..group.len() {
            group.settle_staged(&group.dictionary_dir(i), step)?;
        }
        if step == 0 {
            return Ok(Resumed { group, state: None });
        }
        let mut trainers = Vec::with_capacity(group.len());
        let mut position = serde_json::Value::Null;
        for i in 0..group.len() {
            let d = group.dictionary_dir(i);
            let (trainer, pos) = Trainer::load_state(&d)?;
            if trainer.steps_done() != step {
                return Err(SaeError::Config(format!(
                    "{}: train state is at step {}, the run committed step {step}",
                    d.display(),
                    trainer.steps_done()
                )));
            }
            if i > 0 && pos != position {
                return Err(SaeError::Config(format!(
                    "{}: data position differs from the first dictionary's",
                    d.display()
                )));
            }
            position = pos;
            trainers.push(trainer);
        }
        Ok(Resumed {
            group,
            state: Some((trainers, position)),
        })
    }

    /// Number of dictionaries.
    pub fn len(&self) -> usize {
        self.record.dictionaries.len()
    }

    /// True for a run without dictionaries (never created by [`CheckpointGroup::create`] callers).
    pub fn is_empty(&self) -> bool {
        self.record.dictionaries.is_empty()
    }

    /// Directory of dictionary `i`.
    pub fn dictionary_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.record.dictionaries[i])
    }

    /// The commit record as it stands.
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// Writes a checkpoint of `trainers` (all at the same step, in dictionary order) and their
    /// inference forms `dictionaries`, with the data position of the next batch.
    pub fn checkpoint(
        &mut self,
        trainers: &[Trainer],
        dictionaries: &[Dictionary],
        data_position: serde_json::Value,
    ) -> Result<()> {
        let step = trainers.first().map(Trainer::steps_done).unwrap_or(0);
        if trainers.len() != self.len()
            || dictionaries.len() != self.len()
            || trainers.iter().any(|t| t.steps_done() != step)
        {
            return Err(SaeError::Config(format!(
                "checkpoint of {} trainers / {} dictionaries for a run of {}, or at different steps",
                trainers.len(),
                dictionaries.len(),
                self.len()
            )));
        }
        for (i, trainer) in trainers.iter().enumerate() {
            trainer.save_state(
                &self.dictionary_dir(i).join(STAGING_DIR),
                data_position.clone(),
            )?;
        }
        self.record.committed_step = step;
        self.write_record()?;
        for (i, dictionary) in dictionaries.iter().enumerate() {
            let d = self.dictionary_dir(i);
            promote(&d)?;
            crate::io::save(dictionary, &d)?;
        }
        Ok(())
    }

    /// Marks the run complete (after the final checkpoint).
    pub fn finish(&mut self) -> Result<()> {
        self.record.complete = true;
        self.write_record()
    }

    fn write_record(&self) -> Result<()> {
        let path = self.dir.join(RUN_FILE);
        let text = serde_json::to_string_pretty(&self.record)
            .map_err(|e| SaeError::json(&path, e.to_string()))?;
        write_atomic(&path, text.as_bytes())
    }

    /// Completes phase 3 for a staged state of the committed step, drops any other.
    fn settle_staged(&self, dir: &Path, committed: u64) -> Result<()> {
        let staging = dir.join(STAGING_DIR);
        if !staging.exists() {
            return Ok(());
        }
        let json = staging.join("train_state.json");
        let staged_step = std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("steps_done").and_then(serde_json::Value::as_u64));
        if staged_step == Some(committed) && committed > 0 {
            promote(dir)
        } else {
            std::fs::remove_dir_all(&staging).map_err(|e| SaeError::io(&staging, e))
        }
    }
}

/// Renames the staged state files over the current ones (the json last, so a staged json
/// always means the staged tensors are not yet in place or are already there), then removes
/// the staging directory.
fn promote(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING_DIR);
    for name in STATE_FILES {
        let from = staging.join(name);
        if from.exists() {
            plmscope_fsutil::persist(&from, &dir.join(name))
                .map_err(|e| SaeError::io(e.path, e.source))?;
        }
    }
    std::fs::remove_dir_all(&staging).map_err(|e| SaeError::io(&staging, e))
}

/// Names the first field where two settings objects differ, for the resume error.
fn first_difference(old: &serde_json::Value, new: &serde_json::Value, at: &str) -> String {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match b.get(key) {
                    Some(vb) if vb == va => {}
                    Some(vb) => return first_difference(va, vb, &path),
                    None => return format!("{path} was {va}, now absent"),
                }
            }
            match b.keys().find(|k| !a.contains_key(*k)) {
                Some(k) => format!("{at}.{k} is new"),
                None => format!("{at} differs"),
            }
        }
        _ => format!("{at} was {old}, now {new}"),
    }
}

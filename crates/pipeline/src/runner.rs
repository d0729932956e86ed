//! `plmscope run`: every stage of a study in order, each skipped when its output is complete
//! and its hash (settings + inputs + upstream hashes) is unchanged, resumed when it was
//! interrupted, redone (with everything after it) when its inputs or settings changed.
//!
//! Each stage keeps a record in `OUT/.plmscope/stages/<id>.json`, written atomically before
//! the work starts (complete = false) and after it ends (complete = true), so a `kill -9` at any
//! point leaves either a finished stage or one the next run resumes. Every stage function is
//! itself resumable (embed and encode skip complete shards, training continues from its last
//! checkpoint bit for bit, the atlas is written under a temporary name), which is what makes a
//! resumed study equal an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::fingerprint::{checkpoint_identity, file_sha256, stage_hash};
use crate::study::Study;
use crate::study_stages::{build_stages, StageWork};
use crate::Progress;

/// What `run` does with a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Complete and unchanged.
    UpToDate,
    /// Never run.
    Run,
    /// Interrupted with the same inputs: continue where it stopped.
    Resume,
    /// Its inputs or settings changed: delete its output and run again.
    Redo,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::UpToDate => "up to date",
            Action::Run => "run",
            Action::Resume => "resume",
            Action::Redo => "redo",
        }
    }
}

/// One stage of a study and what will happen to it.
#[derive(Clone, Debug)]
pub struct PlannedStage {
    /// e.g. `embed/t6`, `train/t6/topk/layer3.resid_post.protein`.
    pub id: String,
    pub kind: &'static str,
    pub action: Action,
    /// Why (for `--plan`).
    pub reason: String,
    pub output: PathBuf,
    pub hash: String,
    pub(crate) upstream: Vec<usize>,
    pub(crate) settings: Value,
    pub(crate) inputs: Vec<(String, String)>,
    pub(crate) work: StageWork,
}

/// A stage's record on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: String,
    pub kind: String,
    pub hash: String,
    pub complete: bool,
    pub settings: Value,
    pub inputs: Vec<(String, String)>,
    pub output: PathBuf,
    /// Wall seconds of the last (complete) run of the stage.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Peak resident memory of the process during the stage, bytes (Linux).
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
}

fn record_path(out: &Path, id: &str) -> PathBuf {
    out.join(".plmscope")
        .join("stages")
        .join(format!("{}.json", id.replace('/', "__")))
}

fn read_record(out: &Path, id: &str) -> Option<StageRecord> {
    let text = std::fs::read_to_string(record_path(out, id)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_record(out: &Path, record: &StageRecord) -> Result<()> {
    let path = record_path(out, &record.id);
    std::fs::create_dir_all(path.parent().expect("has a parent"))
        .with_context(|| format!("creating {}", path.display()))?;
    crate::write_atomic(&path, serde_json::to_string_pretty(record)?.as_bytes())
}

/// Works out every stage of `study` and what to do with it, without running anything.
pub fn plan(study: &Study) -> Result<Vec<PlannedStage>> {
    let out = study.out_dir();
    let mut stages = build_stages(study)?;
    for i in 0..stages.len() {
        // Inputs: file fingerprints, then the upstream stages' hashes (the chain).
        let mut inputs = Vec::new();
        for (name, source) in stages[i].work.input_files() {
            let value = match source {
                InputFile::Content(p) => file_sha256(&p)?,
                InputFile::Checkpoint(p) => checkpoint_identity(&p)?,
            };
            inputs.push((name, value));
        }
        for &u in &stages[i].upstream {
            inputs.push((stages[u].id.clone(), stages[u].hash.clone()));
        }
        let hash = stage_hash(stages[i].kind, &stages[i].settings, &inputs);
        let upstream_runs = stages[i]
            .upstream
            .iter()
            .find(|&&u| stages[u].action != Action::UpToDate)
            .map(|&u| stages[u].id.clone());
        let output_exists = stages[i].output.exists();
        let (action, reason) = match read_record(out, &stages[i].id) {
            None if output_exists => (
                Action::Redo,
                "its output exists but holds no record of how it was made".to_string(),
            ),
            None => (Action::Run, "not run yet".to_string()),
            Some(r) if r.hash != hash => {
                (Action::Redo, why_changed(&r, &stages[i].settings, &inputs))
            }
            Some(_) if !output_exists => (Action::Run, "its output is missing".to_string()),
            Some(r) if !r.complete => (
                Action::Resume,
                "interrupted; continues where it stopped".to_string(),
            ),
            Some(_) => match upstream_runs {
                Some(u) => (Action::Redo, format!("{u} runs again")),
                None => (
                    Action::UpToDate,
                    "complete, inputs and settings unchanged".to_string(),
                ),
            },
        };
        let s = &mut stages[i];
        s.inputs = inputs;
        s.hash = hash;
        s.action = action;
        s.reason = reason;
    }
    Ok(stages)
}

/// Names what differs between a record and the stage now.
fn why_changed(record: &StageRecord, settings: &Value, inputs: &[(String, String)]) -> String {
    let mut why = Vec::new();
    if &record.settings != settings {
        let mut keys = Vec::new();
        if let (Some(old), Some(new)) = (record.settings.as_object(), settings.as_object()) {
            for (k, v) in new {
                if old.get(k) != Some(v) {
                    keys.push(k.clone());
                }
            }
            for k in old.keys() {
                if !new.contains_key(k) {
                    keys.push(k.clone());
                }
            }
        }
        why.push(if keys.is_empty() {
            "its settings changed".to_string()
        } else {
            format!("its settings changed ({})", keys.join(", "))
        });
    }
    for (name, value) in inputs {
        match record.inputs.iter().find(|(n, _)| n == name) {
            Some((_, old)) if old == value => {}
            Some(_) => why.push(format!("{name} changed")),
            None => why.push(format!("{name} is new")),
        }
    }
    if why.is_empty() {
        "its record is from another version".to_string()
    } else {
        why.join("; ")
    }
}

/// Where a stage's input file is and how to fingerprint it.
#[derive(Clone, Debug)]
pub enum InputFile {
    /// Hash the content.
    Content(PathBuf),
    /// A model checkpoint: names, sizes and times only.
    Checkpoint(PathBuf),
}

/// What a finished stage reports.
#[derive(Clone, Debug)]
pub struct StageReport {
    pub id: String,
    pub action: Action,
    pub seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    /// Human summary (the atlas summary for analyze stages).
    pub summary: String,
}

impl std::fmt::Display for StageReport {
    /// One line: action, stage, wall time and peak RSS.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<8} {} in {:.1}s, peak RSS {}",
            self.action.name(),
            self.id,
            self.seconds,
            self.peak_rss_bytes
                .map_or("?".to_string(), |b| format!("{} MB", b / (1 << 20)))
        )
    }
}

/// The line `plmscope run` prints instead of running when every stage is up to date.
pub fn nothing_to_run(study: &Study, stages: &[PlannedStage]) -> Option<String> {
    stages
        .iter()
        .all(|s| s.action == Action::UpToDate)
        .then(|| {
            format!(
                "{}: all {} stages are up to date; nothing to run",
                study.out_dir().display(),
                stages.len()
            )
        })
}

/// What `plmscope run` prints at the end: each analyze and describe stage's summary under its
/// id, then one line with the study, the stages run and where the results are.
pub fn run_summary(study: &Study, reports: &[StageReport]) -> String {
    let mut text = String::new();
    for r in reports
        .iter()
        .filter(|r| r.id.starts_with("analyze/") || r.id.starts_with("describe/"))
    {
        text += &format!("== {}\n{}\n", r.id, r.summary);
    }
    text += &format!(
        "{}: {} stages run; results under {}\n",
        study.name,
        reports.len(),
        study.out_dir().display()
    );
    text
}

/// Runs every stage that is not up to date, in order. `progress_for` gives each stage its
/// progress sink; `on_stage` hears about each stage as it ends.
pub fn run(
    study: &Study,
    progress_for: &dyn Fn(&str) -> Box<dyn Progress>,
    on_stage: &mut dyn FnMut(&StageReport),
) -> Result<Vec<StageReport>> {
    let out = study.out_dir();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let stages = plan(study)?;
    let mut reports = Vec::new();
    for stage in &stages {
        if stage.action == Action::UpToDate {
            continue;
        }
        if stage.action != Action::Resume {
            remove_output(&stage.output)?;
        }
        let mut record = StageRecord {
            id: stage.id.clone(),
            kind: stage.kind.to_string(),
            hash: stage.hash.clone(),
            complete: false,
            settings: stage.settings.clone(),
            inputs: stage.inputs.clone(),
            output: stage.output.clone(),
            seconds: None,
            peak_rss_bytes: None,
        };
        write_record(out, &record)?;
        reset_peak_rss();
        let started = Instant::now();
        let progress = progress_for(&stage.id);
        let summary = stage
            .work
            .execute(
                &stage.output,
                stage.action == Action::Resume,
                progress.as_ref(),
            )
            .with_context(|| format!("stage {}", stage.id))?;
        progress.finish();
        record.complete = true;
        record.seconds = Some(started.elapsed().as_secs_f64());
        record.peak_rss_bytes = peak_rss();
        write_record(out, &record)?;
        let report = StageReport {
            id: stage.id.clone(),
            action: stage.action,
            seconds: record.seconds.unwrap_or(0.0),
            peak_rss_bytes: record.peak_rss_bytes,
            summary,
        };
        on_stage(&report);
        reports.push(report);
    }
    Ok(reports)
}

fn remove_output(path: &Path) -> Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        return Ok(());
    };
    result.with_context(|| format!("removing the outdated {}", path.display()))
}

/// Linux: resets the process's peak RSS (VmHWM) so the next reading is this stage's own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Linux: the process's peak RSS since the last reset, from /proc/self/status.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `--plan` as text: one line per stage, its action and why.
pub fn plan_text(stages: &[PlannedStage]) -> String {
    let width = stages.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let mut text = String::new();
    for s in stages {
        text.push_str(&format!(
            "{:<10} {:<width$}  {}\n",
            s.action.name(),
            s.id,
            s.reason
        ));
    }
    let pending = stages
        .iter()
        .filter(|s| s.action != Action::UpToDate)
        .count();
    if pending == 0 {
        text.push_str("everything is up to date: nothing to run\n");
    } else {
        text.push_str(&format!("{pending} of {} stages to run\n", stages.len()));
    }
    text
}

/// Refuses to run when another stage id would write the same output (a study typo).
pub(crate) fn check_unique_outputs(stages: &[PlannedStage]) -> Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for s in stages {
        if let Some(other) = seen.insert(s.output.clone(), s.id.clone()) {
            bail!(
                "stages {other} and {} would both write {}",
                s.id,
                s.output.display()
            );
        }
    }
    Ok(())
}

/// Settings of a stage as JSON (what its hash covers besides its inputs).
pub(crate) fn settings_of<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| json!({"unserialisable": e.to_string()}))
}

//! `plmscope slurm STUDY.toml`: a study as Slurm batch jobs. Every stage of
//! [`crate::runner::plan`] becomes a job, chained by `--dependency=afterok:<id>`:
//!
//! - `prepare`: the study's `proteins.fasta` and random-weight models (`init = ...`);
//! - per sharded stage (embed, encode, analyze) an `sbatch --array=0-(N-1)` job whose task `i`
//!   runs the stage's command with `--shard i/N` into its own part folder, and a merge job
//!   (`plmscope merge PART... --out OUTPUT`) that waits for the whole array;
//! - train (and any stage with one shard) as one plain job that runs the study's own stage
//!   (`plmscope slurm STUDY.toml --exec STAGE`, the same code as `plmscope run`).
//!
//! Outputs land where `plmscope run` puts them (`OUT/<model>/activations`, `.../codes`,
//! `.../atlas`); parts under `OUT/parts/<stage>/part-<i>`; one log file per job and array task
//! under `<scripts>/logs/`. Resources come from the study's optional `[slurm]` section
//! ([`SlurmSection`]), per stage.
//!
//! ```toml
//! [slurm]
//! partition = "cpu"          # every job; each field may be overridden per stage below
//! account = "mylab"
//! time = "02:00:00"
//! cpus = 8
//! mem = "16G"
//! shards = 8                 # array size of embed and encode
//! setup = ["module load rust"]   # shell lines run first in every job
//!
//! [slurm.embed]
//! partition = "gpu"
//! gpus = 1                   # --gres=gpu:1
//! time = "12:00:00"
//! shards = 32
//! extra = ["--qos=long"]     # further #SBATCH lines
//!
//! [slurm.analyze]
//! shards = 4                 # analyze split by units (only when asked; merge recomputes q)
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::study::Study;
use crate::study_stages::build_stages;
use crate::Progress;

mod commands;
use commands::shard_command;

/// Resources of one kind of job (`[slurm.<stage>]`); unset fields take `[slurm]`'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResources {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-time limit, in Slurm's format (`HH:MM:SS`, `D-HH:MM:SS`).
    pub time: Option<String>,
    /// `--cpus-per-task`; plmscope runs that many threads.
    pub cpus: Option<u32>,
    /// `--mem`, e.g. `16G`.
    pub mem: Option<String>,
    /// GPUs per job or task: `--gres=gpu:N`.
    pub gpus: Option<u32>,
    /// Array tasks of a sharded stage (embed, encode, analyze).
    pub shards: Option<usize>,
    /// More `#SBATCH` options, e.g. `--qos=long` or `--constraint=a100`.
    #[serde(default)]
    pub extra: Vec<String>,
}

impl JobResources {
    /// `self` where set, else `base`.
    fn over(&self, base: &JobResources) -> JobResources {
        JobResources {
            partition: self.partition.clone().or_else(|| base.partition.clone()),
            account: self.account.clone().or_else(|| base.account.clone()),
            time: self.time.clone().or_else(|| base.time.clone()),
            cpus: self.cpus.or(base.cpus),
            mem: self.mem.clone().or_else(|| base.mem.clone()),
            gpus: self.gpus.or(base.gpus),
            shards: self.shards.or(base.shards),
            extra: base.extra.iter().chain(&self.extra).cloned().collect(),
        }
    }
}

/// The study's `[slurm]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub gpus: Option<u32>,
    /// Default array size of embed and encode (default 4); analyze is split only by
    /// `[slurm.analyze] shards`.
    pub shards: Option<usize>,
    #[serde(default)]
    pub extra: Vec<String>,
    /// The plmscope the jobs run (default: the binary that writes the scripts).
    pub plmscope: Option<String>,
    /// Shell lines run first in every job (`module load ...`, `source venv/bin/activate`).
    #[serde(default)]
    pub setup: Vec<String>,
    #[serde(default)]
    pub prepare: JobResources,
    #[serde(default)]
    pub embed: JobResources,
    #[serde(default)]
    pub train: JobResources,
    #[serde(default)]
    pub encode: JobResources,
    #[serde(default)]
    pub analyze: JobResources,
    #[serde(default)]
    pub merge: JobResources,
    /// Stages of other kinds (describe).
    #[serde(default)]
    pub other: JobResources,
}

/// Shards when neither the study nor `--shards` says.
pub const DEFAULT_SHARDS: usize = 4;

impl SlurmSection {
    fn base(&self) -> JobResources {
        JobResources {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            cpus: self.cpus,
            mem: self.mem.clone(),
            gpus: self.gpus,
            shards: self.shards,
            extra: self.extra.clone(),
        }
    }

    /// The resources of a job of `kind` (a stage kind, `prepare` or `merge`).
    pub fn resources(&self, kind: &str) -> JobResources {
        let own = match kind {
            "prepare" => &self.prepare,
            "embed" => &self.embed,
            "train" => &self.train,
            "encode" => &self.encode,
            "analyze" => &self.analyze,
            "merge" => &self.merge,
            _ => &self.other,
        };
        own.over(&self.base())
    }
}

/// What the scripts are made from.
#[derive(Clone, Debug)]
pub struct SlurmRequest {
    /// The study file, as the jobs will name it (`--exec` reads it again).
    pub study_file: PathBuf,
    /// Where the scripts, `submit.sh` and `logs/` go.
    pub dir: PathBuf,
    /// The plmscope the jobs run, unless `[slurm] plmscope` says.
    pub binary: String,
    /// Array size of embed and encode, over the study's `[slurm]`.
    pub shards: Option<usize>,
}

/// One batch job.
#[derive(Clone, Debug)]
pub struct SlurmJob {
    /// Script file name, e.g. `03-embed-t6.sbatch`.
    pub file: String,
    /// `embed`, `merge`, `train`...
    pub kind: String,
    /// Array tasks (`--array=0-(N-1)`), for a sharded stage.
    pub array: Option<usize>,
    /// Indices (in [`SlurmPlan::jobs`]) of the jobs this one waits for.
    pub after: Vec<usize>,
    /// The study stage it completes.
    pub stage: String,
    pub script: String,
}

/// Every job of a study, in submission order (each after the jobs it waits for).
#[derive(Clone, Debug)]
pub struct SlurmPlan {
    pub dir: PathBuf,
    pub jobs: Vec<SlurmJob>,
}

/// Single-quotes `s` for sh.
fn q(s: impl AsRef<str>) -> String {
    let s = s.as_ref();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn qp(p: &Path) -> String {
    q(p.display().to_string())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Loads a study for jobs that run in other folders, on other machines: returns the study
/// file's absolute path and the study, with `out` (when given) made absolute too.
pub fn load_study_for_jobs(study_file: &Path, out: Option<&Path>) -> Result<(PathBuf, Study)> {
    let study_file = absolute(study_file)?;
    let mut study = Study::load(&study_file)?;
    if let Some(out) = out {
        study.out = Some(absolute(out)?);
    }
    Ok((study_file, study))
}

/// Works out every job of `study` (its `out` and paths as loaded) without writing anything.
pub fn plan_jobs(study: &Study, req: &SlurmRequest) -> Result<SlurmPlan> {
    let section = study.slurm.clone().unwrap_or_default();
    // Absolute paths: the jobs run in other folders, maybe on other machines.
    let mut study = study.clone();
    study.out = Some(absolute(study.out_dir())?);
    let stages = build_stages(&study)?;
    let dir = absolute(&req.dir)?;
    let out = absolute(study.out_dir())?;
    let ctx = ScriptContext {
        binary: section
            .plmscope
            .clone()
            .unwrap_or_else(|| req.binary.clone()),
        study_file: absolute(&req.study_file)?,
        out: out.clone(),
        setup: section.setup.clone(),
        logs: dir.join("logs"),
    };
    let mut jobs: Vec<SlurmJob> = Vec::new();
    // The job that completes each stage (what a downstream job waits for).
    let mut done_by: Vec<usize> = Vec::with_capacity(stages.len());
    let mut prepare: Option<usize> = None;
    for stage in &stages {
        let after: Vec<usize> = stage
            .upstream
            .iter()
            .map(|&u| done_by[u])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if matches!(stage.kind, "proteins" | "model") {
            // Cheap and deterministic: one job writes them all.
            let index = *prepare.get_or_insert_with(|| {
                jobs.push(SlurmJob {
                    file: String::new(),
                    kind: "prepare".into(),
                    array: None,
                    after: Vec::new(),
                    stage: String::new(),
                    script: String::new(),
                });
                jobs.len() - 1
            });
            let job = &mut jobs[index];
            job.stage = if job.stage.is_empty() {
                stage.id.clone()
            } else {
                format!("{} {}", job.stage, stage.id)
            };
            done_by.push(index);
            continue;
        }
        let res = section.resources(stage.kind);
        // Analyze is split only when `[slurm.analyze] shards` asks: its parts redo the
        // per-protein work (loading, summaries) in every task, so splitting pays off only for
        // large dictionaries; merge recomputes the q-values over all parts.
        let shards = if stage.kind == "analyze" {
            section.analyze.shards.unwrap_or(1)
        } else {
            req.shards.or(res.shards).unwrap_or(DEFAULT_SHARDS)
        };
        if shards == 0 {
            bail!("stage {}: shards must be at least 1", stage.id);
        }
        let sharded = shards > 1 && matches!(stage.kind, "embed" | "encode" | "analyze");
        if !sharded {
            let command = ctx.exec(&[stage.id.as_str()]);
            jobs.push(ctx.job(stage.kind, &stage.id, None, after, &res, &command));
            done_by.push(jobs.len() - 1);
            continue;
        }
        let parts_dir = out.join("parts").join(stage.id.replace('/', "__"));
        // A part is a directory for every stage (analyze: its part atlas and part.json).
        let part = |i: &str| parts_dir.join(format!("part-{i}")).display().to_string();
        let command = shard_command(stage, &ctx, shards, &part("${SLURM_ARRAY_TASK_ID}"))?;
        let setup = format!("mkdir -p {}\n", qp(&parts_dir));
        jobs.push(ctx.job(
            stage.kind,
            &stage.id,
            Some(shards),
            after,
            &res,
            &format!("{setup}{command}"),
        ));
        let array = jobs.len() - 1;
        let parts: Vec<String> = (0..shards).map(|i| q(part(&i.to_string()))).collect();
        let merge = format!(
            "{} merge {} --out {}",
            q(&ctx.binary),
            parts.join(" "),
            qp(&absolute(&stage.output)?)
        );
        let merge_res = section.resources("merge");
        jobs.push(ctx.job("merge", &stage.id, None, vec![array], &merge_res, &merge));
        done_by.push(jobs.len() - 1);
    }
    if let Some(i) = prepare {
        let ids: Vec<String> = jobs[i].stage.split(' ').map(String::from).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let command = ctx.exec(&ids);
        let stage = jobs[i].stage.clone();
        jobs[i] = ctx.job(
            "prepare",
            &stage,
            None,
            Vec::new(),
            &section.resources("prepare"),
            &command,
        );
    }
    for (n, job) in jobs.iter_mut().enumerate() {
        let slug: String = job
            .stage
            .split(' ')
            .next()
            .unwrap_or("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = if job.kind == "merge" || job.kind == "prepare" {
            format!("{:02}-{}-{slug}", n, job.kind)
        } else {
            format!("{n:02}-{slug}")
        };
        job.file = format!("{name}.sbatch");
        job.script = job
            .script
            .replace("@NAME@", &name)
            .replace("@LOG@", &q(ctx.logs.join(&name).display().to_string()));
    }
    Ok(SlurmPlan { dir, jobs })
}

/// What every script shares.
struct ScriptContext {
    binary: String,
    study_file: PathBuf,
    out: PathBuf,
    setup: Vec<String>,
    logs: PathBuf,
}

impl ScriptContext {
    /// `plmscope slurm STUDY --out OUT --exec ID...`: the study's own stages, as `run` does them.
    fn exec(&self, ids: &[&str]) -> String {
        let mut c = format!(
            "{} slurm {} --out {}",
            q(&self.binary),
            qp(&self.study_file),
            qp(&self.out)
        );
        for id in ids {
            let _ = write!(c, " --exec {}", q(id));
        }
        c
    }

    /// A script: `#SBATCH` lines, `set -euo pipefail`, the setup lines, the command.
    fn job(
        &self,
        kind: &str,
        stage: &str,
        array: Option<usize>,
        after: Vec<usize>,
        res: &JobResources,
        command: &str,
    ) -> SlurmJob {
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(s, "# plmscope {kind}: {stage}");
        let _ = writeln!(s, "#SBATCH --job-name=plmscope-@NAME@");
        match array {
            Some(n) => {
                let _ = writeln!(s, "#SBATCH --array=0-{}", n - 1);
                let _ = writeln!(s, "#SBATCH --output=@LOG@-%A_%a.log");
            }
            None => {
                let _ = writeln!(s, "#SBATCH --output=@LOG@-%j.log");
            }
        }
        if let Some(p) = &res.partition {
            let _ = writeln!(s, "#SBATCH --partition={p}");
        }
        if let Some(a) = &res.account {
            let _ = writeln!(s, "#SBATCH --account={a}");
        }
        if let Some(t) = &res.time {
            let _ = writeln!(s, "#SBATCH --time={t}");
        }
        if let Some(c) = res.cpus {
            let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
        }
        if let Some(m) = &res.mem {
            let _ = writeln!(s, "#SBATCH --mem={m}");
        }
        if let Some(g) = res.gpus.filter(|&g| g > 0) {
            let _ = writeln!(s, "#SBATCH --gres=gpu:{g}");
        }
        for e in &res.extra {
            let e = e.trim().trim_start_matches("#SBATCH").trim();
            let _ = writeln!(s, "#SBATCH {e}");
        }
        s.push_str("set -euo pipefail\n");
        for line in &self.setup {
            s.push_str(line);
            s.push('\n');
        }
        // plmscope takes as many threads as the job was given cores.
        s.push_str(
            "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n",
        );
        s.push_str(command);
        s.push('\n');
        SlurmJob {
            file: String::new(),
            kind: kind.to_string(),
            array,
            after,
            stage: stage.to_string(),
            script: s,
        }
    }
}

impl SlurmPlan {
    /// Writes every script, `submit.sh` (submits them in order with their dependencies) and
    /// the `logs/` folder.
    pub fn write(&self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("logs"))
            .with_context(|| format!("creating {}", self.dir.join("logs").display()))?;
        for job in &self.jobs {
            let path = self.dir.join(&job.file);
            crate::write_atomic(&path, job.script.as_bytes())?;
        }
        crate::write_atomic(&self.dir.join("submit.sh"), self.submit_script().as_bytes())
    }

    /// `submit.sh`: what `--submit` does, as a script to read or edit first.
    pub fn submit_script(&self) -> String {
        let mut s = String::from(
            "#!/bin/bash\n# Submits every job in order; each waits for the jobs it needs \
             (afterok).\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\n",
        );
        for (n, job) in self.jobs.iter().enumerate() {
            let dep = if job.after.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = job.after.iter().map(|a| format!("$J{a}")).collect();
                format!(" --dependency=afterok:{}", ids.join(":"))
            };
            let _ = writeln!(s, "J{n}=$(sbatch --parsable{dep} {})", job.file);
            let _ = writeln!(s, "echo \"{} $J{n}\"", job.file);
        }
        s
    }

    /// Submits every job in order with `sbatch --parsable`, each with `--dependency=afterok` on
    /// the jobs it waits for; writes `jobs.tsv` (script, job id) and returns the ids.
    pub fn submit(&self, sbatch: &str) -> Result<Vec<String>> {
        let mut ids: Vec<String> = Vec::new();
        let mut tsv = String::from("script\tjob_id\n");
        for job in &self.jobs {
            let mut cmd = std::process::Command::new(sbatch);
            cmd.arg("--parsable").current_dir(&self.dir);
            if !job.after.is_empty() {
                let deps: Vec<&str> = job.after.iter().map(|&a| ids[a].as_str()).collect();
                cmd.arg(format!("--dependency=afterok:{}", deps.join(":")));
            }
            cmd.arg(&job.file);
            let output = cmd
                .output()
                .with_context(|| format!("running {sbatch} (is Slurm installed here?)"))?;
            if !output.status.success() {
                bail!(
                    "sbatch {} failed: {}",
                    job.file,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            // --parsable prints "id" or "id;cluster".
            let text = String::from_utf8_lossy(&output.stdout);
            let id = text.trim().split(';').next().unwrap_or("").to_string();
            if id.is_empty() {
                bail!("sbatch {} printed no job id", job.file);
            }
            let _ = writeln!(tsv, "{}\t{id}", job.file);
            crate::write_atomic(&self.dir.join("jobs.tsv"), tsv.as_bytes())?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// One line per job: file, array size, what it waits for.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for job in &self.jobs {
            let array = job
                .array
                .map_or(String::new(), |n| format!(" [array 0-{}]", n - 1));
            let after: Vec<&str> = job
                .after
                .iter()
                .map(|&a| self.jobs[a].file.as_str())
                .collect();
            let after = if after.is_empty() {
                String::new()
            } else {
                format!(" after {}", after.join(", "))
            };
            let _ = writeln!(s, "{}{array}{after}", job.file);
        }
        s
    }
}

/// `--exec ID...`: runs those stages of the study exactly as `plmscope run` does (what the
/// generated jobs call for the unsharded stages). Returns each stage's summary.
pub fn exec_stages(
    study: &Study,
    ids: &[String],
    progress_for: &dyn Fn(&str) -> Box<dyn Progress>,
) -> Result<Vec<String>> {
    let stages = build_stages(study)?;
    let mut summaries = Vec::new();
    for id in ids {
        let Some(stage) = stages.iter().find(|s| &s.id == id) else {
            let known: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
            bail!(
                "--exec {id}: the study has no such stage (it has {})",
                known.join(", ")
            );
        };
        // A job that Slurm reran continues a training checkpoint instead of starting over.
        let resume = stage.kind == "train"
            && std::fs::read_dir(&stage.output).is_ok_and(|mut d| d.next().is_some());
        let progress = progress_for(id);
        let summary = stage
            .work
            .execute(&stage.output, resume, progress.as_ref())
            .with_context(|| format!("stage {id}"))?;
        progress.finish();
        summaries.push(format!("{id}: {summary}"));
    }
    Ok(summaries)
}

//! `plmscope slurm --submit` on a real single-node Slurm cluster (munged, slurmctld and slurmd
//! on localhost, started by scripts/slurm-local.sh, which installs Debian's slurm-wlm and munge
//! with apt-get when they are missing and we are root). A study on real E. coli proteins with a
//! random-weight t6_8M: a 4-task embed array and its merge job.
//!
//! - One array task fails for real (its part folder is blocked by a file): the other tasks
//!   complete, the merge job never starts (DependencyNeverSatisfied, read with scontrol); after
//!   `sbatch --array=K` of that task alone and the merge again, the merged sets equal a
//!   single-process `plmscope embed`, byte for byte.
//! - A lost part (its shard files deleted): the merge job fails and names the part; rerunning
//!   only that task and the merge gives the same bytes again.
//!
//! Job states come from squeue and scontrol (no accounting, so no sacct). The daemons are
//! stopped at the end, also when the test fails (a guard). Without Slurm and without root to
//! install it the test is skipped, except under CI (CI set), where it fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok, plmscope, s, BIN};

const SHARDS: usize = 4;
/// The array task that fails, then is rerun alone.
const FAILING_TASK: usize = 2;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> String {
    let p = repo().join("../shared/data").join(rel);
    assert!(p.exists(), "test data missing: {}", p.display());
    p.display().to_string()
}

/// Runs scripts/slurm-local.sh start on drop's counterpart; stops the daemons when dropped.
struct LocalSlurm {
    state: PathBuf,
    conf: PathBuf,
}

impl LocalSlurm {
    /// `None`: no Slurm here and it cannot be installed (skipped outside CI).
    fn start(state: &Path) -> Option<LocalSlurm> {
        let out = Command::new("bash")
            .arg(repo().join("scripts/slurm-local.sh"))
            .arg("start")
            .env("PLMSCOPE_SLURM_DIR", state)
            .output()
            .expect("run bash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let guard = LocalSlurm {
            state: state.to_path_buf(),
            conf: state.join("slurm.conf"),
        };
        if out.status.success() {
            return Some(guard);
        }
        let missing = Command::new("sbatch").arg("--version").output().is_err();
        if missing && std::env::var_os("CI").is_none() {
            eprintln!("skipped: Slurm is not installed and could not be installed:\n{stderr}");
            return None;
        }
        panic!("scripts/slurm-local.sh start failed:\n{stderr}");
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Runs a Slurm client; returns stdout.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.cmd(program).args(args).output().expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sbatch --parsable ARGS` in `dir`; the job id.
    fn sbatch(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .cmd("sbatch")
            .arg("--parsable")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("sbatch");
        assert!(
            out.status.success(),
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// Waits until none of `ids` is pending or running, leaving out jobs whose dependency can
    /// never be satisfied; returns those (id, reason) lines.
    fn wait(&self, ids: &[&str], timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let list = self.run("squeue", &["-h", "-o", "%i %T %r", "-j", &ids.join(",")]);
            let active: Vec<&str> = list
                .lines()
                .filter(|l| !l.contains("DependencyNeverSatisfied"))
                .collect();
            if active.is_empty() {
                return list.lines().map(String::from).collect();
            }
            assert!(
                start.elapsed() < timeout,
                "jobs still active after {timeout:?}:\n{list}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// JobState of a job, or of every task of an array (by ArrayTaskId), from scontrol.
    fn states(&self, id: &str) -> BTreeMap<String, String> {
        let text = self.run("scontrol", &["show", "job", "-o", id]);
        text.lines()
            .map(|record| {
                let field = |name: &str| {
                    record
                        .split_whitespace()
                        .find_map(|f| f.strip_prefix(name))
                        .unwrap_or("")
                        .to_string()
                };
                (field("ArrayTaskId="), field("JobState="))
            })
            .collect()
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for name in ["slurmctld.log", "slurmd.log"] {
            let log = std::fs::read_to_string(self.state.join(name)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            text.push_str(&format!("== {name}\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/slurm-local.sh"))
            .arg("stop")
            .env("PLMSCOPE_SLURM_DIR", &self.state)
            .status();
    }
}

/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

fn assert_same_tree(merged: &Path, single: &Path) {
    let (a, b) = (tree(merged), tree(single));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{} differs from the single-process run",
            name.display()
        );
    }
    assert!(a.keys().any(|k| k.ends_with("manifest.json")));
}

/// The scripts without a cluster: resources per stage, arrays, dependencies, valid shell.
#[test]
fn scripts_carry_each_stages_resources_arrays_and_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            r#"
name = "gen"
out = "out"
[[proteins]]
fasta = "{ecoli}"
max = 10
[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}
[embed]
layers = [2]
levels = ["protein"]
[[dictionaries]]
name = "d"
level = "protein"
k = 4
expansion = 2
steps = 10
[analyze]
go = "{go}"
annotations = ["{go_csv}"]
alpha = 0.1

[slurm]
partition = "cpu"
account = "lab"
time = "01:00:00"
cpus = 4
mem = "8G"
shards = 2
setup = ["module load plmscope"]
[slurm.embed]
partition = "gpu"
gpus = 1
shards = 3
extra = ["--qos=long"]
[slurm.train]
time = "12:00:00"
"#,
            ecoli = data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
            go = data("go-basic.obo"),
            go_csv = data("ecoli_k12/UP000000625_83333_go.csv"),
        ),
    )
    .unwrap();
    let scripts = tmp.path().join("scripts");
    let printed = ok(&plmscope(&["slurm", s(&study), "--scripts", s(&scripts)]));
    let read = |f: &str| std::fs::read_to_string(scripts.join(f)).unwrap();
    let set = "t6-d-layer2.resid-post.protein";
    let files = [
        "00-prepare-proteins.sbatch".to_string(),
        "01-embed-t6.sbatch".into(),
        "02-merge-embed-t6.sbatch".into(),
        format!("03-train-{set}.sbatch"),
        format!("04-encode-{set}.sbatch"),
        format!("05-merge-encode-{set}.sbatch"),
        format!("06-analyze-{set}.sbatch"),
    ];
    for f in &files {
        assert!(printed.contains(f.as_str()), "{f} not listed:\n{printed}");
        let status = Command::new("bash")
            .arg("-n")
            .arg(scripts.join(f))
            .status()
            .unwrap();
        assert!(status.success(), "{f} is not valid shell");
    }
    let prepare = read(&files[0]);
    assert!(
        prepare.contains("--exec proteins --exec model/t6"),
        "{prepare}"
    );
    assert!(prepare.contains("module load plmscope\n"));
    let embed = read(&files[1]);
    for line in [
        "#SBATCH --array=0-2",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --time=01:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --qos=long",
        "--shard \"${SLURM_ARRAY_TASK_ID}/3\"",
        "01-embed-t6-%A_%a.log",
    ] {
        assert!(embed.contains(line), "embed script lacks {line}:\n{embed}");
    }
    let train = read(&files[3]);
    assert!(train.contains("#SBATCH --time=12:00:00"), "{train}");
    assert!(train.contains("#SBATCH --partition=cpu"), "{train}");
    assert!(
        !train.contains("--array") && !train.contains("--gres"),
        "{train}"
    );
    assert!(train.contains("--exec train/t6/d/layer2.resid_post.protein"));
    let encode = read(&files[4]);
    assert!(encode.contains("#SBATCH --array=0-1") && encode.contains("encode --sae"));
    assert!(read(&files[5]).contains(" merge "));
    // Analyze stays one job unless [slurm.analyze] shards says otherwise.
    let analyze = read(&files[6]);
    assert!(analyze.contains("--exec analyze/t6/d/layer2.resid_post.protein"));
    let submit = read("submit.sh");
    assert!(submit.contains("--dependency=afterok:$J1 02-merge-embed-t6.sbatch"));
    assert!(submit.contains(&format!(
        "--dependency=afterok:$J2:$J5 06-analyze-{set}.sbatch"
    )));
    assert!(scripts.join("logs").is_dir());

    // Analyze as an array when asked: the flags of the study's analysis, with --shard.
    let text = std::fs::read_to_string(&study).unwrap() + "[slurm.analyze]\nshards = 2\n";
    std::fs::write(&study, text).unwrap();
    ok(&plmscope(&["slurm", s(&study), "--scripts", s(&scripts)]));
    let analyze = read(&files[6]);
    for flag in [
        "--array=0-1",
        "analyze --codes",
        "--alpha 0.1",
        "--neurons",
        "--shard",
    ] {
        assert!(analyze.contains(flag), "analyze lacks {flag}:\n{analyze}");
    }
    assert!(read(&format!("07-merge-analyze-{set}.sbatch")).contains(".sqlite"));

    // A typo in [slurm] is named.
    let text = std::fs::read_to_string(&study).unwrap() + "[slurm.merge]\ngpu = 1\n";
    std::fs::write(&study, text).unwrap();
    let err = common::fails(&plmscope(&["slurm", s(&study), "--scripts", s(&scripts)]));
    assert!(err.contains("gpu"), "{err}");
}

#[test]
fn embed_array_merge_equals_single_process_and_one_failed_task_is_rerun_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(slurm) = LocalSlurm::start(&tmp.path().join("slurm-state")) else {
        return;
    };
    let study = tmp.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            r#"
name = "slurm-test"
out = "out"

[[proteins]]
fasta = "{ecoli}"
max = 16

[[models]]
name = "t6"
init = {{ arch = "esm2_t6_8M", seed = 0 }}

[embed]
layers = [2]
levels = ["protein", "residue"]
proteins_per_shard = 2

[slurm]
shards = {SHARDS}
cpus = 1
mem = "1G"
time = "00:10:00"
"#,
            ecoli = data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"),
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let scripts = out.join("slurm");
    let parts = out.join("parts").join("embed__t6");
    // A file where task FAILING_TASK's part folder goes: that task fails for real.
    std::fs::create_dir_all(&parts).unwrap();
    let blocked = parts.join(format!("part-{FAILING_TASK}"));
    std::fs::write(&blocked, "not a folder").unwrap();

    let started = Instant::now();
    let printed = ok(&Command::new(BIN)
        .args(["slurm", s(&study), "--submit"])
        .env("SLURM_CONF", &slurm.conf)
        .output()
        .unwrap());
    let jobs_tsv = std::fs::read_to_string(scripts.join("jobs.tsv")).unwrap();
    let jobs: Vec<(String, String)> = jobs_tsv
        .lines()
        .skip(1)
        .map(|l| {
            let (f, id) = l.split_once('\t').unwrap();
            (f.to_string(), id.to_string())
        })
        .collect();
    let names: Vec<&str> = jobs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "00-prepare-proteins.sbatch",
            "01-embed-t6.sbatch",
            "02-merge-embed-t6.sbatch"
        ],
        "{printed}"
    );
    let embed_script = std::fs::read_to_string(scripts.join(&jobs[1].0)).unwrap();
    assert!(embed_script.contains(&format!("#SBATCH --array=0-{}", SHARDS - 1)));
    assert!(embed_script.contains("#SBATCH --cpus-per-task=1"));
    assert!(embed_script.contains("#SBATCH --mem=1G"));
    let ids: Vec<&str> = jobs.iter().map(|(_, id)| id.as_str()).collect();
    let (embed_id, merge_id) = (ids[1], ids[2]);

    // The failed task leaves the merge waiting for ever; the other tasks completed.
    let stuck = slurm.wait(&ids, Duration::from_secs(900));
    assert!(
        stuck.iter().any(|l| l.starts_with(merge_id)),
        "the merge job should wait on the failed task: {stuck:?}\n{}",
        slurm.logs()
    );
    let tasks = slurm.states(embed_id);
    for (task, state) in &tasks {
        let want = if task == &FAILING_TASK.to_string() {
            "FAILED"
        } else {
            "COMPLETED"
        };
        assert_eq!(state, want, "task {task}: {tasks:?}");
    }
    assert_eq!(tasks.len(), SHARDS, "{tasks:?}");
    assert_eq!(slurm.states(ids[0]).values().next().unwrap(), "COMPLETED");
    let log = scripts
        .join("logs")
        .join(format!("01-embed-t6-{embed_id}_{FAILING_TASK}.log"));
    assert!(log.exists(), "per-task log {}", log.display());
    slurm.run("scancel", &[merge_id]);

    // Rerun only the failed task, then the merge.
    std::fs::remove_file(&blocked).unwrap();
    let rerun = |what: &str| {
        let task = slurm.sbatch(
            &scripts,
            &[&format!("--array={FAILING_TASK}"), "01-embed-t6.sbatch"],
        );
        let merge = slurm.sbatch(
            &scripts,
            &[
                &format!("--dependency=afterok:{task}"),
                "02-merge-embed-t6.sbatch",
            ],
        );
        let left = slurm.wait(&[&task, &merge], Duration::from_secs(600));
        assert!(left.is_empty(), "{what}: {left:?}");
        assert_eq!(
            slurm.states(&task).get(&FAILING_TASK.to_string()).unwrap(),
            "COMPLETED"
        );
        assert_eq!(
            slurm.states(&merge).values().next().unwrap(),
            "COMPLETED",
            "{what}"
        );
    };
    rerun("after a failed task");
    let slurm_seconds = started.elapsed().as_secs_f64();

    // The same embed in one process.
    let single = tmp.path().join("single");
    ok(&plmscope(&[
        "embed",
        "--model",
        s(&out.join("models/t6")),
        "--fasta",
        s(&out.join("proteins.fasta")),
        "--layers",
        "2",
        "--level",
        "protein,residue",
        "--proteins-per-shard",
        "2",
        "--out",
        s(&single),
    ]));
    let merged = out.join("t6").join("activations");
    assert_same_tree(&merged, &single);

    // A lost part: the merge fails and names it; rerunning that task alone repairs it.
    let part = parts.join(format!("part-{FAILING_TASK}"));
    let mut removed = 0;
    for set in std::fs::read_dir(&part).unwrap() {
        let set = set.unwrap().path();
        if set.is_dir() {
            for f in std::fs::read_dir(&set).unwrap() {
                let f = f.unwrap().path();
                if f.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("shard-")
                {
                    std::fs::remove_file(&f).unwrap();
                    removed += 1;
                }
            }
        }
    }
    assert!(removed > 0, "part {FAILING_TASK} held no shard files");
    std::fs::remove_dir_all(&merged).unwrap();
    let merge = slurm.sbatch(&scripts, &["02-merge-embed-t6.sbatch"]);
    slurm.wait(&[&merge], Duration::from_secs(300));
    assert_eq!(slurm.states(&merge).values().next().unwrap(), "FAILED");
    let merge_log = std::fs::read_to_string(
        scripts
            .join("logs")
            .join(format!("02-merge-embed-t6-{merge}.log")),
    )
    .unwrap();
    assert!(
        merge_log.contains(&format!("part-{FAILING_TASK}")),
        "the merge should name the lost part: {merge_log}"
    );
    rerun("after a lost part");
    assert_same_tree(&merged, &single);
    eprintln!(
        "slurm: {SHARDS}-task embed array + merge, one task failed and rerun: {slurm_seconds:.1}s"
    );
}

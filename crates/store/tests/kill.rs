//! A real `kill -9` in the middle of writing: the rerun resumes and the finished set is
//! byte-identical to an uninterrupted run.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use plmscope_store::{ActivationSet, ActivationSetWriter, Level, SetHeader, StorageDtype};

const CHILD_ENV: &str = "PLMSCOPE_STORE_KILL_CHILD_DIR";

fn big_header() -> SetHeader {
    // 60 shards of ~2 proteins x ~12 residues x 2048 wide: shards of ~200 KB, so the kill
    // has a fair chance to land inside a write.
    common::header(Level::Residue, StorageDtype::F32, 2048, 2, 120)
}

/// Writes every missing shard, then finishes.
fn write_all(dir: &Path, pause: Duration) {
    let header = big_header();
    let all = common::proteins(header.total_proteins);
    let mut writer = ActivationSetWriter::create_or_resume(dir, header).unwrap();
    for shard in writer.missing_shards() {
        common::write_shards(&mut writer, &all, &[shard]);
        std::thread::sleep(pause);
    }
    writer
        .finish(serde_json::json!({ "note": "kill test" }))
        .unwrap();
}

/// Runs only as the child process of `kill_9_then_resume_is_byte_identical`.
#[test]
fn child_writer_for_kill_test() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        write_all(Path::new(&dir), Duration::from_millis(20));
    }
}

#[test]
fn kill_9_then_resume_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let killed = tmp.path().join("killed");
    write_all(&reference, Duration::ZERO);

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer_for_kill_test", "--test-threads=1"])
        .env(CHILD_ENV, &killed)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !killed.join("shard-00005.safetensors").exists() {
        assert!(Instant::now() < deadline, "child wrote nothing in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        ActivationSet::open(&killed).is_err(),
        "a killed run must not look complete"
    );

    write_all(&killed, Duration::ZERO);
    let (a, b) = (common::dir_bytes(&reference), common::dir_bytes(&killed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs");
    }
}

//! Atomic writes against a real directory: content after commit, nothing after an uncommitted
//! drop, no temporary left behind, errors that name the path.

use std::io::Write;
use std::path::{Path, PathBuf};

use plmscope_fsutil::{persist, sync_dir, write_atomic, AtomicFile};

/// A fresh empty directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fsutil-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn write_atomic_leaves_exactly_the_content_and_no_temporary() {
    let dir = TempDir::new("write");
    let path = dir.0.join("a.json");
    write_atomic(&path, b"first").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    // Overwriting replaces the whole content (a shorter file leaves no tail of the old one).
    write_atomic(&path, b"2nd").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"2nd");
    assert_eq!(names(&dir.0), ["a.json"]);
}

#[test]
fn atomic_file_is_invisible_until_commit() {
    let dir = TempDir::new("commit");
    let path = dir.0.join("big.bin");
    let mut file = AtomicFile::create(&path).unwrap();
    assert!(file
        .tmp_path()
        .ends_with(format!("big.bin.{}.tmp", std::process::id())));
    for chunk in 0..300u32 {
        file.write_all(&[chunk as u8; 4096]).unwrap();
    }
    assert!(
        !path.exists(),
        "the final name must not exist before commit"
    );
    file.commit().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 300 * 4096);
    assert!(
        bytes[4096 * 299..].iter().all(|&b| b == 43),
        "last chunk (299 mod 256)"
    );
    assert_eq!(names(&dir.0), ["big.bin"]);
}

#[test]
fn uncommitted_drop_keeps_the_old_file_and_removes_the_temporary() {
    let dir = TempDir::new("drop");
    let path = dir.0.join("state.json");
    write_atomic(&path, b"old").unwrap();
    {
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new but abandoned").unwrap();
        file.flush().unwrap();
        assert!(file.tmp_path().exists());
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(names(&dir.0), ["state.json"]);

    let fresh = dir.0.join("never.json");
    drop(AtomicFile::create(&fresh).unwrap());
    assert!(!fresh.exists());
    assert_eq!(names(&dir.0), ["state.json"]);
}

#[test]
fn errors_name_the_path_and_the_action() {
    let dir = TempDir::new("errors");
    let missing = dir.0.join("no-such-dir").join("f.json");
    let err = write_atomic(&missing, b"x").unwrap_err();
    assert!(err.path.starts_with(dir.0.join("no-such-dir")), "{err}");
    assert_eq!(err.action, "creating");
    assert!(err.to_string().contains("no-such-dir"), "{err}");

    // The rename fails when the final name is a non-empty directory; the temporary goes away.
    let blocked = dir.0.join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("inside"), b"").unwrap();
    let err = write_atomic(&blocked, b"x").unwrap_err();
    assert_eq!(err.path, blocked);
    assert!(err.to_string().contains("renaming"), "{err}");
    assert_eq!(names(&dir.0), ["blocked"]);

    let err = sync_dir(&dir.0.join("gone")).unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
}

#[test]
fn persist_moves_a_finished_file_into_place() {
    let dir = TempDir::new("persist");
    let from = dir.0.join("atlas.sqlite.tmp");
    let to = dir.0.join("atlas.sqlite");
    std::fs::write(&from, b"db").unwrap();
    persist(&from, &to).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"db");
    assert_eq!(names(&dir.0), ["atlas.sqlite"]);
    let err = persist(&from, &to).unwrap_err();
    assert_eq!(err.path, from, "a missing source is named: {err}");
}

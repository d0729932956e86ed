//! `plmscope import` and `plmscope export` through the binary: an h5py fixture imported, the
//! set exported to Parquet, and the errors a user meets named with their fix.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_plmscope");

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../exchange/tests/fixtures/import")
}

fn plmscope(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running plmscope")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn import_then_export_to_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let h5 = fixtures().join("hdf5/gzip_f16.h5");
    let out = plmscope(&[
        "import",
        "--format",
        "hdf5",
        path(&h5),
        "--out",
        path(&set),
        "--model",
        "test/prot_t5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 proteins, 17 rows of width 16"),
        "{stdout}"
    );

    let parquet = tmp.path().join("parquet");
    let out = plmscope(&["export", path(&set), "--parquet", path(&parquet)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["proteins.parquet", "activations.parquet"] {
        let bytes = std::fs::read(parquet.join(file)).unwrap();
        assert!(
            bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
            "{file}"
        );
    }
}

#[test]
fn errors_name_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let npy = fixtures().join("npy/embeddings.npy");
    let out = plmscope(&[
        "import",
        "--format",
        "npy",
        path(&npy),
        "--out",
        path(&tmp.path().join("s")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ids"));

    let out = plmscope(&[
        "export",
        path(&tmp.path().join("nothing")),
        "--parquet",
        path(tmp.path()),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

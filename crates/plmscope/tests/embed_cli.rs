//! `plmscope embed` end to end through the real binary: resume after `kill -9` is
//! byte-identical, bad records are named, policies are recorded in the manifest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plmscope");
const ECOLI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ecoli_k12/UP000000625_83333_tpp_solver.fasta"
);

fn plmscope(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run plmscope")
}

/// The first `n` E. coli proteins of at most `max_len` residues, as FASTA text.
fn ecoli_fasta(n: usize, max_len: usize) -> String {
    let text = std::fs::read_to_string(ECOLI).unwrap();
    let mut out = String::new();
    let mut taken = 0;
    for record in text.split('>').skip(1) {
        let (header, seq) = record.split_once('\n').unwrap();
        let seq: String = seq.split_whitespace().collect();
        if seq.len() <= max_len && !seq.contains('X') {
            out.push_str(&format!(">{header}\n{seq}\n"));
            taken += 1;
            if taken == n {
                break;
            }
        }
    }
    out
}

fn model(dir: &Path) -> String {
    let out = dir.join("model");
    if !out.exists() {
        let o = plmscope(&[
            "model",
            "init",
            "--arch",
            "esm2_t6_8M",
            "--seed",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    out.to_str().unwrap().to_string()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for set in std::fs::read_dir(dir).unwrap() {
        let set = set.unwrap().path();
        for f in std::fs::read_dir(&set).unwrap() {
            let f = f.unwrap().path();
            out.push((
                f.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&f).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn embed_args<'a>(model: &'a str, fasta: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--threads",
        "2",
        "embed",
        "--model",
        model,
        "--fasta",
        fasta,
        "--layers",
        "2,6",
        "--sites",
        "resid_post,mlp_out,block_delta",
        "--level",
        "residue,protein",
        "--proteins-per-shard",
        "6",
        "--token-budget",
        "600",
        "--out",
        out,
    ]
}

#[test]
fn resume_after_kill_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let fasta = tmp.path().join("in.fasta");
    std::fs::write(&fasta, ecoli_fasta(60, 250)).unwrap();
    let fasta = fasta.to_str().unwrap();
    let whole = tmp.path().join("whole");
    let o = plmscope(&embed_args(&model, fasta, whole.to_str().unwrap()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let resumed = tmp.path().join("resumed");
    let mut child = Command::new(BIN)
        .args(embed_args(&model, fasta, resumed.to_str().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let probe = resumed.join("layer6.block_delta.protein/shard-00002.safetensors");
    let start = Instant::now();
    while !probe.exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let manifest =
        std::fs::read_to_string(resumed.join("layer6.block_delta.protein/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"complete\": false"),
        "a killed run must not look complete"
    );
    let o = plmscope(&embed_args(&model, fasta, resumed.to_str().unwrap()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (files(&whole), files(&resumed));
    assert_eq!(a.len(), b.len());
    // 12 sets (2 layers x 3 sites x 2 levels), each a manifest, proteins.tsv and 10 shards.
    assert_eq!(a.len(), 12 * 12);
    for ((pa, da), (pb, db)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert!(da == db, "{} differs after resume", pa.display());
    }
}

#[test]
fn invalid_residue_names_file_line_and_record_unless_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let fasta = tmp.path().join("bad.fasta");
    std::fs::write(
        &fasta,
        ">sp|P00001|GOOD_ECOLI ok\nMKTAYIAKQR\n>sp|P00002|BAD_ECOLI bad\nMKT\nAY1AK\n>sp|P00003|LOW_ECOLI\nmktayiak\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "embed",
            "--model",
            &model,
            "--fasta",
            fasta.to_str().unwrap(),
            "--layers",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let o = Command::new(BIN).args(args(&[])).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.fasta:3")
            && err.contains("P00002")
            && err.contains("'1'")
            && err.contains("--on-invalid skip"),
        "{err}"
    );
    assert!(
        !out.join("layer1.resid_post.residue/manifest.json").exists(),
        "nothing is written before validation passes"
    );

    let o = Command::new(BIN)
        .args(args(&["--on-invalid", "skip"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest =
        std::fs::read_to_string(out.join("layer1.resid_post.protein/manifest.json")).unwrap();
    assert!(manifest.contains("P00002"), "{manifest}");
    let proteins =
        std::fs::read_to_string(out.join("layer1.resid_post.protein/proteins.tsv")).unwrap();
    let ids: Vec<&str> = proteins
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(
        ids,
        ["P00001", "P00003"],
        "UniProt accessions as ids, lowercase accepted"
    );
}

#[test]
fn long_proteins_follow_the_policy_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let fasta = tmp.path().join("long.fasta");
    let long: String = "MKTAYIAKQRG".repeat(100); // 1,100 residues
    std::fs::write(&fasta, format!(">short\nMKTAYIAKQR\n>long1\n{long}\n")).unwrap();
    let run = |policy: &str, out: &str| {
        let out = tmp.path().join(out);
        let o = plmscope(&[
            "embed",
            "--model",
            &model,
            "--fasta",
            fasta.to_str().unwrap(),
            "--layers",
            "1",
            "--level",
            "residue",
            "--long",
            policy,
            "--out",
            out.to_str().unwrap(),
        ]);
        (o, out)
    };
    let (o, _) = run("error", "e");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("long1 has 1100 residues"));
    let (o, out) = run("truncate", "t");
    assert!(o.status.success());
    let tsv = std::fs::read_to_string(out.join("layer1.resid_post.residue/proteins.tsv")).unwrap();
    assert!(tsv.contains("long1\t1022"), "{tsv}");
    let manifest =
        std::fs::read_to_string(out.join("layer1.resid_post.residue/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"truncated\"") && manifest.contains("1100"),
        "{manifest}"
    );
    let (o, out) = run("skip", "s");
    assert!(o.status.success());
    let tsv = std::fs::read_to_string(out.join("layer1.resid_post.residue/proteins.tsv")).unwrap();
    assert!(!tsv.contains("long1"));
}

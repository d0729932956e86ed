//! `--shard i/N` and `plmscope merge` through the real binary, on real E. coli proteins and a
//! random-weight ESM2 t6_8M: embed and encode split 3 ways and merged give every file of a
//! single-process run byte for byte; a missing part, a damaged part and parts of different N
//! are named; rerunning the damaged part alone and merging again gives the same bytes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{fails, ok, plmscope, random_t6, s};

const ECOLI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ecoli_k12/UP000000625_83333_tpp_solver.fasta"
);

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

/// Every file under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts that two result directories hold the same files with the same bytes.
fn assert_same_files(single: &Path, merged: &Path) {
    let (a, b) = (files(single), files(merged));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{} differs", name.display());
    }
}

struct Study {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    fasta: PathBuf,
}

fn study() -> Study {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let fasta = root.join("ecoli.fasta");
    // Lengths vary a lot, so a split balanced by residues differs from one by proteins.
    std::fs::write(&fasta, ecoli_fasta(36, 260)).unwrap();
    let model = root.join("model");
    random_t6(&model);
    Study {
        _tmp: tmp,
        root,
        model,
        fasta,
    }
}

impl Study {
    fn embed(&self, out: &Path, shard: Option<&str>) -> std::process::Output {
        let mut args = vec![
            "embed",
            "--model",
            s(&self.model),
            "--fasta",
            s(&self.fasta),
            "--layers",
            "2,5",
            "--level",
            "residue,protein",
            "--dtype",
            "f16",
            "--proteins-per-shard",
            "4",
            "--out",
            s(out),
        ];
        if let Some(part) = shard {
            args.extend(["--shard", part]);
        }
        plmscope(&args)
    }

    fn encode(&self, sae: &Path, acts: &Path, out: &Path, shard: Option<&str>) {
        let mut args = vec![
            "encode",
            "--sae",
            s(sae),
            "--activations",
            s(acts),
            "--out",
            s(out),
        ];
        if let Some(part) = shard {
            args.extend(["--shard", part]);
        }
        ok(&plmscope(&args));
    }
}

fn merge(parts: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(|p| s(p)));
    args.extend(["--out", s(out)]);
    plmscope(&args)
}

#[test]
fn sharded_embed_and_encode_merge_to_the_single_process_bytes() {
    let st = study();
    let r = &st.root;
    let single = r.join("single");
    ok(&st.embed(&single, None));

    // Three parts, one of them through Slurm's array index.
    let parts: Vec<PathBuf> = (0..3).map(|i| r.join(format!("part{i}"))).collect();
    ok(&st.embed(&parts[0], Some("0/3")));
    let o = std::process::Command::new(common::BIN)
        .args([
            "--threads",
            "2",
            "embed",
            "--model",
            s(&st.model),
            "--fasta",
            s(&st.fasta),
        ])
        .args([
            "--layers",
            "2,5",
            "--level",
            "residue,protein",
            "--dtype",
            "f16",
        ])
        .args([
            "--proteins-per-shard",
            "4",
            "--out",
            s(&parts[1]),
            "--shard",
            "auto/3",
        ])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .output()
        .unwrap();
    ok(&o);
    ok(&st.embed(&parts[2], Some("2/3")));
    // Each part holds only its own shards: disjoint, together all of them.
    let shard_files = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir.join("layer2.resid_post.residue"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("shard-"))
            .collect()
    };
    let counts: Vec<usize> = parts.iter().map(|p| shard_files(p).len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 9, "36 proteins / 4 per shard");
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    let part_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(parts[1].join("part.json")).unwrap()).unwrap();
    assert_eq!(part_json["index"], 1);
    assert_eq!(part_json["count"], 3);
    assert_eq!(part_json["weight"], "residues");

    let merged = r.join("merged");
    let refs: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
    ok(&merge(&[refs[2], refs[0], refs[1]], &merged));
    assert_same_files(&single, &merged);

    // A missing part is named, with the --shard to rerun.
    let e = fails(&merge(&[refs[0], refs[2]], &r.join("m2")));
    assert!(e.contains("part 1/3") && e.contains("missing"), "{e}");

    // A damaged part (a truncated shard) is named with its part and file; rerunning that
    // part alone repairs it, and the merge gives the same bytes again.
    let victim = parts[1]
        .join("layer5.resid_post.residue")
        .join(&shard_files(&parts[1])[0]);
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let remerged = r.join("remerged");
    let e = fails(&merge(&refs, &remerged));
    assert!(
        e.contains("part 1/3") && e.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{e}"
    );
    assert!(e.contains("damaged") && e.contains("--shard 1/3"), "{e}");
    ok(&st.embed(&parts[1], Some("1/3")));
    ok(&merge(&refs, &remerged));
    assert_same_files(&single, &remerged);

    // A part whose part.json is gone is unfinished, and says so.
    let unfinished = r.join("unfinished");
    ok(&st.embed(&unfinished, Some("0/3")));
    std::fs::remove_file(unfinished.join("part.json")).unwrap();
    let e = fails(&merge(&[&unfinished, refs[1], refs[2]], &r.join("m3")));
    assert!(
        e.contains("unfinished") && e.contains(s(&unfinished)),
        "{e}"
    );

    // Encode: a dictionary on the residue set, its codes in one process and in 3 parts.
    let acts = single.join("layer5.resid_post.residue");
    let sae = r.join("sae");
    ok(&plmscope(&[
        "train",
        "--activations",
        s(&acts),
        "--k",
        "4",
        "--expansion",
        "2",
        "--steps",
        "8",
        "--batch",
        "256",
        "--seed",
        "1",
        "--out",
        s(&sae),
    ]));
    let codes = r.join("codes");
    st.encode(&sae, &acts, &codes, None);
    let code_parts: Vec<PathBuf> = (0..3).map(|i| r.join(format!("codes{i}"))).collect();
    for (i, part) in code_parts.iter().enumerate() {
        st.encode(&sae, &acts, part, Some(&format!("{i}/3")));
    }
    let code_refs: Vec<&Path> = code_parts.iter().map(|p| p.as_path()).collect();
    let merged_codes = r.join("merged_codes");
    ok(&merge(&code_refs, &merged_codes));
    assert_same_files(&codes, &merged_codes);

    // Parts of different N (or of a different stage) never merge.
    let other = r.join("codes_of_2");
    st.encode(&sae, &acts, &other, Some("1/2"));
    let e = fails(&merge(&[code_refs[0], &other, code_refs[2]], &r.join("m4")));
    assert!(e.contains("differ in N"), "{e}");
    let e = fails(&merge(
        &[code_refs[0], refs[1], code_refs[2]],
        &r.join("m5"),
    ));
    assert!(e.contains("differ in stage"), "{e}");

    // A code part with a flipped byte: named, repaired by rerunning it alone.
    let victim = code_parts[2].join(
        std::fs::read_dir(&code_parts[2])
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("codes-"))
            .unwrap(),
    );
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let e = fails(&merge(&code_refs, &r.join("m6")));
    assert!(e.contains("part 2/3") && e.contains("sha256"), "{e}");
    st.encode(&sae, &acts, &code_parts[2], Some("2/3"));
    let remerged_codes = r.join("remerged_codes");
    ok(&merge(&code_refs, &remerged_codes));
    assert_same_files(&codes, &remerged_codes);
}

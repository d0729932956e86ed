//! `plmscope train | eval | encode` end to end through the real binary, on activation sets
//! embedded from real E. coli proteins by a random-weight ESM2-8M (and small hand-built sets for
//! the bad-input cases): records, evaluation against an independent computation, codes against
//! the dictionary, `kill -9` + `--resume` ending byte-identical, and clean refusals.

mod common;

use common::{fails, ok, plmscope, random_t6, s, BIN};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plmscope_sae::{io, metrics};
use plmscope_store::{
    split_by_protein, ActivationSet, ActivationSetWriter, CodeSet, Level, ModelRef, ProteinEntry,
    SetHeader, Site, StorageDtype,
};
use serde_json::Value;

const ECOLI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ecoli_k12/UP000000625_83333_tpp_solver.fasta"
);

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Activation sets of 40 short E. coli proteins, layers 1-2 × 3 sites × 2 levels, made once.
fn acts() -> &'static Path {
    static ACTS: OnceLock<PathBuf> = OnceLock::new();
    ACTS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dictionary_cli");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let text = std::fs::read_to_string(ECOLI).unwrap();
        let mut fasta = String::new();
        let mut taken = 0;
        for record in text.split('>').skip(1) {
            let (header, seq) = record.split_once('\n').unwrap();
            let seq: String = seq.split_whitespace().collect();
            if (60..=160).contains(&seq.len()) && taken < 40 {
                fasta.push_str(&format!(">{header}\n{seq}\n"));
                taken += 1;
            }
        }
        std::fs::write(root.join("small.fasta"), fasta).unwrap();
        let model = root.join("model");
        random_t6(&model);
        let acts = root.join("acts");
        ok(&plmscope(&[
            "embed",
            "--model",
            s(&model),
            "--fasta",
            s(&root.join("small.fasta")),
            "--layers",
            "1,2",
            "--sites",
            "resid_post,mlp_in,mlp_out",
            "--level",
            "residue,protein",
            "--proteins-per-shard",
            "16",
            "--out",
            s(&acts),
        ]));
        acts
    })
}

fn set(name: &str) -> PathBuf {
    acts().join(name)
}

/// A TopK SAE (k 8, 1,280 latents) trained on layer 1 resid_post, made once.
fn layer1_sae() -> &'static Path {
    static SAE: OnceLock<PathBuf> = OnceLock::new();
    SAE.get_or_init(|| {
        let out = acts().parent().unwrap().join("sae-layer1");
        ok(&plmscope(&[
            "train",
            "--activations",
            s(&set("layer1.resid_post.residue")),
            "--k",
            "8",
            "--expansion",
            "4",
            "--epochs",
            "3",
            "--batch",
            "256",
            "--seed",
            "1",
            "--out",
            s(&out),
        ]));
        out
    })
}

#[test]
fn train_records_the_source_and_eval_reproduces_the_validation_metrics() {
    let sae = layer1_sae();
    let cfg = json(&sae.join("cfg.json"));
    let manifest = json(&set("layer1.resid_post.residue").join("manifest.json"));
    let ours = &cfg["plmscope"];
    assert_eq!(ours["source"]["model"], manifest["model"]["id"]);
    assert_eq!(
        (
            &ours["source"]["layer"],
            &ours["source"]["site"],
            &ours["source"]["level"]
        ),
        (
            &Value::from(1),
            &Value::from("resid_post"),
            &Value::from("residue")
        )
    );
    assert_eq!(cfg["metadata"]["hook_name"], "layers.1.resid_post");
    assert_eq!(
        (cfg["d_sae"].as_u64(), cfg["k"].as_u64()),
        (Some(1280), Some(8))
    );
    assert_eq!(ours["training"]["metrics_split"], "validation");
    let recorded = ours["metrics"]["fvu"].as_f64().unwrap();
    assert!(recorded < 0.5, "validation FVU {recorded}");

    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("eval.json");
    let stdout = ok(&plmscope(&[
        "eval",
        "--sae",
        s(sae),
        "--activations",
        s(&set("layer1.resid_post.residue")),
        "--json",
        s(&report),
    ]));
    assert!(
        stdout.contains("FVE") && stdout.contains("validation proteins"),
        "{stdout}"
    );
    let e = json(&report);
    assert_eq!(e["split"], "validation proteins");
    let fvu = e["evaluation"]["fvu"].as_f64().unwrap();
    assert!(
        (fvu - recorded).abs() <= 1e-12 * recorded,
        "{fvu} vs recorded {recorded}"
    );

    // Independently: the validation proteins' rows, evaluated in one call.
    let acts = ActivationSet::open(&set("layer1.resid_post.residue")).unwrap();
    let (_, validation) = split_by_protein(acts.proteins().len(), 0.05, 1);
    assert_eq!(e["proteins"].as_u64(), Some(validation.len() as u64));
    let mut x = Vec::new();
    for &p in &validation {
        let rows = acts.protein_rows(p);
        let mut buf = Vec::new();
        acts.read_rows(rows.start, rows.len(), &mut buf).unwrap();
        x.extend(buf);
    }
    let dict = io::load(sae).unwrap();
    let direct = metrics::evaluate(&dict, &x, None).unwrap();
    assert!((direct.fvu - fvu).abs() < 1e-9, "{} vs {fvu}", direct.fvu);
    assert_eq!(e["evaluation"]["l0"].as_f64(), Some(direct.l0));
    assert_eq!(e["evaluation"]["rows"].as_u64(), Some(direct.rows as u64));
}

#[test]
fn eval_and_encode_refuse_the_neighbouring_layer() {
    let sae = layer1_sae();
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("eval.json");
    let err = fails(&plmscope(&[
        "eval",
        "--sae",
        s(sae),
        "--activations",
        s(&set("layer2.resid_post.residue")),
        "--json",
        s(&report),
    ]));
    assert!(err.contains("off by one"), "{err}");
    assert!(
        err.contains("is layer 2 resid_post") && err.contains("trained on layer 1"),
        "{err}"
    );
    assert!(!report.exists());
    let codes = tmp.path().join("codes");
    let err = fails(&plmscope(&[
        "encode",
        "--sae",
        s(sae),
        "--activations",
        s(&set("layer2.resid_post.residue")),
        "--out",
        s(&codes),
    ]));
    assert!(err.contains("off by one"), "{err}");
    assert!(!codes.exists());
}

fn dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn encode_writes_the_dictionary_codes_and_resumes_shard_by_shard() {
    let sae = layer1_sae();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("codes");
    let source = set("layer1.resid_post.residue");
    let args = [
        "encode",
        "--sae",
        s(sae),
        "--activations",
        s(&source),
        "--out",
        s(&out),
    ];
    ok(&plmscope(&args));
    let codes = CodeSet::open(&out).unwrap();
    let acts = ActivationSet::open(&source).unwrap();
    assert_eq!(codes.rows(), acts.rows());
    let dict = io::load(sae).unwrap();
    let mut x = Vec::new();
    acts.read_rows(0, acts.rows(), &mut x).unwrap();
    let expected = dict.encode(&x).unwrap();
    for r in 0..acts.rows() {
        let ((f, v), (ef, ev)) = (codes.row(r), expected.row(r));
        assert_eq!(f, ef, "row {r}");
        assert!(
            v.iter()
                .zip(ev)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
            "row {r}"
        );
    }
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(
        manifest["dictionary"]["weights_sha256"],
        io::weights_sha256(sae).unwrap()
    );

    let before = dir_bytes(&out);
    std::fs::remove_file(out.join("codes-00001.safetensors")).unwrap();
    let stdout = ok(&plmscope(&args));
    assert!(
        stdout.contains("1 shards written, 2 already complete"),
        "{stdout}"
    );
    assert_eq!(dir_bytes(&out), before, "resumed code set differs");
}

fn train_args<'a>(out: &'a str, ks: &'a str, resume: bool) -> Vec<&'a str> {
    let source = Box::leak(set("layer1.resid_post.residue").into_boxed_path());
    let mut args = vec![
        "train",
        "--activations",
        s(source),
        "--k",
        ks,
        "--expansion",
        "4",
        "--steps",
        "120",
        "--batch",
        "256",
        "--checkpoint-every",
        "10",
        "--seed",
        "3",
        "--out",
        out,
    ];
    if resume {
        args.push("--resume");
    }
    args
}

#[test]
fn kill_then_resume_ends_identical_to_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    ok(&plmscope(&train_args(s(&straight), "4,8", false)));
    let names = ["topk-k4-x4", "topk-k8-x4"];
    assert!(names
        .iter()
        .all(|n| straight.join(n).join("sae_weights.safetensors").exists()));

    let killed = tmp.path().join("killed");
    let mut child = Command::new(BIN)
        .args(["--threads", "2"])
        .args(train_args(s(&killed), "4,8", false))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let committed = |dir: &Path| -> u64 {
        std::fs::read_to_string(dir.join("train_run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["committed_step"].as_u64())
            .unwrap_or(0)
    };
    while committed(&killed) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before its first checkpoint"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "run finished before the kill"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at = committed(&killed);
    eprintln!("killed after committed step {at} of 120");
    assert!(at < 120, "killed at committed step {at}");

    let err = fails(&plmscope(&train_args(s(&killed), "4,8", false)));
    assert!(err.contains("--resume"), "{err}");
    let o = plmscope(&train_args(s(&killed), "4,8", true));
    ok(&o);
    for name in names {
        for file in [
            "sae_weights.safetensors",
            "cfg.json",
            "train_state.safetensors",
        ] {
            assert!(
                std::fs::read(killed.join(name).join(file)).unwrap()
                    == std::fs::read(straight.join(name).join(file)).unwrap(),
                "{name}/{file} differs after kill at step {at} and resume"
            );
        }
    }
    let again = ok(&plmscope(&train_args(s(&killed), "4,8", true)));
    assert!(again.contains("already complete"), "{again}");

    // One pass for two dictionaries gives each what a run of its own gives.
    let single = tmp.path().join("single");
    ok(&plmscope(&train_args(s(&single), "8", false)));
    assert!(
        std::fs::read(single.join("sae_weights.safetensors")).unwrap()
            == std::fs::read(straight.join("topk-k8-x4/sae_weights.safetensors")).unwrap(),
        "k=8 trained alone differs from k=8 trained beside k=4"
    );
}

#[test]
fn transcoder_trains_on_paired_sites_and_refuses_unpaired_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tc");
    let mlp_in = set("layer1.mlp_in.residue");
    let mlp_out = set("layer1.mlp_out.residue");
    let common = [
        "--k",
        "8",
        "--expansion",
        "2",
        "--epochs",
        "2",
        "--batch",
        "256",
        "--seed",
        "2",
    ];
    let mut args = vec![
        "train",
        "--activations",
        s(&mlp_in),
        "--target",
        s(&mlp_out),
        "--out",
        s(&out),
    ];
    args.extend(common);
    ok(&plmscope(&args));
    let cfg = json(&out.join("cfg.json"));
    assert_eq!(cfg["plmscope"]["kind"], "transcoder");
    assert_eq!(cfg["plmscope"]["source"]["site"], "mlp_in");
    assert_eq!(cfg["plmscope"]["target"]["site"], "mlp_out");
    assert_eq!(cfg["apply_b_dec_to_input"], false);
    let fvu = cfg["plmscope"]["metrics"]["fvu"].as_f64().unwrap();
    assert!(fvu.is_finite() && fvu < 1.0, "transcoder FVU {fvu}");
    ok(&plmscope(&[
        "eval",
        "--sae",
        s(&out),
        "--activations",
        s(&mlp_in),
        "--target",
        s(&mlp_out),
    ]));
    let err = fails(&plmscope(&[
        "eval",
        "--sae",
        s(&out),
        "--activations",
        s(&mlp_in),
    ]));
    assert!(err.contains("give the target"), "{err}");

    let bad = tmp.path().join("unpaired");
    let protein_level = set("layer1.mlp_out.protein");
    let mut args = vec![
        "train",
        "--activations",
        s(&mlp_in),
        "--target",
        s(&protein_level),
        "--out",
        s(&bad),
    ];
    args.extend(common);
    let err = fails(&plmscope(&args));
    assert!(err.contains("do not line up row by row"), "{err}");
    assert!(!bad.exists(), "output written for a refused run");
}

/// A residue-level set of width 16 with proteins P0..P7 of 30-44 residues; `nan_at` puts a NaN
/// at (protein, residue index 0-based, column).
fn synthetic_set(dir: &Path, nan_at: Option<(usize, usize, usize)>) {
    let lengths: Vec<usize> = (0..8).map(|i| 30 + 2 * i).collect();
    let header = SetHeader {
        model: ModelRef {
            id: "synthetic".into(),
            arch: "none".into(),
            weights_sha256: "00".into(),
        },
        layer: 1,
        site: Site::ResidPost,
        level: Level::Residue,
        d_model: 16,
        dtype: StorageDtype::F32,
        proteins_per_shard: 4,
        total_proteins: 8,
        extra: serde_json::json!({}),
    };
    let mut writer = ActivationSetWriter::create_or_resume(dir, header).unwrap();
    for shard in 0..2 {
        let mut rows = Vec::new();
        let mut entries = Vec::new();
        for (p, &length) in lengths.iter().enumerate().skip(shard * 4).take(4) {
            entries.push(ProteinEntry {
                id: format!("P{p}"),
                length,
            });
            for r in 0..length {
                for c in 0..16 {
                    let nan = nan_at == Some((p, r, c));
                    rows.push(if nan {
                        f32::NAN
                    } else {
                        ((p * 131 + r * 17 + c * 7) as f32 * 0.37).sin()
                    });
                }
            }
        }
        writer.write_shard(shard, &entries, &rows).unwrap();
    }
    writer.finish(serde_json::json!({})).unwrap();
}

#[test]
fn bad_inputs_fail_with_clear_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = |name: &str| t.join(name);
    let clean = t.join("clean16");
    synthetic_set(&clean, None);
    let small_sae = out("sae16");
    ok(&plmscope(&[
        "train",
        "--activations",
        s(&clean),
        "--k",
        "4",
        "--expansion",
        "2",
        "--batch",
        "32",
        "--seed",
        "1",
        "--out",
        s(&small_sae),
    ]));

    // d_model of the SAE (320) against a set of width 16, and the reverse.
    let err = fails(&plmscope(&[
        "eval",
        "--sae",
        s(layer1_sae()),
        "--activations",
        s(&clean),
    ]));
    assert!(
        err.contains("d_in = 320") && err.contains("width 16"),
        "{err}"
    );
    let err = fails(&plmscope(&[
        "encode",
        "--sae",
        s(&small_sae),
        "--activations",
        s(&set("layer1.resid_post.residue")),
        "--out",
        s(&out("codes-d")),
    ]));
    assert!(
        err.contains("d_in = 16") && err.contains("width 320"),
        "{err}"
    );
    assert!(!out("codes-d").exists());

    // An incomplete set: a shard is missing.
    let incomplete = t.join("incomplete");
    std::fs::create_dir(&incomplete).unwrap();
    for f in std::fs::read_dir(&clean).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, incomplete.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::remove_file(incomplete.join("shard-00001.safetensors")).unwrap();
    for args in [
        vec![
            "train",
            "--activations",
            s(&incomplete),
            "--k",
            "4",
            "--expansion",
            "2",
            "--batch",
            "32",
            "--seed",
            "1",
            "--out",
            s(&out("t-inc")),
        ],
        vec![
            "eval",
            "--sae",
            s(&small_sae),
            "--activations",
            s(&incomplete),
        ],
        vec![
            "encode",
            "--sae",
            s(&small_sae),
            "--activations",
            s(&incomplete),
            "--out",
            s(&out("e-inc")),
        ],
    ] {
        let err = fails(&plmscope(&args));
        assert!(
            err.contains("incomplete") && err.contains("shard-00001"),
            "{args:?}: {err}"
        );
    }
    assert!(!out("t-inc").exists() && !out("e-inc").exists());

    // NaN at protein P5, residue 3 (1-based 4), column 9.
    let with_nan = t.join("nan");
    synthetic_set(&with_nan, Some((5, 3, 9)));
    for args in [
        vec![
            "train",
            "--activations",
            s(&with_nan),
            "--k",
            "4",
            "--expansion",
            "2",
            "--batch",
            "32",
            "--seed",
            "1",
            "--out",
            s(&out("t-nan")),
        ],
        vec![
            "eval",
            "--sae",
            s(&small_sae),
            "--activations",
            s(&with_nan),
        ],
        vec![
            "encode",
            "--sae",
            s(&small_sae),
            "--activations",
            s(&with_nan),
            "--out",
            s(&out("e-nan")),
        ],
    ] {
        let err = fails(&plmscope(&args));
        assert!(
            err.contains("protein P5") && err.contains("residue 4") && err.contains("column 9"),
            "{args:?}: {err}"
        );
    }
    assert!(!out("t-nan").exists() && !out("e-nan").exists());
}

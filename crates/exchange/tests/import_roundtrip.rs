//! `import` round trips on files written by the reference tools' own libraries (fixtures from
//! scripts/make_import_fixtures.py: torch.save as fair-esm extract.py does, h5py, numpy): the
//! activation set's values equal the originals bit for bit (f16 inputs widen exactly to f32),
//! and a protein-level import of per-residue data equals extract.py's own means.

use std::path::{Path, PathBuf};

use plmscope_exchange::{import, ImportFormat, ImportRequest};
use plmscope_store::{ActivationSet, Level, Site, StorageDtype};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn request(format: ImportFormat, input: PathBuf, level: Level, out: &Path) -> ImportRequest {
    ImportRequest {
        format,
        input,
        ids: None,
        layer: None,
        level,
        model: "test/foreign".into(),
        site: Site::ResidPost,
        dtype: StorageDtype::F32,
        proteins_per_shard: 2,
        fasta: None,
        out: out.to_path_buf(),
    }
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        other => panic!("not a number: {other}"),
    }
}

/// (id, values) of every protein of `set`, in set order.
fn set_proteins(dir: &Path) -> Vec<(String, usize, Vec<f32>)> {
    let set = ActivationSet::open(dir).unwrap();
    let mut buffer = Vec::new();
    set.proteins()
        .iter()
        .map(|p| {
            set.read_rows(p.global_first_row, p.rows, &mut buffer)
                .unwrap();
            (p.id.clone(), p.length, buffer.clone())
        })
        .collect()
}

/// The expected proteins sorted by `key` (the order the importer uses), with `values` picked.
fn expected_by(key: &str, values: impl Fn(&Value) -> Vec<f32>) -> Vec<(String, usize, Vec<f32>)> {
    let e = expected();
    let mut proteins: Vec<&Value> = e["proteins"].as_array().unwrap().iter().collect();
    proteins.sort_by_key(|p| p[key].as_str().unwrap().to_string());
    proteins
        .into_iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["length"].as_u64().unwrap() as usize,
                values(p),
            )
        })
        .collect()
}

fn assert_same(got: &[(String, usize, Vec<f32>)], want: &[(String, usize, Vec<f32>)]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&g.2), bits(&w.2), "values of {}", g.0);
    }
}

#[test]
fn fair_esm_residues_and_means_equal_extract_py_output() {
    let tmp = tempfile::tempdir().unwrap();
    for layer in [2usize, 6] {
        let out = tmp.path().join(format!("residue-{layer}"));
        let mut r = request(
            ImportFormat::FairEsm,
            fixtures().join("fair_esm"),
            Level::Residue,
            &out,
        );
        r.layer = Some(layer);
        let summary = import(&r).unwrap();
        assert_eq!(
            (summary.proteins, summary.d_model, summary.layer),
            (3, 16, layer)
        );
        let want = expected_by("label", |p| {
            floats(&p["fair_esm"][layer.to_string()]["residues"])
        });
        assert_same(&set_proteins(&out), &want);
        assert_eq!(ActivationSet::open(&out).unwrap().header().layer, layer);

        let out = tmp.path().join(format!("protein-{layer}"));
        let mut r = request(
            ImportFormat::FairEsm,
            fixtures().join("fair_esm"),
            Level::Protein,
            &out,
        );
        r.layer = Some(layer);
        import(&r).unwrap();
        let want = expected_by("label", |p| {
            floats(&p["fair_esm"][layer.to_string()]["mean"])
        });
        assert_same(&set_proteins(&out), &want);
    }
    // Two layers in the files and none chosen: the error lists them.
    let r = request(
        ImportFormat::FairEsm,
        fixtures().join("fair_esm"),
        Level::Residue,
        &tmp.path().join("x"),
    );
    let err = import(&r).unwrap_err().to_string();
    assert!(err.contains("[2, 6]") && err.contains("--layer"), "{err}");
}

#[test]
fn hdf5_files_from_h5py_import_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, key) in [
        ("earliest.h5", "f32"),
        ("latest.h5", "f32"),
        ("gzip_f16.h5", "f16"),
    ] {
        let out = tmp.path().join(file);
        import(&request(
            ImportFormat::Hdf5,
            fixtures().join("hdf5").join(file),
            Level::Residue,
            &out,
        ))
        .unwrap();
        assert_same(&set_proteins(&out), &expected_by("id", |p| floats(&p[key])));
    }
    // Per-protein vectors (bio_embeddings' reduced file): protein level, lengths from --fasta.
    let fasta = tmp.path().join("proteins.fasta");
    let e = expected();
    let text: String = e["proteins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                ">{}\n{}\n",
                p["label"].as_str().unwrap(),
                "A".repeat(p["length"].as_u64().unwrap() as usize)
            )
        })
        .collect();
    std::fs::write(&fasta, text).unwrap();
    let out = tmp.path().join("reduced");
    let mut r = request(
        ImportFormat::Hdf5,
        fixtures().join("hdf5/reduced.h5"),
        Level::Protein,
        &out,
    );
    let err = import(&r).unwrap_err().to_string();
    assert!(err.contains("--fasta"), "{err}");
    r.fasta = Some(fasta);
    import(&r).unwrap();
    assert_same(
        &set_proteins(&out),
        &expected_by("id", |p| floats(&p["reduced"])),
    );
    // Residue level of per-protein vectors is refused with the fix.
    r.level = Level::Residue;
    r.out = tmp.path().join("reduced-residue");
    let err = import(&r).unwrap_err().to_string();
    assert!(err.contains("--level protein"), "{err}");
}

#[test]
fn npy_arrays_import_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("per-protein");
    import(&request(
        ImportFormat::Npy,
        fixtures().join("npy/per_protein"),
        Level::Residue,
        &out,
    ))
    .unwrap();
    assert_same(
        &set_proteins(&out),
        &expected_by("id", |p| floats(&p["f32"])),
    );

    // One [n, d] array in ids order (not sorted): the set keeps the ids file's order.
    let out = tmp.path().join("rows");
    let mut r = request(
        ImportFormat::Npy,
        fixtures().join("npy/embeddings.npy"),
        Level::Protein,
        &out,
    );
    let err = import(&r).unwrap_err().to_string();
    assert!(err.contains("--ids"), "{err}");
    r.ids = Some(fixtures().join("npy/ids.txt"));
    r.fasta = None;
    let err = import(&r).unwrap_err().to_string();
    assert!(err.contains("--fasta"), "{err}");
    let fasta = tmp.path().join("p.fasta");
    let e = expected();
    let proteins = e["proteins"].as_array().unwrap();
    let text: String = proteins
        .iter()
        .map(|p| {
            format!(
                ">{}\n{}\n",
                p["id"].as_str().unwrap(),
                "M".repeat(p["length"].as_u64().unwrap() as usize)
            )
        })
        .collect();
    std::fs::write(&fasta, text).unwrap();
    r.fasta = Some(fasta);
    import(&r).unwrap();
    let want: Vec<_> = proteins
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["length"].as_u64().unwrap() as usize,
                floats(&p["reduced"]),
            )
        })
        .collect();
    assert_same(&set_proteins(&out), &want);

    // Protein level from per-residue arrays: the f64-accumulated mean.
    let out = tmp.path().join("means");
    import(&request(
        ImportFormat::Npy,
        fixtures().join("npy/per_protein"),
        Level::Protein,
        &out,
    ))
    .unwrap();
    let got = set_proteins(&out);
    let want = expected_by("id", |p| floats(&p["reduced"]));
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.2.iter().zip(&w.2) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "{}: {a} vs numpy {b}",
                g.0
            );
        }
    }
}

#[test]
fn damaged_inputs_fail_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.h5");
    let mut bytes = std::fs::read(fixtures().join("hdf5/earliest.h5")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&bad, &bytes).unwrap();
    let err = import(&request(
        ImportFormat::Hdf5,
        bad.clone(),
        Level::Residue,
        &tmp.path().join("o"),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("bad.h5"), "{err}");
    // Every truncation of every HDF5 fixture gives an error, never a panic.
    for file in ["earliest.h5", "latest.h5", "gzip_f16.h5"] {
        let bytes = std::fs::read(fixtures().join("hdf5").join(file)).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            let _ = import(&request(
                ImportFormat::Hdf5,
                bad.clone(),
                Level::Residue,
                &tmp.path().join(format!("o{cut}")),
            ));
        }
    }
}

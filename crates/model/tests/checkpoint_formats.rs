//! The three checkpoint formats (HF safetensors, HF `pytorch_model.bin`, fair-esm `.pt` with
//! fair-esm tensor names) load to the same model, whose logits and last hidden state match
//! HF transformers on the same weights.
//!
//! Fixtures: `python3 scripts/make_torch_checkpoints.py crates/model/tests/fixtures/tiny_checkpoints`

use plmscope_model::{load_model, CaptureRequest, Site};
use safetensors::SafeTensors;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_checkpoints"
);

fn tensor_f32(st: &SafeTensors, name: &str) -> Vec<f32> {
    let view = st.tensor(name).unwrap();
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_format_matches_the_reference() {
    let bytes = std::fs::read(format!("{DIR}/reference.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<u32> = reference
        .tensor("input_ids")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
        .collect();
    let want_hidden = tensor_f32(&reference, "last_hidden");
    let want_logits = tensor_f32(&reference, "logits");
    for spec in [
        DIR.to_string(),
        format!("{DIR}/model.safetensors"),
        format!("{DIR}/pytorch_model.bin"),
        format!("{DIR}/esm2_tiny.pt"),
    ] {
        let (model, info) = load_model(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(model.config.num_hidden_layers, 2, "{spec}");
        let request = CaptureRequest {
            sites: vec![(2, Site::ResidPost)],
            logits: true,
        };
        let out = model.forward(&[&ids], &request).unwrap();
        let hidden = max_abs_diff(&out.sites[&(2, Site::ResidPost)], &want_hidden);
        let logits = max_abs_diff(out.logits.as_ref().unwrap(), &want_logits);
        assert!(
            hidden < 1e-4 && logits < 1e-4,
            "{spec}: hidden {hidden}, logits {logits}"
        );
        assert_eq!(info.weights_sha256.len(), 64);
    }
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    std::fs::copy(format!("{DIR}/config.json"), dir.path().join("config.json")).unwrap();
    let err = load_model(dir.path().to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

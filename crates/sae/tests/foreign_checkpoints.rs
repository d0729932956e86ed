//! InterPLM `ae.pt` and Rep Lightning `.ckpt` files written by torch → `io::load`, encoding and
//! reconstructing a fixed batch as the reference formulas computed in torch (float64) do, and
//! refusals that name what they found.
//!
//! Regenerate the fixtures (repository root; torch and safetensors from PyPI):
//!     python3 scripts/make_foreign_sae_fixtures.py crates/sae/tests/fixtures/foreign

mod common;

use std::path::PathBuf;

use common::Fixture;
use plmscope_sae::io::{self, InterplmCodes, InterplmOptions};
use plmscope_sae::{Architecture, Dictionary, InputNorm, SaeError, SparseCodes};

fn foreign(name: &str) -> PathBuf {
    common::fixture("foreign").join(name)
}

fn dense(codes: &SparseCodes) -> Vec<f32> {
    let mut out = vec![0.0; codes.rows() * codes.d_sae];
    for r in 0..codes.rows() {
        let (f, v) = codes.row(r);
        for (&j, &a) in f.iter().zip(v) {
            out[r * codes.d_sae + j as usize] = a;
        }
    }
    out
}

/// Encodes and decodes the fixture batch; checks codes (`codes_key`) and x_hat within `tol`.
fn assert_matches(what: &str, dict: &Dictionary, expected: &str, codes_key: &str, tol: f64) {
    let f = Fixture::read(&foreign(expected));
    let (codes, recon) = dict.forward(&f.f32("x")).unwrap();
    let want = f.get(codes_key);
    assert!(
        want.iter().filter(|&&v| v > 0.0).count() >= 8,
        "{what}: the reference batch activates almost nothing"
    );
    let got = dense(&codes);
    let active = |v: &[f64]| v.iter().map(|&a| a > 0.0).collect::<Vec<_>>();
    assert_eq!(
        active(&got.iter().map(|&v| v as f64).collect::<Vec<_>>()),
        active(want),
        "{what}: different active features"
    );
    let codes_diff = common::max_abs_diff(&got, want);
    let recon_diff = common::max_abs_diff(&recon, f.get("x_hat"));
    assert!(
        codes_diff <= tol,
        "{what} codes: max |diff| {codes_diff} > {tol}"
    );
    assert!(
        recon_diff <= tol,
        "{what} x_hat: max |diff| {recon_diff} > {tol}"
    );
}

fn unsupported_message(result: plmscope_sae::Result<Dictionary>) -> String {
    match result {
        Err(e @ SaeError::UnsupportedFormat { .. }) => e.to_string(),
        Err(other) => panic!("expected UnsupportedFormat, got {other}"),
        Ok(_) => panic!("expected a refusal, got a dictionary"),
    }
}

#[test]
fn interplm_relu_subtracts_its_pre_encoder_bias_and_adds_it_back() {
    let dict = io::load(&foreign("interplm_relu/ae.pt")).unwrap();
    assert_eq!(
        (dict.architecture, dict.d_in, dict.d_sae),
        (Architecture::Relu, 16, 64)
    );
    assert!(dict.apply_b_dec_to_input);
    assert_eq!(dict.meta.normalisation["codes"], "raw");
    assert_matches(
        "relu raw",
        &dict,
        "interplm_relu_expected.safetensors",
        "codes",
        1e-5,
    );
    // The directory form finds ae.pt itself.
    let from_dir = io::load(&foreign("interplm_relu")).unwrap();
    assert_eq!(from_dir.w_enc, dict.w_enc);
    assert_eq!(
        io::weights_sha256(&foreign("interplm_relu")).unwrap(),
        io::weights_sha256(&foreign("interplm_relu/ae.pt")).unwrap()
    );
}

#[test]
fn interplm_normalised_codes_fold_the_rescale_factor_exactly() {
    let options = InterplmOptions {
        codes: InterplmCodes::Normalised,
        ..Default::default()
    };
    for name in ["relu", "jumprelu", "batchtopk"] {
        let dict = io::load_interplm(&foreign(&format!("interplm_{name}")), &options).unwrap();
        assert_eq!(dict.meta.normalisation["codes"], "normalised", "{name}");
        assert_matches(
            &format!("{name} normalised"),
            &dict,
            &format!("interplm_{name}_expected.safetensors"),
            "codes_normalised",
            1e-5,
        );
    }
    // TopK cannot fold it: scaling before top-k would change the winners.
    let err = unsupported_message(io::load_interplm(&foreign("interplm_topk"), &options));
    assert!(err.contains("TopK"), "{err}");
}

#[test]
fn interplm_topk_reads_k_from_its_int32_tensor_and_keeps_the_factor_on_record() {
    let dict = io::load(&foreign("interplm_topk/ae.pt")).unwrap();
    assert_eq!((dict.architecture, dict.k), (Architecture::TopK, 5));
    let factor = &dict.meta.normalisation["activation_rescale_factor"];
    assert_eq!(factor.as_array().map(Vec::len), Some(64), "{factor}");
    assert_eq!(dict.meta.hyperparameters["threshold"], 0.25);
    assert_matches(
        "topk",
        &dict,
        "interplm_topk_expected.safetensors",
        "codes",
        1e-5,
    );
}

#[test]
fn interplm_batchtopk_is_chosen_by_the_config_beside_it() {
    let dict = io::load(&foreign("interplm_batchtopk/ae.pt")).unwrap();
    assert_eq!((dict.architecture, dict.k), (Architecture::BatchTopK, 5));
    assert_eq!(dict.threshold.as_deref(), Some(&[0.3f32; 64][..]));
    assert_matches(
        "batchtopk",
        &dict,
        "interplm_batchtopk_expected.safetensors",
        "codes",
        1e-5,
    );
    // Without the config, the same keys read as per-row TopK, which encodes differently.
    let options = InterplmOptions {
        batch_topk: Some(false),
        ..Default::default()
    };
    let as_topk = io::load_interplm(&foreign("interplm_batchtopk"), &options).unwrap();
    assert_eq!(as_topk.architecture, Architecture::TopK);
}

#[test]
fn interplm_jumprelu_uses_its_decoder_bias_without_centring_the_input() {
    let dict = io::load(&foreign("interplm_jumprelu/ae.pt")).unwrap();
    assert_eq!(dict.architecture, Architecture::JumpRelu);
    assert!(!dict.apply_b_dec_to_input);
    assert_matches(
        "jumprelu",
        &dict,
        "interplm_jumprelu_expected.safetensors",
        "codes",
        1e-5,
    );
}

#[test]
fn rep_lightning_checkpoint_layer_norms_with_k_from_hyper_parameters() {
    let dict = io::load(&foreign("rep_topk.ckpt")).unwrap();
    assert_eq!(
        (dict.architecture, dict.k, dict.d_in, dict.d_sae),
        (Architecture::TopK, 4, 16, 64)
    );
    assert!(matches!(dict.input_norm, InputNorm::LayerNorm { .. }));
    assert_eq!(dict.meta.hyperparameters["inactive_threshold"], 200);
    assert_eq!(dict.meta.metrics.dead_fraction, Some(0.0));
    // Rep puts LayerNorm's 1e-5 inside the square root, ours cannot (see io::lightning): rows
    // with σ ≈ 0.6 in this batch differ by up to ~6e-5, so this bound, not 1e-5, is what holds.
    assert_matches("rep", &dict, "rep_topk_expected.safetensors", "codes", 1e-4);
}

#[test]
fn unknown_and_damaged_torch_checkpoints_are_refused_naming_their_keys() {
    let err = unsupported_message(io::load(&foreign("mystery.pt")));
    assert!(err.contains("W_in") && err.contains("W_out"), "{err}");

    let err = unsupported_message(io::load(&foreign("interplm_broken/ae.pt")));
    assert!(
        err.contains("encoder.bias_renamed") && err.contains("decoder.weight"),
        "{err}"
    );

    let err = unsupported_message(io::load(&foreign("interplm_sqrt_d/ae.pt")));
    assert!(err.contains("normalize_to_sqrt_d"), "{err}");

    let err = unsupported_message(io::load(&foreign("legacy.pt")));
    assert!(err.contains("pre-1.6"), "{err}");

    // A truncated archive is an error naming the file, not a panic.
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(foreign("interplm_relu/ae.pt")).unwrap();
    let cut = tmp.path().join("ae.pt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = io::load(&cut).unwrap_err().to_string();
    assert!(
        err.contains("ae.pt") && err.contains("torch checkpoint"),
        "{err}"
    );
}

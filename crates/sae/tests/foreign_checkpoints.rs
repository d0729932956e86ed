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

/// Largest |got − want| / max(1, |want|): float32 holds values near 10 only to ~5e-7 absolute.
fn max_scaled_diff(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / w.abs().max(1.0))
        .fold(0.0, f64::max)
}

#[test]
fn rep_lightning_checkpoint_matches_reps_forward_with_eps_inside_the_root() {
    let dict = io::load(&foreign("rep_topk.ckpt")).unwrap();
    assert_eq!(
        (dict.architecture, dict.k, dict.d_in, dict.d_sae),
        (Architecture::TopK, 4, 16, 64)
    );
    assert_eq!(dict.input_norm, InputNorm::BiasedLayerNorm { eps: 1e-5 });
    assert_eq!(dict.meta.hyperparameters["inactive_threshold"], 200);
    assert_eq!(dict.meta.metrics.dead_fraction, Some(0.0));
    // Reference: Rep's forward in float64 numpy (rows 8..12 have σ from 0.05 to 0.3).
    assert_matches("rep", &dict, "rep_topk_expected.safetensors", "codes", 2e-6);
    let f = Fixture::read(&foreign("rep_topk_expected.safetensors"));
    let (codes, recon) = dict.forward(&f.f32("x")).unwrap();
    let codes_diff = max_scaled_diff(&dense(&codes), f.get("codes"));
    let recon_diff = max_scaled_diff(&recon, f.get("x_hat"));
    eprintln!("rep vs numpy float64: codes {codes_diff:.2e}, x_hat {recon_diff:.2e} (scaled)");
    assert!(codes_diff <= 1e-6, "codes: scaled diff {codes_diff}");
    assert!(recon_diff <= 1e-6, "x_hat: scaled diff {recon_diff}");

    // Mutation: eps dropped from the root (or our unbiased LayerNorm) misses the low-σ rows.
    for wrong in [
        InputNorm::BiasedLayerNorm { eps: 0.0 },
        InputNorm::LayerNorm { eps: 1e-5 },
    ] {
        let mutated = Dictionary {
            input_norm: wrong,
            ..dict.clone()
        };
        let (codes, _) = mutated.forward(&f.f32("x")).unwrap();
        let diff = max_scaled_diff(&dense(&codes), f.get("codes"));
        assert!(
            diff > 1e-4,
            "{wrong:?} should differ from Rep's rule, got {diff}"
        );
    }
}

#[test]
fn non_finite_weights_are_refused_naming_the_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dict = io::load(&foreign("rep_topk.ckpt")).unwrap();
    dict.b_dec[3] = f32::NAN;
    io::save(&dict, tmp.path()).unwrap();
    let err = io::load(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("sae_weights.safetensors")
            && err.contains("tensor b_dec")
            && err.contains("[3]"),
        "{err}"
    );
    dict.b_dec[3] = 0.0;
    dict.w_dec[2 * 16 + 5] = f32::INFINITY;
    io::save(&dict, tmp.path()).unwrap();
    let err = io::load(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("tensor W_dec") && err.contains("[2, 5]"),
        "{err}"
    );
    dict.w_dec[2 * 16 + 5] = 0.0;
    io::save(&dict, tmp.path()).unwrap();
    assert!(
        io::load(tmp.path()).is_ok(),
        "a finite dictionary loads again"
    );

    // A foreign file: the tensor is named as that file names it.
    let err = io::load(&foreign("rep_nan.ckpt")).unwrap_err().to_string();
    assert!(
        err.contains("rep_nan.ckpt") && err.contains("model.weights.3") && err.contains("[5]"),
        "{err}"
    );
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

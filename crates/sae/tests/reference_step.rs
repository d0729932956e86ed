//! One and two training steps against PyTorch autograd (dense) for TopK (AuxK off and on, unit-
//! norm decoder on and off) and ReLU-L1: loss terms, gradients after the decoder projection,
//! Adam-updated weights and dead-latent counters agree to 1e-5.
//!
//! Regenerate the fixtures (from the repository root; needs torch and safetensors from PyPI):
//!     python3 scripts/sae_reference_step.py

mod common;

use common::{fixture, max_abs_diff, Fixture};
use plmscope_sae::trainer::{BDecInit, Decay, ReconLoss, Schedule, TrainConfig, Trainer};
use plmscope_sae::Architecture;

const TOL: f64 = 1e-5;

fn check_case(name: &str) {
    let f = Fixture::read(&fixture(&format!("reference_step_{name}.safetensors")));
    let num = |k: &str| f.meta(k).parse::<f64>().unwrap();
    let (d_in, d_sae, k) = (
        num("d_in") as usize,
        num("d_sae") as usize,
        num("k") as usize,
    );
    let mut cfg = TrainConfig::topk(d_in, d_sae, k);
    cfg.architecture = if f.meta("arch") == "relu" {
        Architecture::Relu
    } else {
        Architecture::TopK
    };
    cfg.schedule = Schedule {
        lr: num("lr") as f32,
        warmup_steps: 0,
        decay: Decay::Constant,
        total_steps: 0,
        min_lr_fraction: 0.0,
    };
    cfg.auxk_coefficient = num("auxk") as f32;
    cfg.l1_coefficient = num("l1") as f32;
    cfg.unit_norm_decoder = f.meta("unit_norm") == "True";
    cfg.recon_loss = if f.meta("loss") == "mse" {
        ReconLoss::Mse
    } else {
        ReconLoss::Fvu
    };
    cfg.dead_window_rows = num("window") as u64;
    cfg.b_dec_init = BDecInit::Zeros; // the fixture's b_dec is the start
    let mut t = Trainer::new(cfg).unwrap();
    {
        let p = t.params_mut();
        p.enc_t = f.f32("init.enc_t");
        p.b_enc = f.f32("init.b_enc");
        p.w_dec = f.f32("init.w_dec");
        p.b_dec = f.f32("init.b_dec");
    }
    t.set_rows_since_fired(
        f.get("init.rows_since_fired")
            .iter()
            .map(|&v| v as u64)
            .collect(),
    );
    for s in 1..=2 {
        let stats = t.step(&f.f32(&format!("x{s}")), None).unwrap();
        let loss = f.get(&format!("step{s}.loss"));
        let ours = [
            stats.loss,
            stats.recon_loss,
            stats.aux_loss,
            stats.sparsity_loss,
        ];
        for (what, (a, b)) in ["loss", "recon", "auxk", "l1"]
            .iter()
            .zip(ours.iter().zip(loss))
        {
            assert!(
                (a - b).abs() < TOL,
                "{name} step {s} {what}: ours {a}, torch {b}"
            );
        }
        let g = t.last_gradients();
        let p = t.params();
        for (tensor, grad, param) in [
            ("enc_t", &g.enc_t, &p.enc_t),
            ("b_enc", &g.b_enc, &p.b_enc),
            ("w_dec", &g.w_dec, &p.w_dec),
            ("b_dec", &g.b_dec, &p.b_dec),
        ] {
            let dg = max_abs_diff(grad, f.get(&format!("step{s}.grad.{tensor}")));
            assert!(dg < TOL, "{name} step {s} grad {tensor}: max |diff| {dg}");
            let dp = max_abs_diff(param, f.get(&format!("step{s}.param.{tensor}")));
            assert!(dp < TOL, "{name} step {s} param {tensor}: max |diff| {dp}");
        }
        let counters: Vec<u64> = f
            .get(&format!("step{s}.rows_since_fired"))
            .iter()
            .map(|&v| v as u64)
            .collect();
        assert_eq!(
            t.rows_since_fired(),
            &counters[..],
            "{name} step {s} dead counters"
        );
    }
    // The AuxK case must actually exercise AuxK.
    if name == "topk_auxk" {
        assert!(
            f.get("step1.loss")[2] > 1e-4,
            "fixture's AuxK term is negligible"
        );
    }
}

#[test]
fn topk_step_matches_pytorch() {
    check_case("topk");
}

#[test]
fn topk_with_auxk_step_matches_pytorch() {
    check_case("topk_auxk");
}

#[test]
fn topk_without_decoder_normalisation_matches_pytorch() {
    check_case("topk_free_decoder");
}

#[test]
fn relu_l1_step_matches_pytorch() {
    check_case("relu_l1");
}

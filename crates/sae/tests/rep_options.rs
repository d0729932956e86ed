//! The training options the seed paper's (Gujral et al. 2025, "Rep") presets need, each shown
//! to have its effect: tied encoder start at Rep's scale, Rep's idle-step dead rule, AuxK's
//! min(n_dead/k_aux, 1) scale with k_aux = d_in/2, Rep's LayerNorm carried into the dictionary,
//! and configs written before these options still reading.

mod common;

use common::planted_data;
use plmscope_sae::trainer::{DeadRule, EncoderInit, TrainConfig, TrainNorm, Trainer, WeightInit};
use plmscope_sae::{InputNorm, Kind};

const D: usize = 16;
const D_SAE: usize = 64;

fn batch(seed: u64) -> Vec<f32> {
    planted_data(128, D, 40, 3, 0.05, seed).0
}

#[test]
fn rep_preset_starts_with_the_encoder_as_the_decoder_transpose_at_reps_scale() {
    let cfg = TrainConfig::gujral2025(D, D_SAE, 4, 200);
    let t = Trainer::new(cfg.clone()).unwrap();
    let p = t.params();
    // enc_t is W_enc transposed, [d_sae, d_in]: tied means it equals W_dec [d_sae, d_in].
    assert_eq!(p.enc_t, p.w_dec);
    assert!(p.b_dec.iter().all(|&b| b == 0.0) && p.b_enc.iter().all(|&b| b == 0.0));
    // nn.Linear(d_sae, d_in)'s default init: U(±1/√d_sae), so rows are not unit norm.
    let bound = 1.0 / (D_SAE as f32).sqrt();
    assert!(p.w_dec.iter().all(|v| v.abs() < bound));
    let max = p.w_dec.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        max > 0.9 * bound,
        "entries should fill the range, max {max}"
    );
    let norm0: f32 = p.w_dec[..D].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm0 - 1.0).abs() > 0.3, "row norm {norm0} looks unit");

    // Independent: same decoder draw, a different encoder.
    let mut independent = cfg.clone();
    independent.encoder_init = Some(EncoderInit::Independent);
    let u = Trainer::new(independent).unwrap();
    assert_eq!(u.params().w_dec, p.w_dec);
    assert_ne!(u.params().enc_t, u.params().w_dec);

    // The default (sparsify's) is unit rows.
    let mut unit = cfg.clone();
    unit.weight_init = WeightInit::UnitRows;
    let w = Trainer::new(unit).unwrap();
    let n: f32 = w.params().w_dec[..D]
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt();
    assert!((n - 1.0).abs() < 1e-5);

    // A transcoder of another width cannot tie: refused, not silently untied.
    let mut tc = cfg;
    tc.kind = Kind::Transcoder;
    tc.d_out = D + 4;
    tc.apply_b_dec_to_input = false;
    tc.input_norm = TrainNorm::None;
    let err = Trainer::new(tc).err().expect("refused").to_string();
    assert!(err.contains("decoder_transpose"), "{err}");
}

/// Six latents forced on (bias +100, k = 6), A and B forced off (bias −100); B starts with
/// the counter a latent has just after firing (Rep sets 1 then), A with 0 (never fired).
fn forced_trainer(dead_rule: DeadRule) -> Trainer {
    let mut cfg = TrainConfig::gujral2025(D, 8, 6, 3);
    cfg.dead_rule = dead_rule;
    cfg.dead_window_rows = 3 * 128;
    let mut t = Trainer::new(cfg).unwrap();
    let b = &mut t.params_mut().b_enc;
    b.iter_mut().for_each(|v| *v = 100.0);
    b[0] = -100.0; // A
    b[1] = -100.0; // B
    let mut counters = vec![1; 8];
    counters[0] = 0;
    t.set_rows_since_fired(counters);
    t
}

#[test]
fn idle_step_rule_counts_a_latent_dead_after_n_idle_steps_as_rep_does() {
    let mut t = forced_trainer(DeadRule::IdleSteps { steps: 3 });
    let x = batch(1);
    let mut dead = Vec::new();
    for _ in 0..5 {
        let stats = t.step(&x, None).unwrap();
        dead.push((stats.dead_fraction * 8.0).round() as u32);
        assert_eq!(
            t.rows_since_fired()[2..],
            [1; 6],
            "firing latents reset to 1"
        );
    }
    // Rep's counters after step t: B = 1 + t, A = t; dead when the counter exceeds 3.
    assert_eq!(t.rows_since_fired()[..2], [5, 6]);
    assert_eq!(
        dead,
        [0, 0, 1, 2, 2],
        "B dead after 3 idle steps, A one step later"
    );
    assert_eq!(t.dead_fraction(), 2.0 / 8.0);

    // The row rule with a window of 3 batches reads the same data differently.
    let mut rows = forced_trainer(DeadRule::Rows);
    rows.set_rows_since_fired(vec![0; 8]);
    let mut dead_rows = Vec::new();
    for _ in 0..5 {
        let stats = rows.step(&x, None).unwrap();
        dead_rows.push((stats.dead_fraction * 8.0).round() as u32);
    }
    assert_eq!(dead_rows, [0, 0, 0, 2, 2]);
}

/// One step's AuxK loss with latents 0 and 1 dead (row rule), for a nominal k_aux.
fn aux_loss(k_aux: Option<usize>) -> f64 {
    let mut cfg = TrainConfig::gujral2025(D, D_SAE, 4, 200);
    cfg.dead_rule = DeadRule::Rows;
    cfg.dead_window_rows = 1000;
    cfg.k_aux = k_aux;
    let mut t = Trainer::new(cfg).unwrap();
    let mut counters = vec![0; D_SAE];
    counters[0] = 1000;
    counters[1] = 1000;
    t.set_rows_since_fired(counters);
    let stats = t.step(&batch(2), None).unwrap();
    assert!(stats.aux_loss > 0.0);
    stats.aux_loss
}

#[test]
fn auxk_loss_is_scaled_by_dead_over_k_aux_with_k_aux_half_of_d_in() {
    // Two dead latents: every nominal k_aux ≥ 2 selects both, so only the scale
    // min(n_dead / k_aux, 1) differs: 1 (k_aux = 2), 2/4, 2/8.
    let full = aux_loss(Some(2));
    let half = aux_loss(Some(4));
    let quarter = aux_loss(Some(8));
    assert!((half / full - 0.5).abs() < 1e-12, "{half} / {full}");
    assert!((quarter / full - 0.25).abs() < 1e-12, "{quarter} / {full}");
    // Rep's k_aux = input_dim // 2 = 8 is the default.
    assert_eq!(aux_loss(None), quarter);
}

#[test]
fn reps_layer_norm_is_carried_into_the_dictionary_and_undone_on_decode() {
    let mut t = Trainer::new(TrainConfig::gujral2025(D, D_SAE, 4, 200)).unwrap();
    let x = batch(3);
    for _ in 0..3 {
        t.step(&x, None).unwrap();
    }
    let dict = t.to_dictionary();
    assert_eq!(dict.input_norm, InputNorm::BiasedLayerNorm { eps: 1e-5 });
    assert!(!dict.meta.hyperparameters["unit_norm_decoder"]
        .as_bool()
        .unwrap());
    // Undone on decode: a row shifted by 5 and scaled by 3 gets the same codes (σ² ≫ eps)
    // and a reconstruction shifted and scaled alike.
    let row = &x[..D];
    let moved: Vec<f32> = row.iter().map(|v| 3.0 * v + 5.0).collect();
    let (c1, r1) = dict.forward(row).unwrap();
    let (c2, r2) = dict.forward(&moved).unwrap();
    assert_eq!(c1.row(0).0, c2.row(0).0);
    for (a, b) in r1.iter().zip(&r2) {
        assert!((3.0 * a + 5.0 - b).abs() < 1e-3, "{a} -> {b}");
    }
}

#[test]
fn configs_written_before_these_options_still_read_with_the_old_behaviour() {
    let cfg = TrainConfig::topk(D, D_SAE, 4);
    let mut json = serde_json::to_value(&cfg).unwrap();
    let obj = json.as_object_mut().unwrap();
    for key in ["dead_rule", "encoder_init", "weight_init"] {
        assert!(obj.remove(key).is_some(), "{key} is serialised");
    }
    let old: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old, cfg);
    assert_eq!(old.dead_rule, DeadRule::Rows);
    assert_eq!(old.weight_init, WeightInit::UnitRows);
    assert_eq!(old.encoder_init, None);
}

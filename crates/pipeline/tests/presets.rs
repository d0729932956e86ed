//! The presets' numbers against the values the papers' code uses (ANCHORS.md cites the files),
//! and the README's preset table against the code.

use plmscope_pipeline::presets::{presets_markdown, Preset};
use plmscope_pipeline::train::TrainRequest;

/// (preset, model, layers, latents, k, normalize, decoder norm, lr, dead steps)
type Cited = (
    &'static str,
    &'static str,
    &'static [usize],
    usize,
    Option<usize>,
    &'static str,
    bool,
    f32,
    Option<u64>,
);

#[test]
fn preset_numbers_match_the_cited_sources() {
    // (preset, model, layers, latents, k, normalize, decoder norm, lr, dead steps)
    let cited: &[Cited] = &[
        // Rep_SAEs_PLMs: ESM2-35M layers 6-10, d_sae 20000, k 64 / 16, per-sample LayerNorm,
        // no decoder norm, Adam 1e-4, dead after 200 (protein) / 50 (AA) idle steps.
        (
            "gujral2025-protein",
            "facebook/esm2_t12_35M_UR50D",
            &[6, 7, 8, 9, 10],
            20_000,
            Some(64),
            "layernorm",
            false,
            1e-4,
            Some(200),
        ),
        (
            "gujral2025-residue",
            "facebook/esm2_t12_35M_UR50D",
            &[6, 7, 8, 9, 10],
            20_000,
            Some(16),
            "layernorm",
            false,
            1e-4,
            Some(50),
        ),
        // InterPLM: ESM2-8M layers 1-6, 10,240 latents (HF Elana/InterPLM-esm2-8m), ReLU-L1.
        (
            "interplm-esm2-8m",
            "facebook/esm2_t6_8M_UR50D",
            &[1, 2, 3, 4, 5, 6],
            10_240,
            None,
            "unit_mean_square",
            true,
            1e-4,
            None,
        ),
        // InterProt: ESM2-650M, layer 24, 4,096 latents, k 64, per-token LayerNorm, AdamW 2e-4.
        (
            "interprot-esm2-650m",
            "facebook/esm2_t33_650M_UR50D",
            &[24],
            4_096,
            Some(64),
            "layernorm",
            true,
            2e-4,
            None,
        ),
    ];
    for &(name, model, layers, latents, k, norm, dec, lr, dead) in cited {
        let p = Preset::by_name(name).unwrap();
        assert_eq!(
            (
                p.model,
                p.layers,
                p.latents,
                p.k,
                p.normalize,
                p.decoder_norm,
                p.lr,
                p.dead_after_steps
            ),
            (model, layers, latents, k, norm, dec, lr, dead),
            "{name}"
        );
    }
    let rep = Preset::by_name("gujral2025-protein").unwrap();
    assert_eq!(
        (rep.namespaces, rep.correction, rep.alpha),
        (&["BP"][..], "bonferroni", 0.05)
    );
    let interplm = Preset::by_name("interplm-esm2-8m").unwrap();
    assert_eq!(interplm.concept_thresholds, &[0.0, 0.15, 0.5, 0.6, 0.8]);
    let tc = Preset::by_name("gujral2025-transcoder").unwrap();
    assert_eq!(tc.transcoder_target, Some("block_delta"));
    assert!(Preset::by_name("gujral2026")
        .unwrap_err()
        .to_string()
        .contains("gujral2025-protein"));
}

#[test]
fn gujral_preset_sets_the_seed_papers_training_rules() {
    use plmscope_sae::trainer::{BDecInit, DeadRule, EncoderInit, TrainConfig, TrainNorm};
    use plmscope_store::Level;
    let mut req = TrainRequest::new("a".into(), "b".into(), 0);
    Preset::by_name("gujral2025-residue")
        .unwrap()
        .fill_train_request(&mut req);
    let adjust = req.adjust.expect("the preset adjusts the config");
    let mut c = TrainConfig::topk(480, 20_000, 16);
    c.input_norm = TrainNorm::LayerNorm { eps: 1e-5 };
    adjust(&mut c, Level::Residue);
    assert_eq!(c.dead_rule, DeadRule::IdleSteps { steps: 50 });
    assert_eq!(c.encoder_init, Some(EncoderInit::DecoderTranspose));
    assert_eq!(c.b_dec_init, BDecInit::Zeros);
    assert_eq!(c.k_aux, Some(240));
    assert!(matches!(c.input_norm, TrainNorm::BiasedLayerNorm { .. }));
}

#[test]
fn readme_preset_table_is_the_codes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(&presets_markdown()),
        "README.md's preset table differs from the code; paste this:\n{}",
        presets_markdown()
    );
}

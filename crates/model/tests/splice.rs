//! The residual-stream patch used by the spliced-in test: an identity patch leaves the masked-LM
//! loss exactly unchanged, zero ablation raises it, and a patch at the last layer acts after
//! the final LayerNorm (where resid_post is captured).

use plmscope_model::{alphabet, load_model, splice, CaptureRequest, ResidualPatch, Site};

const TINY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_checkpoints"
);

#[test]
fn identity_patch_is_exact_and_zero_ablation_hurts() {
    let (model, _) = load_model(TINY).unwrap();
    let proteins: Vec<Vec<u32>> = [
        "MKTAYIAKQRQISFVKSHFSRQ",
        "GSHMLEDPVAGEAVKLLRELSE",
        "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF",
    ]
    .iter()
    .map(|s| alphabet::tokenize(s).unwrap())
    .collect();
    for layer in [0, 1, 2] {
        let mut identity = |_: &mut [f32]| {};
        let mut zero = |rows: &mut [f32]| rows.iter_mut().for_each(|v| *v = 0.0);
        let l = splice::masked_lm_losses(
            &model,
            &proteins,
            layer,
            0.15,
            3,
            4096,
            &mut [&mut identity, &mut zero],
        )
        .unwrap();
        assert_eq!(
            l.patched[0], l.clean,
            "layer {layer}: identity patch changed the loss"
        );
        assert!(
            l.patched[1] > l.clean + 1e-3,
            "layer {layer}: zero ablation {} vs clean {}",
            l.patched[1],
            l.clean
        );
        assert_eq!(l.masked_tokens, 3 + 3 + 7);
    }
    // Replacing the last layer's residues by the captured resid_post (post-LayerNorm) changes
    // nothing, so the patch sees the same tensor the capture stores.
    let ids = &proteins[2];
    let request = CaptureRequest {
        sites: vec![(2, Site::ResidPost)],
        logits: true,
    };
    let clean = model.forward(&[ids], &request).unwrap();
    let captured = clean.sites[&(2, Site::ResidPost)].clone();
    let d = model.config.hidden_size;
    let residues = captured[d..captured.len() - d].to_vec();
    let mut replace = |rows: &mut [f32]| rows.copy_from_slice(&residues);
    let patched = model
        .forward_patched(
            &[ids],
            &request,
            Some(ResidualPatch {
                layer: 2,
                apply: &mut replace,
            }),
        )
        .unwrap();
    assert_eq!(patched.logits, clean.logits);
}

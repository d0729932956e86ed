//! Masked-language-model loss with the residual stream patched at one layer: the spliced-in
//! test of a residue-level SAE (InterPLM's and InterProt's "loss recovered"). The model does
//! not know what the patch is; the caller passes closures (reconstruct, zero-ablate, ...).

use crate::alphabet::MASK;
use crate::batching::plan_batches;
use crate::{CaptureRequest, Esm2, ModelError, ResidualPatch};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A rewrite of the residue rows `[rows, hidden]` of the patched layer, in place.
pub type RowPatch<'a> = dyn FnMut(&mut [f32]) + 'a;

/// Mean cross-entropy (nats) over the masked residues, for the clean model and each patch.
#[derive(Debug, Clone)]
pub struct MaskedLmLosses {
    pub clean: f64,
    pub patched: Vec<f64>,
    pub masked_tokens: usize,
}

/// Which residue positions (token indices, 1-based past `<cls>`) protein `index` has masked:
/// `fraction` of its residues (at least one), chosen by a seeded RNG per protein so the choice
/// does not depend on batching or on which other proteins are evaluated.
pub fn masked_positions(residues: usize, fraction: f64, seed: u64, index: usize) -> Vec<usize> {
    let m = ((residues as f64 * fraction).round() as usize).clamp(1, residues.max(1));
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut picked: Vec<usize> = sample(&mut rng, residues, m)
        .into_iter()
        .map(|p| p + 1)
        .collect();
    picked.sort_unstable();
    picked
}

/// Masks each protein (`<cls> residues <eos>` token ids), runs the model clean and once per
/// patch at `layer`, and returns the mean cross-entropy of the true residues at the masked
/// positions.
pub fn masked_lm_losses(
    model: &Esm2,
    proteins: &[Vec<u32>],
    layer: usize,
    fraction: f64,
    seed: u64,
    token_budget: usize,
    patches: &mut [&mut RowPatch<'_>],
) -> Result<MaskedLmLosses, ModelError> {
    let mut masked: Vec<Vec<u32>> = Vec::with_capacity(proteins.len());
    let mut targets: Vec<Vec<(usize, u32)>> = Vec::with_capacity(proteins.len());
    for (i, p) in proteins.iter().enumerate() {
        let mut m = p.clone();
        let positions = masked_positions(p.len() - 2, fraction, seed, i);
        targets.push(positions.iter().map(|&t| (t, p[t])).collect());
        for t in positions {
            m[t] = MASK;
        }
        masked.push(m);
    }
    let request = CaptureRequest {
        sites: vec![],
        logits: true,
    };
    let mut sums = vec![0f64; patches.len() + 1];
    let mut count = 0usize;
    let lengths: Vec<usize> = masked.iter().map(Vec::len).collect();
    for batch in plan_batches(&lengths, token_budget) {
        let seqs: Vec<&[u32]> = batch.iter().map(|&i| masked[i].as_slice()).collect();
        for (slot, sum) in sums.iter_mut().enumerate() {
            let out = if slot == 0 {
                model.forward(&seqs, &request)?
            } else {
                let patch = ResidualPatch {
                    layer,
                    apply: &mut *patches[slot - 1],
                };
                model.forward_patched(&seqs, &request, Some(patch))?
            };
            let logits = out.logits.as_ref().expect("logits requested");
            for (j, &i) in batch.iter().enumerate() {
                for &(t, truth) in &targets[i] {
                    let row = &logits[(out.offsets[j] + t) * 33..(out.offsets[j] + t + 1) * 33];
                    *sum += cross_entropy(row, truth as usize);
                }
            }
        }
        count += batch.iter().map(|&i| targets[i].len()).sum::<usize>();
    }
    let n = count.max(1) as f64;
    Ok(MaskedLmLosses {
        clean: sums[0] / n,
        patched: sums[1..].iter().map(|s| s / n).collect(),
        masked_tokens: count,
    })
}

fn cross_entropy(logits: &[f32], truth: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let z: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + z.ln() - logits[truth] as f64
}

/// (zero − patched) / (zero − clean): 1 when the patch loses nothing, 0 when it is as bad as
/// zero-ablating the layer.
pub fn loss_recovered(clean: f64, patched: f64, zero: f64) -> f64 {
    (zero - patched) / (zero - clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_seeded_per_protein_and_in_range() {
        let a = masked_positions(100, 0.15, 7, 3);
        assert_eq!(a, masked_positions(100, 0.15, 7, 3));
        assert_ne!(a, masked_positions(100, 0.15, 7, 4));
        assert_eq!(a.len(), 15);
        assert!(a.iter().all(|&p| (1..=100).contains(&p)));
        assert_eq!(masked_positions(3, 0.15, 7, 0).len(), 1);
        assert!((cross_entropy(&[0.0; 33], 5) - 33f64.ln()).abs() < 1e-12);
        assert!((loss_recovered(2.0, 2.0, 4.0) - 1.0).abs() < 1e-12);
    }
}

//! Seeded randomness that stays the same across builds, and the train/validation split.
//!
//! Generators are ChaCha8 keyed by sha256 of (purpose, seed, indices), so each epoch and each
//! shuffle window gets an independent stream that can be recreated directly from its indices:
//! resuming never has to replay earlier draws. Shuffles use our own Fisher–Yates with an
//! unbiased bounded draw rather than `rand`'s helpers, whose algorithms may change between
//! releases and would silently change which rows a seed selects.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A generator for one purpose (`"split"`, `"epoch"`, `"window"`) and position.
pub(crate) fn derived_rng(seed: u64, purpose: &str, a: u64, b: u64) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(b"plmscope-store/");
    hasher.update(purpose.as_bytes());
    hasher.update(seed.to_le_bytes());
    hasher.update(a.to_le_bytes());
    hasher.update(b.to_le_bytes());
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

/// Uniform integer in `0..range` (`range > 0`), without modulo bias (Lemire's method).
fn bounded(rng: &mut ChaCha8Rng, range: u64) -> u64 {
    let mut product = u128::from(rng.next_u64()) * u128::from(range);
    if (product as u64) < range {
        let threshold = range.wrapping_neg() % range;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(range);
        }
    }
    (product >> 64) as u64
}

/// Shuffles `items` in place (Fisher–Yates).
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = bounded(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Splits proteins `0..n_proteins` into (train, validation), each sorted ascending.
///
/// The split is by protein, never by row, so no protein has residues on both sides. The
/// validation side gets `round(n_proteins * validation_fraction)` proteins, at least one when
/// the fraction is positive and at least one protein stays for training. The fraction is
/// clamped to `[0, 1]` (NaN counts as 0). Same inputs, same split.
pub fn split_by_protein(
    n_proteins: usize,
    validation_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let fraction = if validation_fraction.is_nan() {
        0.0
    } else {
        validation_fraction.clamp(0.0, 1.0)
    };
    let mut n_validation = (n_proteins as f64 * fraction).round() as usize;
    if fraction > 0.0 && n_validation == 0 && n_proteins >= 2 {
        n_validation = 1;
    }
    let n_validation = n_validation.min(n_proteins);
    let mut order: Vec<usize> = (0..n_proteins).collect();
    shuffle(&mut order, &mut derived_rng(seed, "split", 0, 0));
    let mut validation = order[..n_validation].to_vec();
    let mut train = order[n_validation..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    (train, validation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_draws_are_uniform_over_a_small_range() {
        let mut rng = derived_rng(7, "test", 0, 0);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[bounded(&mut rng, 6) as usize] += 1;
        }
        // Each bin expects 10_000; 5 sigma is about 456.
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_the_stream() {
        let mut a: Vec<usize> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut a, &mut derived_rng(1, "epoch", 0, 0));
        shuffle(&mut b, &mut derived_rng(1, "epoch", 1, 0));
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }
}

//! Family specificity as InterProt scores it (Adams et al. 2025; etowahadams/interprot @ 287c373,
//! `interprot/make_viz_files/compute_family_specificity.py`, functions
//! `compute_family_specifc_features`, `optimize_f1_boundary`, `add_normalized_acts`):
//!
//! - a unit's protein-level activation (the maximum over residues) is divided by its maximum
//!   over all proteins, so it lies in [0, 1];
//! - the families tested are those of the protein with the highest activation;
//! - for each, "normalised activation >= t" predicts "protein is in the family", t is chosen
//!   from `np.linspace(0.3, 0.9, 7)` by F1 on a training half of the proteins (first best
//!   wins; when no t reaches F1 > 0 the threshold stays 0, predicting every protein), and
//!   precision, recall, F1 and accuracy are reported on the other half (0 where undefined, as
//!   sklearn's `zero_division` gives).
//!
//! Two choices differ from that script, both because it leaves them to chance: the split is one
//! split of proteins for every unit and family (InterProt calls `train_test_split(..., 0.5,
//! random_state=42)` on rows whose order changes per family), given by [`family_split`]; and
//! among proteins tied at the maximum the lowest index supplies the families (InterProt takes
//! the first row of an unstable sort).

use sha2::{Digest, Sha256};

/// The thresholds tried, exactly as `np.linspace(0.3, 0.9, 7)` computes them
/// (`start + i * step`, the last one set to `stop`).
pub fn thresholds() -> [f64; 7] {
    let (start, stop) = (0.3f64, 0.9f64);
    let step = (stop - start) / 6.0;
    let mut t = [0.0; 7];
    for (i, slot) in t.iter_mut().enumerate() {
        *slot = i as f64 * step + start;
    }
    t[6] = stop;
    t
}

/// The training half: proteins ordered by sha256 of `"{seed}:{accession}"` (lowercase hex), the
/// first `n / 2` (rounded down) train, the rest (`ceil(n / 2)`, sklearn's test size for 0.5)
/// report. Independent of input order and reproducible in any language.
pub fn family_split(accessions: &[String], seed: u64) -> Vec<bool> {
    let mut keyed: Vec<([u8; 32], usize)> = accessions
        .iter()
        .enumerate()
        .map(|(i, a)| (Sha256::digest(format!("{seed}:{a}")).into(), i))
        .collect();
    keyed.sort_unstable();
    let mut training = vec![false; accessions.len()];
    for &(_, i) in &keyed[..accessions.len() / 2] {
        training[i] = true;
    }
    training
}

/// One (unit, family) score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyF1 {
    /// Family index (into the caller's family list).
    pub family: u32,
    /// The protein whose families were tested.
    pub top_protein: u32,
    /// The unit's maximum over proteins, which normalises its activations.
    pub unit_max: f64,
    /// Chosen threshold on the normalised activation (0 when none reached F1 > 0).
    pub threshold: f64,
    pub train_f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
    /// Family members among all proteins, and among the reporting half.
    pub family_size: u32,
    pub test_family_size: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Confusion {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

impl Confusion {
    fn f1(&self) -> f64 {
        let denominator = 2 * self.tp + self.fp + self.fn_;
        if denominator == 0 {
            0.0
        } else {
            f64::from(2 * self.tp) / f64::from(denominator)
        }
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// Scores of one unit. `values[p]` is protein `p`'s protein-level activation (non-finite = no
/// value, read as 0, as InterProt's zero-filled matrix does); `families_of[p]` its families;
/// `is_training[p]` its half. Empty for a unit that never exceeds 0 or whose top protein has no
/// family.
pub fn unit_family_f1(
    values: &[f32],
    families_of: &[Vec<u32>],
    is_training: &[bool],
) -> Vec<FamilyF1> {
    let value = |p: usize| {
        let v = values[p];
        if v.is_finite() {
            f64::from(v)
        } else {
            0.0
        }
    };
    let n = values.len();
    let Some((top, max)) = (0..n)
        .map(|p| (p, value(p)))
        .fold(None, |best, (p, v)| match best {
            Some((_, m)) if m >= v => best,
            _ => Some((p, v)),
        })
    else {
        return Vec::new();
    };
    if max <= 0.0 {
        return Vec::new();
    }
    let normalised: Vec<f64> = (0..n).map(|p| value(p) / max).collect();
    let thresholds = thresholds();
    let mut out = Vec::new();
    let mut candidates = families_of[top].clone();
    candidates.sort_unstable();
    candidates.dedup();
    for family in candidates {
        let member: Vec<bool> = families_of.iter().map(|f| f.contains(&family)).collect();
        let confusion = |t: f64, training: bool| {
            let mut c = Confusion::default();
            for p in (0..n).filter(|&p| is_training[p] == training) {
                match (normalised[p] >= t, member[p]) {
                    (true, true) => c.tp += 1,
                    (true, false) => c.fp += 1,
                    (false, true) => c.fn_ += 1,
                    (false, false) => c.tn += 1,
                }
            }
            c
        };
        let (mut threshold, mut train_f1) = (0.0, 0.0);
        for &t in &thresholds {
            let f1 = confusion(t, true).f1();
            if f1 > train_f1 {
                (threshold, train_f1) = (t, f1);
            }
        }
        let c = confusion(threshold, false);
        out.push(FamilyF1 {
            family,
            top_protein: top as u32,
            unit_max: max,
            threshold,
            train_f1,
            precision: ratio(c.tp, c.tp + c.fp),
            recall: ratio(c.tp, c.tp + c.fn_),
            f1: c.f1(),
            accuracy: ratio(c.tp + c.tn, c.tp + c.fp + c.fn_ + c.tn),
            family_size: member.iter().filter(|&&m| m).count() as u32,
            test_family_size: c.tp + c.fn_,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_numpy_linspace() {
        // np.linspace(0.3, 0.9, 7).tolist() printed by numpy 2.4.6.
        let expected = [
            0.3,
            0.4,
            0.5,
            0.6000000000000001,
            0.7000000000000001,
            0.8,
            0.9,
        ];
        assert_eq!(thresholds(), expected);
    }

    #[test]
    fn split_is_half_and_order_free() {
        let accessions: Vec<String> = (0..101).map(|i| format!("P{i:05}")).collect();
        let split = family_split(&accessions, 7);
        assert_eq!(split.iter().filter(|&&t| t).count(), 50);
        let reversed: Vec<String> = accessions.iter().rev().cloned().collect();
        let split_rev = family_split(&reversed, 7);
        let back: Vec<bool> = split_rev.into_iter().rev().collect();
        assert_eq!(split, back);
        assert_ne!(split, family_split(&accessions, 8));
    }
}

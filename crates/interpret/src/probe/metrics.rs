//! Held-out scores: AUROC (Mann–Whitney, ties counted half, as scikit-learn's
//! `roc_auc_score`) and F1 of a thresholded score.

use super::solver::Columns;

/// Area under the ROC curve of `score` for `label`; `None` when one class is absent.
pub fn auroc(score: &[f64], label: &[bool]) -> Option<f64> {
    let entries = score.iter().copied().zip(label.iter().copied()).collect();
    auroc_with_tie_block(entries, TieBlock::default())
}

/// AUROC of column `j` of `x` as the score, counting the rows a sparse column leaves out as
/// one tie at zero (equal to [`auroc`] of the column written out).
pub fn auroc_of_column(x: &Columns, j: usize, label: &[bool]) -> Option<f64> {
    let entries: Vec<(f64, bool)> = x.entries(j).map(|(i, v)| (v as f64, label[i])).collect();
    let positives = label.iter().filter(|l| **l).count();
    let stored_positives = entries.iter().filter(|e| e.1).count();
    let zeros = TieBlock {
        value: 0.0,
        positives: positives - stored_positives,
        negatives: x.implicit_zeros(j) - (positives - stored_positives),
    };
    auroc_with_tie_block(entries, zeros)
}

/// Rows not listed one by one: all scored `value`.
#[derive(Clone, Copy, Default)]
struct TieBlock {
    value: f64,
    positives: usize,
    negatives: usize,
}

/// P(positive > negative) + ½ P(tie) over `entries` (score, label) and `block`, group by group
/// of equal scores in ascending order (the Mann–Whitney U over average ranks).
fn auroc_with_tie_block(mut entries: Vec<(f64, bool)>, block: TieBlock) -> Option<f64> {
    let listed_positives = entries.iter().filter(|e| e.1).count();
    let positives = listed_positives + block.positives;
    let negatives = entries.len() - listed_positives + block.negatives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut below, mut wins) = (0usize, 0.0f64);
    let mut tally = |p: usize, q: usize| {
        wins += p as f64 * below as f64 + 0.5 * (p * q) as f64;
        below += q;
    };
    let mut block_pending = block.positives + block.negatives > 0;
    let mut i = 0;
    while i < entries.len() {
        let value = entries[i].0;
        let (mut p, mut q) = (0usize, 0usize);
        while i < entries.len() && entries[i].0 == value {
            if entries[i].1 {
                p += 1;
            } else {
                q += 1;
            }
            i += 1;
        }
        if block_pending && block.value <= value {
            if block.value == value {
                (p, q) = (p + block.positives, q + block.negatives);
            } else {
                tally(block.positives, block.negatives);
            }
            block_pending = false;
        }
        tally(p, q);
    }
    if block_pending {
        tally(block.positives, block.negatives);
    }
    Some(wins / (positives as f64 * negatives as f64))
}

/// F1 of "score > threshold" against `label` (0 when nothing is predicted or present).
pub fn f1(score: &[f64], label: &[bool], threshold: f64) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&s, &l) in score.iter().zip(label) {
        match (s > threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    if tp == 0 {
        return 0.0;
    }
    2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ties_half() {
        // Pairs (pos, neg): (0.8,0.1) win, (0.8,0.8) tie, (0.4,0.1) win, (0.4,0.8) loss.
        let a = auroc(&[0.8, 0.4, 0.1, 0.8], &[true, true, false, false]).unwrap();
        assert!((a - 2.5 / 4.0).abs() < 1e-12);
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
    }

    #[test]
    fn auroc_of_a_sparse_column_counts_its_zeros_as_one_tie() {
        // Column 1 of 8 rows: stored entries on rows 0, 3, 5 (one of them negative), the
        // other five rows zero.
        let x = Columns::sparse(
            8,
            vec![0, 0, 3],
            vec![0, 3, 5],
            vec![2.0, -1.0, 0.5],
            vec![0.0, 0.0],
        );
        let label = [true, false, true, false, true, false, false, true];
        let dense = x.column(1);
        let expected = auroc(&dense, &label).unwrap();
        assert!((auroc_of_column(&x, 1, &label).unwrap() - expected).abs() < 1e-12);
        // A column stored as all zeros is one tie: 0.5.
        assert_eq!(auroc_of_column(&x, 0, &label), Some(0.5));
        assert_eq!(auroc_of_column(&x, 1, &[true; 8]), None);
    }

    #[test]
    fn f1_of_a_threshold() {
        let f = f1(&[0.9, 0.6, 0.2, 0.7], &[true, false, true, false], 0.5);
        // tp 1, fp 2, fn 1.
        assert!((f - 2.0 / 5.0).abs() < 1e-12);
    }
}

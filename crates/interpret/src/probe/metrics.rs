//! Held-out scores: AUROC (Mann–Whitney, ties counted half, as scikit-learn's
//! `roc_auc_score`) and F1 of a thresholded score.

use super::solver::Columns;

/// Area under the ROC curve of `score` for `label`; `None` when one class is absent.
pub fn auroc(score: &[f64], label: &[bool]) -> Option<f64> {
    let positives = label.iter().filter(|l| **l).count();
    let negatives = label.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    // Sum of the positives' average ranks (1-based), ties sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * order[i..=j].iter().filter(|&&k| label[k]).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// AUROC of column `j` of `x` as the score, counting the rows a sparse column leaves out as
/// one tie at zero (equal to [`auroc`] of the column written out).
pub fn auroc_of_column(x: &Columns, j: usize, label: &[bool]) -> Option<f64> {
    let positives = label.iter().filter(|l| **l).count();
    let negatives = label.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut entries: Vec<(f64, bool)> = x.entries(j).map(|(i, v)| (v as f64, label[i])).collect();
    // The implicit zeros: every label not among the stored entries.
    let stored_positives = entries.iter().filter(|e| e.1).count();
    let zero_positives = positives - stored_positives;
    let zero_negatives = x.implicit_zeros(j) - zero_positives;
    if zero_positives + zero_negatives > 0 {
        entries.extend(std::iter::repeat_n((0.0, true), zero_positives));
        entries.extend(std::iter::repeat_n((0.0, false), zero_negatives));
    }
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    // P(positive > negative) + ½ P(tie), group by group in ascending order.
    let (mut below, mut wins) = (0usize, 0.0f64);
    let mut i = 0;
    while i < entries.len() {
        let mut k = i;
        let (mut p, mut q) = (0usize, 0usize);
        while k < entries.len() && entries[k].0 == entries[i].0 {
            if entries[k].1 {
                p += 1;
            } else {
                q += 1;
            }
            k += 1;
        }
        wins += p as f64 * below as f64 + 0.5 * (p * q) as f64;
        below += q;
        i = k;
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

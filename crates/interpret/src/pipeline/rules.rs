//! Foreground (study-set) rules for both kinds of unit, applied to one unit's protein-level
//! values. Sparse units give their active proteins (the rest are implicit zeros); dense units
//! give every protein's value.

use crate::error::{AnalysisError, AnalysisResult};

/// When a protein is in a unit's foreground.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ForegroundRule {
    /// Protein level: the unit is one of the row's stored (nonzero) latents, for a TopK SAE one
    /// of the k (the seed paper's rule). Residue level: on at least one residue.
    TopKMember,
    /// Protein-level value (residue level: maximum over residues) `> t`.
    Above(f32),
    /// The unit's `n` highest proteins (ties by protein index); sparse units only offer their
    /// active proteins.
    TopProteins(u32),
    /// Value above the unit's own `q`-quantile over all proteins (nearest rank), e.g. 0.99.
    AboveQuantile(f64),
    /// Neurons only: [`ForegroundRule::TopProteins`] with `n` = the median foreground size of
    /// the features with a non-empty foreground in the same run (1% of the proteins when no
    /// features are given), so both kinds are tested with study sets of comparable size.
    MatchFeatures,
}

impl ForegroundRule {
    /// Checks parameters; `MatchFeatures` must be resolved before use.
    pub(crate) fn validate(&self, what: &str) -> AnalysisResult<()> {
        let bad = |v: String| {
            Err(AnalysisError::input(
                format!("{what}: foreground rule {v}"),
                "use a finite threshold, n >= 1 or a quantile in (0, 1)",
            ))
        };
        match *self {
            ForegroundRule::Above(t) if !t.is_finite() => bad(format!("Above({t})")),
            ForegroundRule::TopProteins(0) => bad("TopProteins(0)".into()),
            ForegroundRule::AboveQuantile(q) if !(q > 0.0 && q < 1.0) => {
                bad(format!("AboveQuantile({q})"))
            }
            _ => Ok(()),
        }
    }

    /// One line for the atlas `meta` table.
    pub fn describe(&self) -> String {
        match self {
            ForegroundRule::TopKMember => "topk_member: unit stored (nonzero) in the protein's code; residue level: on any residue".into(),
            ForegroundRule::Above(t) => format!("above: protein-level value (residue level: max over residues) > {t}"),
            ForegroundRule::TopProteins(n) => format!("top_proteins: the unit's {n} highest proteins (ties by protein index)"),
            ForegroundRule::AboveQuantile(q) => format!("above_quantile: value > the unit's own {q}-quantile over all proteins (nearest rank)"),
            ForegroundRule::MatchFeatures => "match_features (unresolved)".into(),
        }
    }
}

/// The foreground of one unit, sorted. `proteins`/`values` are the entries known explicitly
/// (ascending proteins); `implicit_zeros` is how many other proteins have value 0 (sparse codes),
/// or `None` for a dense column where the entries are all proteins with a value.
pub(crate) fn select(
    rule: ForegroundRule,
    proteins: &[u32],
    values: &[f32],
    n_proteins: u32,
    sparse: bool,
) -> Vec<u32> {
    let implicit_zeros = if sparse {
        n_proteins as usize - proteins.len()
    } else {
        0
    };
    let above = |t: f32| -> Vec<u32> {
        let mut out: Vec<u32> = proteins
            .iter()
            .zip(values)
            .filter(|(_, &v)| v > t)
            .map(|(&p, _)| p)
            .collect();
        if sparse && t < 0.0 {
            // Implicit zeros exceed a negative threshold too.
            out.extend((0..n_proteins).filter(|p| proteins.binary_search(p).is_err()));
            out.sort_unstable();
        }
        out
    };
    match rule {
        ForegroundRule::TopKMember => proteins
            .iter()
            .zip(values)
            .filter(|(_, &v)| v != 0.0)
            .map(|(&p, _)| p)
            .collect(),
        ForegroundRule::Above(t) => above(t),
        ForegroundRule::TopProteins(_) | ForegroundRule::MatchFeatures if n_proteins > 0 => {
            let n = match rule {
                ForegroundRule::TopProteins(n) => n,
                _ => n_proteins.div_ceil(100),
            };
            let mut order: Vec<usize> = (0..proteins.len())
                .filter(|&i| !sparse || values[i] > 0.0)
                .collect();
            let by_value = |&a: &usize, &b: &usize| {
                values[b]
                    .total_cmp(&values[a])
                    .then(proteins[a].cmp(&proteins[b]))
            };
            let n = (n as usize).min(order.len());
            if n > 0 && n < order.len() {
                order.select_nth_unstable_by(n - 1, by_value);
            }
            order.truncate(n);
            let mut out: Vec<u32> = order.iter().map(|&i| proteins[i]).collect();
            out.sort_unstable();
            out
        }
        ForegroundRule::AboveQuantile(q) => {
            let mut sorted: Vec<f32> = values.to_vec();
            sorted.sort_unstable_by(f32::total_cmp);
            let total = sorted.len() + implicit_zeros;
            if total == 0 {
                return Vec::new();
            }
            let rank = ((q * total as f64).ceil() as usize).clamp(1, total) - 1;
            // The sorted list of all values is: negatives, implicit zeros, the rest.
            let negatives = sorted.partition_point(|&v| v < 0.0);
            let threshold = if rank < negatives {
                sorted[rank]
            } else if rank < negatives + implicit_zeros {
                0.0
            } else {
                sorted[rank - implicit_zeros]
            };
            above(threshold)
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_on_sparse_and_dense_columns() {
        let proteins = [1, 4, 7, 9];
        let values = [0.5, 3.0, 2.0, 0.0];
        assert_eq!(
            select(ForegroundRule::TopKMember, &proteins, &values, 10, true),
            [1, 4, 7]
        );
        assert_eq!(
            select(ForegroundRule::Above(1.0), &proteins, &values, 10, true),
            [4, 7]
        );
        assert_eq!(
            select(ForegroundRule::TopProteins(2), &proteins, &values, 10, true),
            [4, 7]
        );
        // 10 values: 7 zeros then 0.5, 2, 3; the 0.8-quantile (rank 8) is 0.5.
        assert_eq!(
            select(
                ForegroundRule::AboveQuantile(0.8),
                &proteins,
                &values,
                10,
                true
            ),
            [4, 7]
        );
        assert_eq!(
            select(
                ForegroundRule::AboveQuantile(0.5),
                &proteins,
                &values,
                10,
                true
            ),
            [1, 4, 7]
        );
        let dense: Vec<f32> = (0..10).map(|i| i as f32 - 5.0).collect();
        let all: Vec<u32> = (0..10).collect();
        assert_eq!(
            select(ForegroundRule::TopProteins(3), &all, &dense, 10, false),
            [7, 8, 9]
        );
        assert_eq!(
            select(ForegroundRule::AboveQuantile(0.9), &all, &dense, 10, false),
            [9]
        );
        assert_eq!(
            select(ForegroundRule::Above(-1.5), &all, &dense, 10, false),
            [4, 5, 6, 7, 8, 9]
        );
        assert_eq!(
            select(ForegroundRule::Above(-1.0), &proteins, &values, 10, true),
            (0..10).collect::<Vec<u32>>()
        );
    }
}

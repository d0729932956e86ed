//! The score of a description: Pearson's r of predicted against true scaled activations with its
//! two-sided p from Student's t (what `scipy.stats.pearsonr` reports, as the seed paper does), and
//! Spearman's rho (Pearson on average ranks).

/// Pearson correlation and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    pub r: f64,
    pub p: f64,
}

/// Pearson's r and p; `None` with fewer than 3 pairs, unequal lengths or a constant side (r is
/// undefined there: a model that predicts the same number for every protein explains nothing).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<Correlation> {
    let n = x.len();
    if n < 3 || y.len() != n || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let r = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    Some(Correlation {
        r,
        p: pearson_p(r, n),
    })
}

/// Spearman's rho: Pearson's r on average ranks (ties share their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<Correlation> {
    if x.len() != y.len() {
        return None;
    }
    pearson(&ranks(x), &ranks(y))
}

/// The median of the finite values (`None` when there is none).
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Two-sided p of r under H0 (no correlation): t = r √(df / (1 − r²)), df = n − 2, and
/// P(|T| ≥ t) = I_{df/(df+t²)}(df/2, 1/2).
fn pearson_p(r: f64, n: usize) -> f64 {
    let df = (n - 2) as f64;
    let one_minus = 1.0 - r * r;
    if one_minus <= 0.0 {
        return 0.0;
    }
    let t2 = r * r * df / one_minus;
    regularized_beta(df / (df + t2), df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
pub fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + numerator / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        // The last factor is d·c of the odd step; stop when it no longer changes h.
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0: Lanczos approximation (g = 7, 9 coefficients; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        return std::f64::consts::PI.ln()
            - (std::f64::consts::PI * x).sin().abs().ln()
            - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The area under the ROC curve of `scores` for `labels` (true = positive): the probability that
/// a random positive scores above a random negative, ties counting one half (the Mann-Whitney U
/// over average ranks; what `sklearn.metrics.roc_auc_score` gives). `None` when a class is
/// missing, the lengths differ or a score is not finite.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    crate::probe::metrics::auroc(scores, labels)
}

/// Counts of a binary classification (true = the positive class).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts of `predicted` against `truth` (pairs past the shorter list are ignored).
    pub fn of(truth: &[bool], predicted: &[bool]) -> Confusion {
        let mut c = Confusion::default();
        for (&t, &p) in truth.iter().zip(predicted) {
            match (t, p) {
                (true, true) => c.true_positives += 1,
                (false, true) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (true, false) => c.false_negatives += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    /// TP / (TP + FP); 0 when nothing is predicted positive (sklearn's `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// TP / (TP + FN); 0 when there is no positive (sklearn's `zero_division=0`).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// 2 TP / (2 TP + FP + FN); 0 when that is 0 / 0.
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positives + self.true_negatives, self.total())
    }

    /// The mean of the recalls of the classes present in the truth (as
    /// `sklearn.metrics.balanced_accuracy_score`, which leaves out a class with no samples);
    /// 0 with no pairs.
    pub fn balanced_accuracy(&self) -> f64 {
        let positives = self.true_positives + self.false_negatives;
        let negatives = self.true_negatives + self.false_positives;
        let mut recalls = Vec::new();
        if positives > 0 {
            recalls.push(ratio(self.true_positives, positives));
        }
        if negatives > 0 {
            recalls.push(ratio(self.true_negatives, negatives));
        }
        if recalls.is_empty() {
            return 0.0;
        }
        recalls.iter().sum::<f64>() / recalls.len() as f64
    }
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

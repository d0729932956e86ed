//! delphi's residue-level protocol (EleutherAI delphi; facts from `delphi/config.py` and
//! `delphi/scorers/classifier/`): a unit is explained from 40 windows of 32 residues drawn
//! across 10 activation quantiles, activating residues marked `<<...>>`; its description is
//! scored on held-out windows (never the explain windows, and windows never overlap) by
//! *detection* (does the unit fire anywhere in this unmarked window?) and *fuzzing* (are the
//! marked residues the right ones? non-activating windows carry as many random marks as test
//! windows have active residues on average), 5 windows per prompt. Each scorer reports
//! precision, recall, F1, balanced accuracy and, where the API returns log-probabilities
//! (OpenAI's `logprobs`), AUROC of P(1); Anthropic's API has none, and AUROC is null there.
//!
//! Windows come from the atlas ([`windows::write_residue_windows`], at analyze time). Scores are
//! stored in `descriptions` with protocol `delphi`: `auroc` holds detection's AUROC, `scores`
//! the JSON of [`DelphiScores`], `n_held_out` the held-out windows.

pub mod prompts;
mod run;
pub mod windows;

use rand::seq::SliceRandom;
use rand::Rng;

pub use run::describe;
pub use windows::{
    read_residue_windows, residue_windows, write_residue_windows, UnitWindows, Window,
    WindowOptions,
};

use super::stats::{auroc, Confusion};

/// The protocol name stored with each description.
pub const DELPHI: &str = "delphi";

/// delphi's counts (`delphi/config.py` defaults; 5 windows per scorer prompt).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DelphiOptions {
    /// Windows shown to the explainer (`n_examples_train`).
    pub n_explain: usize,
    /// Activation quantiles the explain and test windows are drawn across (`n_quantiles`).
    pub n_quantiles: usize,
    /// Held-out activating windows (`n_examples_test`).
    pub n_test: usize,
    /// Held-out non-activating windows (`n_non_activating`).
    pub n_non_activating: usize,
    /// Windows per scorer prompt (`n_examples_shown`).
    pub per_prompt: usize,
    /// A residue is marked when its activation is at least this share of the window's maximum
    /// (delphi's highlighting threshold).
    pub threshold: f32,
    /// Ask for log-probabilities where the API gives them (OpenAI), for AUROC.
    pub log_probs: bool,
}

impl Default for DelphiOptions {
    fn default() -> Self {
        DelphiOptions {
            n_explain: 40,
            n_quantiles: 10,
            n_test: 50,
            n_non_activating: 50,
            per_prompt: 5,
            threshold: 0.3,
            log_probs: true,
        }
    }
}

/// One unit's windows for one run: the explain set and the held-out sets.
#[derive(Debug, Clone, PartialEq)]
pub struct DelphiSample {
    pub explain: Vec<Window>,
    pub test_active: Vec<Window>,
    pub test_inactive: Vec<Window>,
}

/// The outcome of sampling one unit's windows.
#[derive(Debug, Clone, PartialEq)]
pub enum DelphiSampled {
    Unit(DelphiSample),
    /// A quantile has fewer windows than its explain and test shares.
    TooFewActive {
        active: usize,
    },
    TooFewInactive {
        inactive: usize,
    },
}

/// `total` spread over `parts`, the remainder to the top parts.
fn share(total: usize, parts: usize, part: usize) -> usize {
    total / parts + usize::from(part >= parts - total % parts)
}

/// Splits the active windows (sorted by maximum) into `n_quantiles` equal-count quantiles and
/// draws from each its share of explain windows and then, from the rest, its share of test
/// windows; draws the non-activating test windows.
pub fn sample_windows(
    windows: &UnitWindows,
    options: &DelphiOptions,
    rng: &mut impl Rng,
) -> DelphiSampled {
    let n = windows.active.len();
    let q = options.n_quantiles.max(1);
    if windows.inactive.len() < options.n_non_activating {
        return DelphiSampled::TooFewInactive {
            inactive: windows.inactive.len(),
        };
    }
    let mut explain = Vec::with_capacity(options.n_explain);
    let mut test_active = Vec::with_capacity(options.n_test);
    for part in 0..q {
        let range = part * n / q..(part + 1) * n / q;
        let (e, t) = (
            share(options.n_explain, q, part),
            share(options.n_test, q, part),
        );
        if range.len() < e + t {
            return DelphiSampled::TooFewActive { active: n };
        }
        let mut indices: Vec<usize> = range.collect();
        indices.shuffle(rng);
        explain.extend(indices[..e].iter().map(|&i| windows.active[i].clone()));
        test_active.extend(indices[e..e + t].iter().map(|&i| windows.active[i].clone()));
    }
    let mut inactive = windows.inactive.clone();
    inactive.shuffle(rng);
    inactive.truncate(options.n_non_activating);
    DelphiSampled::Unit(DelphiSample {
        explain,
        test_active,
        test_inactive: inactive,
    })
}

/// One window as a scorer shows it, with the right answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    pub truth: bool,
}

/// Detection items: held-out activating (true) and non-activating (false) windows, unmarked,
/// shuffled.
pub fn detection_items(sample: &DelphiSample, rng: &mut impl Rng) -> Vec<Item> {
    let mut items: Vec<Item> = sample
        .test_active
        .iter()
        .map(|w| (w, true))
        .chain(sample.test_inactive.iter().map(|w| (w, false)))
        .map(|(w, truth)| Item {
            text: w.residues.clone(),
            truth,
        })
        .collect();
    items.shuffle(rng);
    items
}

/// Fuzzing items: held-out activating windows with their active residues marked (true), and
/// non-activating windows with ⌈mean active residues per test window⌉ residues marked at random,
/// the anchor position (`ctx_len − ctx_len / 4`) among them as delphi does (false); shuffled.
pub fn fuzzing_items(sample: &DelphiSample, threshold: f32, rng: &mut impl Rng) -> Vec<Item> {
    let active_counts: usize = sample
        .test_active
        .iter()
        .map(|w| w.activations.iter().filter(|&&a| a > 0.0).count())
        .sum();
    let n_incorrect = active_counts
        .div_ceil(sample.test_active.len().max(1))
        .max(1);
    let mut items = Vec::new();
    for w in &sample.test_active {
        let marks = prompts::above_threshold(w, threshold);
        items.push(Item {
            text: prompts::mark(w, &|i| marks[i]),
            truth: true,
        });
    }
    for w in &sample.test_inactive {
        let len = w.activations.len();
        let anchor = len - len / 4;
        let mut positions: Vec<usize> = (0..len).filter(|&i| i != anchor).collect();
        positions.shuffle(rng);
        let mut marks = vec![false; len];
        let mut chosen = 0;
        if anchor < len {
            marks[anchor] = true;
            chosen = 1;
        }
        for &p in positions
            .iter()
            .take(n_incorrect.min(len).saturating_sub(chosen))
        {
            marks[p] = true;
        }
        items.push(Item {
            text: prompts::mark(w, &|i| marks[i]),
            truth: false,
        });
    }
    items.shuffle(rng);
    items
}

/// One scorer's result over its items.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScorerResult {
    /// Items shown.
    pub n: usize,
    /// Items with a parsed answer (a prompt whose reply never parsed scores none of its items).
    pub scored: usize,
    pub failed_prompts: usize,
    pub confusion: Confusion,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub balanced_accuracy: f64,
    pub accuracy: f64,
    /// AUROC of P(1) where every scored prompt came with log-probabilities; else null.
    pub auroc: Option<f64>,
}

impl ScorerResult {
    /// From the truths and, per item, the answer and P(1) (`None` where not answered).
    pub fn of(
        truth: &[bool],
        answers: &[Option<bool>],
        probabilities: &[Option<f64>],
        failed_prompts: usize,
    ) -> ScorerResult {
        let (mut t, mut p) = (Vec::new(), Vec::new());
        let (mut scores, mut labels) = (Vec::new(), Vec::new());
        let mut all_probabilities = true;
        for (i, (&truth, answer)) in truth.iter().zip(answers).enumerate() {
            let Some(answer) = answer else { continue };
            t.push(truth);
            p.push(*answer);
            match probabilities.get(i).copied().flatten() {
                Some(probability) => {
                    scores.push(probability);
                    labels.push(truth);
                }
                None => all_probabilities = false,
            }
        }
        let confusion = Confusion::of(&t, &p);
        ScorerResult {
            n: truth.len(),
            scored: t.len(),
            failed_prompts,
            confusion,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            balanced_accuracy: confusion.balanced_accuracy(),
            accuracy: confusion.accuracy(),
            auroc: if all_probabilities && !scores.is_empty() {
                auroc(&scores, &labels)
            } else {
                None
            },
        }
    }
}

/// What `descriptions.scores` holds for a delphi row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DelphiScores {
    pub detection: ScorerResult,
    pub fuzzing: ScorerResult,
    pub n_explain: usize,
    pub options: DelphiOptions,
}

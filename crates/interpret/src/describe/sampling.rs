//! The seed paper's sampling of proteins for one unit (Gujral et al. 2025; facts from
//! onkarsg10/Rep_SAEs_PLMs `Folder_Pooling_Autointerp/Pooling_Auto_Interp.py`,
//! `get_sequences_for_neuron` and `analyze_neuron`):
//! - activations min-max scaled per unit to [0, 1] over all proteins;
//! - five bins of width 0.2; 6 proteins from 0.8–1.0, 3 from each of 0.2–0.4, 0.4–0.6 and
//!   0.6–0.8, 2 from 0.0–0.2, drawn without replacement, the top bin first and then upwards
//!   from the bottom; a short bin borrows from its neighbours at distance 1, 2, … (lower first);
//! - 15 inactive proteins;
//! - a unit with fewer than 2 × 17 = 34 active proteins is skipped;
//! - active and inactive samples are each split into an explain part and a held-out part.
//!
//! Two deliberate differences: the seed's top bin is `0.8 <= a < 1.0`, so the protein at the
//! maximum (scaled exactly 1) can never be drawn; here the top bin includes 1.0. And for dense
//! units (neurons), where the seed draws "inactive" proteins (scaled < 0.2) and active ones
//! independently so that one protein can be both, the inactive ones are drawn first and excluded.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

/// The counts of the seed protocol.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeedSampling {
    /// Samples per bin, bins 0.0–0.2, 0.2–0.4, 0.4–0.6, 0.6–0.8, 0.8–1.0.
    pub per_bin: [usize; 5],
    pub inactive: usize,
    /// Active proteins a unit needs (the seed: twice the active sample).
    pub min_active: usize,
    /// Share of each sample shown to the explainer; the rest is held out for scoring. The
    /// seed's README runs 0.5 (its code default is 0.75).
    pub explain_fraction: f64,
}

impl Default for SeedSampling {
    fn default() -> Self {
        SeedSampling {
            per_bin: [2, 3, 3, 3, 6],
            inactive: 15,
            min_active: 34,
            explain_fraction: 0.5,
        }
    }
}

impl SeedSampling {
    pub fn active_total(&self) -> usize {
        self.per_bin.iter().sum()
    }
}

/// How "inactive" is defined for a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitMode {
    /// Sparse codes (features): inactive means exactly zero.
    Sparse,
    /// Dense values (neurons): inactive means scaled below 0.2, the seed's embedding mode.
    Dense,
}

/// One sampled protein with its scaled activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub protein: u32,
    pub activation: f64,
}

/// What a unit shows the explainer and what it is scored on.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSample {
    pub explain_active: Vec<Sample>,
    pub explain_inactive: Vec<Sample>,
    /// Active and inactive held-out proteins, shuffled together.
    pub held_out: Vec<Sample>,
}

/// The outcome of sampling one unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampled {
    Unit(UnitSample),
    /// Fewer active proteins than [`SeedSampling::min_active`].
    TooFewActive {
        active: usize,
    },
    /// Fewer inactive proteins than [`SeedSampling::inactive`].
    TooFewInactive {
        inactive: usize,
    },
}

/// Min-max scaling to [0, 1]; a constant vector scales to zeros (the seed divides by
/// max(max − min, 1e-10), which gives the same).
pub fn min_max_scale(values: &[f32]) -> Vec<f64> {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let range = max - min;
    if !range.is_finite() || range <= 0.0 {
        return vec![0.0; values.len()];
    }
    values
        .iter()
        .map(|&v| ((v as f64 - min) / range).clamp(0.0, 1.0))
        .collect()
}

/// Bin of a scaled activation: `[0.2 b, 0.2 (b + 1))`, the top bin closed at 1.
pub fn bin_of(scaled: f64) -> usize {
    ((scaled / 0.2).floor().max(0.0) as usize).min(4)
}

/// Draws the active sample from `candidates` (protein ids with their scaled values in
/// `scaled`): the top bin first, then bins 0, 1, 2, 3, each borrowing from neighbours when short.
pub fn sample_bins(
    scaled: &[f64],
    candidates: &[u32],
    per_bin: [usize; 5],
    rng: &mut impl Rng,
) -> Vec<u32> {
    let mut pools: [Vec<u32>; 5] = Default::default();
    for &p in candidates {
        pools[bin_of(scaled[p as usize])].push(p);
    }
    let mut chosen = Vec::new();
    for bin in [4, 0, 1, 2, 3] {
        let mut needed = per_bin[bin];
        let mut order = vec![bin];
        for distance in 1..5 {
            if let Some(lower) = bin.checked_sub(distance) {
                order.push(lower);
            }
            if bin + distance < 5 {
                order.push(bin + distance);
            }
        }
        for source in order {
            if needed == 0 {
                break;
            }
            let pool = &mut pools[source];
            let take = needed.min(pool.len());
            // Drawn proteins leave their pool, so nothing is drawn twice.
            pool.shuffle(rng);
            chosen.extend(pool.drain(pool.len() - take..));
            needed -= take;
        }
    }
    chosen
}

/// Samples one unit from its scaled activations over all proteins.
pub fn sample_unit(
    scaled: &[f64],
    mode: UnitMode,
    protocol: &SeedSampling,
    rng: &mut impl Rng,
) -> Sampled {
    let all: Vec<u32> = (0..scaled.len() as u32).collect();
    let (inactive_pool, active_pool): (Vec<u32>, Vec<u32>) = match mode {
        UnitMode::Sparse => all.iter().partition(|&&p| scaled[p as usize] == 0.0),
        UnitMode::Dense => all.iter().partition(|&&p| scaled[p as usize] < 0.2),
    };
    if inactive_pool.len() < protocol.inactive {
        return Sampled::TooFewInactive {
            inactive: inactive_pool.len(),
        };
    }
    let inactive: Vec<u32> = inactive_pool
        .choose_multiple(rng, protocol.inactive)
        .copied()
        .collect();
    let active_candidates: Vec<u32> = match mode {
        UnitMode::Sparse => active_pool,
        UnitMode::Dense => {
            let taken: std::collections::HashSet<u32> = inactive.iter().copied().collect();
            all.into_iter().filter(|p| !taken.contains(p)).collect()
        }
    };
    let active_count = match mode {
        UnitMode::Sparse => active_candidates.len(),
        UnitMode::Dense => active_candidates
            .iter()
            .filter(|&&p| scaled[p as usize] > 0.0)
            .count(),
    };
    if active_count < protocol.min_active {
        return Sampled::TooFewActive {
            active: active_count,
        };
    }
    let active = sample_bins(scaled, &active_candidates, protocol.per_bin, rng);
    if active.len() < protocol.active_total() {
        return Sampled::TooFewActive {
            active: active.len(),
        };
    }
    let to_samples =
        |ids: &[u32]| -> Vec<Sample> { ids.iter().map(|&p| sample_of(scaled, p)).collect() };
    let (explain_active, held_active) = split(&to_samples(&active), protocol, rng);
    let (explain_inactive, held_inactive) = split(&to_samples(&inactive), protocol, rng);
    let mut held_out = held_active;
    held_out.extend(held_inactive);
    held_out.shuffle(rng);
    Sampled::Unit(UnitSample {
        explain_active,
        explain_inactive,
        held_out,
    })
}

fn sample_of(scaled: &[f64], protein: u32) -> Sample {
    Sample {
        protein,
        activation: scaled[protein as usize],
    }
}

/// Shuffles and splits: the first ⌊n · explain_fraction⌋ explain, the rest are held out.
fn split(
    samples: &[Sample],
    protocol: &SeedSampling,
    rng: &mut impl Rng,
) -> (Vec<Sample>, Vec<Sample>) {
    let mut shuffled = samples.to_vec();
    shuffled.shuffle(rng);
    let n_explain = (shuffled.len() as f64 * protocol.explain_fraction).floor() as usize;
    let held = shuffled.split_off(n_explain.min(shuffled.len()));
    (shuffled, held)
}

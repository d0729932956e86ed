//! Which units a run describes: per kind, all units in an order shuffled with the run's seed,
//! taken until `sample` of them qualify (units too sparse for the protocol are passed over and
//! counted, as the seed skips them). Units an earlier run finished count toward the sample, so a
//! rerun with the same seed completes the same draw.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;

use super::error::{DescribeError, DescribeResult};
use super::sampling::{min_max_scale, sample_unit, Sampled, UnitMode};
use super::store::{existing_description, unit_activations, units_of_kind, Existing, RunKey};
use super::unit::Job;
use super::{DescribeOptions, KindCounts};

pub(crate) struct Plan {
    pub kind: String,
    pub jobs: Vec<Job>,
    pub counts: KindCounts,
}

/// The random stream of one unit's sample: independent of the order units are visited in and
/// of the number of threads.
pub(crate) fn unit_rng(seed: u64, unit: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(unit) + 1);
    rng
}

pub(crate) fn plan_kind(
    connection: &Connection,
    path: &Path,
    kind: &str,
    n_proteins: u32,
    options: &DescribeOptions,
    key: &RunKey,
) -> DescribeResult<Plan> {
    let mut units = units_of_kind(connection, kind, path)?;
    let mut order_rng = ChaCha8Rng::seed_from_u64(options.seed);
    // Stream 0 of the seed orders units (unit samples use streams unit + 1).
    order_rng.set_stream(if kind == "feature" { 0 } else { u64::MAX });
    units.shuffle(&mut order_rng);
    let mode = if kind == "feature" {
        UnitMode::Sparse
    } else {
        UnitMode::Dense
    };
    let mut counts = KindCounts::default();
    let mut jobs = Vec::new();
    for unit in units {
        if jobs.len() + counts.already_done >= options.sample {
            break;
        }
        if unit.dead {
            counts.dead += 1;
            continue;
        }
        let existing = existing_description(connection, unit.unit, key, path)?;
        match existing {
            Existing::Described => {
                counts.already_done += 1;
                continue;
            }
            Existing::Failed if !options.retry_failed => {
                counts.already_done += 1;
                continue;
            }
            _ => {}
        }
        let values =
            unit_activations(connection, unit.unit, n_proteins, path)?.ok_or_else(|| {
                DescribeError::input(
                    format!(
                        "{}: no per-protein activations for {kind} {} (unit {})",
                        path.display(),
                        unit.index,
                        unit.unit
                    ),
                    "write them at analyze time with describe::write_protein_activations",
                )
            })?;
        let scaled = min_max_scale(&values);
        let mut rng = unit_rng(options.seed, unit.unit);
        match sample_unit(&scaled, mode, &options.sampling, &mut rng) {
            Sampled::Unit(sample) => jobs.push(Job {
                unit: unit.unit,
                kind: kind.to_string(),
                index: unit.index,
                sample,
                replaces_failure: existing == Existing::Failed,
            }),
            Sampled::TooFewActive { .. } => counts.too_few_active += 1,
            Sampled::TooFewInactive { .. } => counts.too_few_inactive += 1,
        }
    }
    counts.selected = jobs.len();
    Ok(Plan {
        kind: kind.to_string(),
        jobs,
        counts,
    })
}

//! The exact prompts a describe run sends for a unit, rebuilt from the atlas: for
//! `--prompts-dir`, dry-run estimates, `examples/prompts/`, and `plmscope score`, which must
//! ask about the same held-out proteins the description was first scored on.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::error::{DescribeError, DescribeResult};
use super::metadata::{load_protein_meta, ProteinMeta};
use super::plan::unit_rng;
use super::prompts::{explain_prompt, predict_prompt};
use super::sampling::{min_max_scale, sample_unit, Sampled, UnitMode, UnitSample};
use super::store::{open_atlas, protein_count, unit_activations};
use super::DescribeOptions;

/// The explain prompt and the predict prompt of one unit, as a describe run with `options`
/// builds them; the predict prompt holds `description` where the model's sentence would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPrompts {
    pub unit: u32,
    pub kind: String,
    pub index: u32,
    pub label: String,
    pub explain: String,
    pub predict: String,
    /// Proteins the predict prompt asks about.
    pub n_held_out: usize,
}

pub(crate) fn unit_row(
    connection: &Connection,
    unit: u32,
    path: &Path,
) -> DescribeResult<Option<(String, u32)>> {
    connection
        .query_row(
            "SELECT kind, \"index\" FROM units WHERE unit = ?1",
            [unit],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(DescribeError::sqlite(path, format!("reading unit {unit}")))
}

/// The sample a describe run with `options` draws for one unit (`None`: the unit is too sparse
/// for the protocol).
pub(crate) fn sample_of(
    connection: &Connection,
    path: &Path,
    unit: u32,
    kind: &str,
    n_proteins: u32,
    options: &DescribeOptions,
) -> DescribeResult<Option<UnitSample>> {
    let values = unit_activations(connection, unit, n_proteins, path)?.ok_or_else(|| {
        DescribeError::input(
            format!(
                "{}: no per-protein activations for unit {unit}",
                path.display()
            ),
            "rerun `plmscope analyze` (it writes them) on this atlas",
        )
    })?;
    let mode = if kind == "feature" {
        UnitMode::Sparse
    } else {
        UnitMode::Dense
    };
    let mut rng = unit_rng(options.seed, unit);
    Ok(
        match sample_unit(&min_max_scale(&values), mode, &options.sampling, &mut rng) {
            Sampled::Unit(sample) => Some(sample),
            _ => None,
        },
    )
}

pub(crate) fn prompts_for(
    label: &str,
    sample: &UnitSample,
    meta: &[ProteinMeta],
    description: &str,
    sequence: bool,
) -> (String, String) {
    let m = |p: u32| &meta[p as usize];
    let active: Vec<_> = sample
        .explain_active
        .iter()
        .map(|s| (m(s.protein), *s))
        .collect();
    let inactive: Vec<_> = sample
        .explain_inactive
        .iter()
        .map(|s| (m(s.protein), *s))
        .collect();
    let held: Vec<&ProteinMeta> = sample.held_out.iter().map(|s| m(s.protein)).collect();
    (
        explain_prompt(label, &active, &inactive, sequence),
        predict_prompt(description, &held, sequence),
    )
}

/// The exact prompts of `units` (for `--prompts-dir`, dry-run estimates and
/// `examples/prompts/`), in the order given; units too sparse to be described are left out.
pub fn unit_prompts(
    atlas: &Path,
    options: &DescribeOptions,
    units: &[u32],
    description: &str,
) -> DescribeResult<Vec<UnitPrompts>> {
    let connection = open_atlas(atlas)?;
    let n_proteins = protein_count(&connection, atlas)?;
    let meta = load_protein_meta(&connection, atlas)?;
    let mut prompts = Vec::new();
    for &unit in units {
        let (kind, index) = unit_row(&connection, unit, atlas)?.ok_or_else(|| {
            DescribeError::input(
                format!("{}: no unit {unit}", atlas.display()),
                "name a unit of the atlas's units table",
            )
        })?;
        let Some(sample) = sample_of(&connection, atlas, unit, &kind, n_proteins, options)? else {
            continue;
        };
        let label = format!("{kind} {index}");
        let (explain, predict) = prompts_for(
            &label,
            &sample,
            &meta,
            description,
            options.include_sequence,
        );
        prompts.push(UnitPrompts {
            unit,
            kind,
            index,
            label,
            explain,
            predict,
            n_held_out: sample.held_out.len(),
        });
    }
    Ok(prompts)
}

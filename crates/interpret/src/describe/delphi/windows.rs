//! Residue windows of residue-level units, written into the atlas at analyze time for the
//! delphi protocol: per unit, windows of `ctx_len` residues around its activations with the
//! activation of every residue, and windows from proteins on which it never fires.
//!
//! Windows follow delphi (`delphi/config.py`: `example_ctx_len = 32`, `center_examples`; the
//! activating token sits at `ctx_len - ctx_len // 4`, as `scorers/classifier/sample.py` notes).
//! Within one protein the windows never overlap: the strongest residue not yet covered opens
//! the next window. At most `max_active` windows are kept per unit, evenly spaced over the
//! windows sorted by their maximum, so every activation quantile keeps its share.

use std::path::Path;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{params, Connection};

use crate::activations::Activations;
use crate::atlas::UnitKind;

use super::super::error::{DescribeError, DescribeResult};
use super::super::store::open_atlas;

pub(crate) const TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS residue_windows (
    unit        INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    protein     INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    residues    TEXT NOT NULL,
    activations BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS residue_windows_unit ON residue_windows (unit);
"#;

/// How windows are cut and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowOptions {
    /// Residues per window (delphi's `example_ctx_len`: 32).
    pub ctx_len: usize,
    /// Activating windows kept per unit (delphi's `min_examples`: 200).
    pub max_active: usize,
    /// Windows from proteins where the unit is zero throughout (delphi's `n_non_activating`: 50).
    pub n_inactive: usize,
    /// Seeds the choice of inactive proteins and window starts.
    pub seed: u64,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            ctx_len: 32,
            max_active: 200,
            n_inactive: 50,
            seed: 0,
        }
    }
}

/// A stretch of one protein with the unit's activation on each residue.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub protein: u32,
    /// 0-based position of the first residue.
    pub start: u32,
    pub residues: String,
    pub activations: Vec<f32>,
}

impl Window {
    pub fn max(&self) -> f32 {
        self.activations.iter().copied().fold(0.0, f32::max)
    }

    /// One past the last residue.
    pub fn end(&self) -> u32 {
        self.start + self.activations.len() as u32
    }

    /// Whether two windows share a residue.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.protein == other.protein && self.start < other.end() && other.start < self.end()
    }
}

/// A unit's windows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitWindows {
    /// Sorted by their maximum activation, ascending.
    pub active: Vec<Window>,
    pub inactive: Vec<Window>,
}

/// `(protein, position, value)` of every positive residue activation, per unit.
fn residue_entries(activations: &Activations) -> DescribeResult<Vec<Vec<(u32, u32, f32)>>> {
    let n_units = activations.n_units() as usize;
    let mut entries = vec![Vec::new(); n_units];
    match activations {
        Activations::SparseResidues { codes, rows } => {
            for r in 0..codes.n_rows() {
                let range = codes.row_ptr[r] as usize..codes.row_ptr[r + 1] as usize;
                for (&u, &v) in codes.feature[range.clone()].iter().zip(&codes.value[range]) {
                    if v > 0.0 && (u as usize) < n_units {
                        entries[u as usize].push((rows.protein[r], rows.position[r], v));
                    }
                }
            }
        }
        Activations::DenseResidues { values, rows, .. } => {
            for (r, row) in values.chunks_exact(n_units.max(1)).enumerate() {
                for (u, &v) in row.iter().enumerate() {
                    if v > 0.0 {
                        entries[u].push((rows.protein[r], rows.position[r], v));
                    }
                }
            }
        }
        _ => {
            return Err(DescribeError::input(
                "residue windows need residue-level activations",
                "pass the residue-level codes (delphi describes residue-level units only)",
            ))
        }
    }
    Ok(entries)
}

/// Every unit's windows (see the module documentation). `sequences[p]` is protein `p`'s
/// sequence, in the atlas's protein order.
pub fn residue_windows(
    activations: &Activations,
    sequences: &[&str],
    options: &WindowOptions,
) -> DescribeResult<Vec<UnitWindows>> {
    if options.ctx_len == 0 {
        return Err(DescribeError::input("window length 0", "use ctx_len >= 1"));
    }
    if let Some(p) = sequences.iter().position(|s| !s.is_ascii()) {
        return Err(DescribeError::input(
            format!("the sequence of protein {p} is not one-letter amino-acid codes"),
            "pass the sequences the activations were computed from",
        ));
    }
    let entries = residue_entries(activations)?;
    let mut all = Vec::with_capacity(entries.len());
    for (unit, mut unit_entries) in entries.into_iter().enumerate() {
        unit_entries.sort_unstable_by_key(|e| (e.0, e.1));
        let mut active = Vec::new();
        let mut fired = vec![false; sequences.len()];
        let mut i = 0;
        while i < unit_entries.len() {
            let protein = unit_entries[i].0;
            let mut j = i;
            while j < unit_entries.len() && unit_entries[j].0 == protein {
                j += 1;
            }
            let sequence = sequences.get(protein as usize).ok_or_else(|| {
                DescribeError::input(
                    format!("residue rows name protein {protein} of {}", sequences.len()),
                    "pass one sequence per atlas protein, in the atlas's order",
                )
            })?;
            fired[protein as usize] = true;
            protein_windows(
                protein,
                sequence,
                &unit_entries[i..j],
                options.ctx_len,
                &mut active,
            )?;
            i = j;
        }
        active.sort_by(|a, b| a.max().total_cmp(&b.max()).then(a.protein.cmp(&b.protein)));
        if active.len() > options.max_active {
            let n = active.len();
            let keep: Vec<usize> = (0..options.max_active)
                .map(|k| k * n / options.max_active)
                .collect();
            active = keep.into_iter().map(|k| active[k].clone()).collect();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(unit as u64 + 1);
        let quiet: Vec<u32> = (0..sequences.len() as u32)
            .filter(|&p| !fired[p as usize] && !sequences[p as usize].is_empty())
            .collect();
        let inactive = quiet
            .choose_multiple(&mut rng, options.n_inactive)
            .map(|&p| {
                let sequence = sequences[p as usize];
                let len = options.ctx_len.min(sequence.len());
                let start = rng.random_range(0..=sequence.len() - len);
                Window {
                    protein: p,
                    start: start as u32,
                    residues: sequence[start..start + len].to_string(),
                    activations: vec![0.0; len],
                }
            })
            .collect();
        all.push(UnitWindows { active, inactive });
    }
    Ok(all)
}

/// Non-overlapping windows of one protein, the strongest uncovered residue first.
fn protein_windows(
    protein: u32,
    sequence: &str,
    entries: &[(u32, u32, f32)],
    ctx_len: usize,
    out: &mut Vec<Window>,
) -> DescribeResult<()> {
    let length = sequence.len();
    if let Some(bad) = entries.iter().find(|e| e.1 as usize >= length) {
        return Err(DescribeError::input(
            format!(
                "protein {protein}: residue {} is active but the sequence has {length} residues",
                bad.1
            ),
            "pass the sequences the activations were computed from",
        ));
    }
    let len = ctx_len.min(length);
    let anchor = ctx_len - ctx_len / 4;
    let mut order: Vec<&(u32, u32, f32)> = entries.iter().collect();
    order.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for &&(_, position, _) in &order {
        let position = position as usize;
        if taken.iter().any(|&(s, e)| position >= s && position < e) {
            continue;
        }
        let start = position.saturating_sub(anchor).min(length - len);
        let end = start + len;
        if taken.iter().any(|&(s, e)| start < e && s < end) {
            continue;
        }
        taken.push((start, end));
        let mut activations = vec![0.0f32; len];
        for &(_, p, v) in entries {
            let p = p as usize;
            if p >= start && p < end {
                activations[p - start] = v;
            }
        }
        out.push(Window {
            protein,
            start: start as u32,
            residues: sequence[start..end].to_string(),
            activations,
        });
    }
    Ok(())
}

/// Computes every unit's windows ([`residue_windows`]) and writes them into an existing atlas
/// (units `unit_offset + index`, as `analyze` numbers them), replacing earlier windows of those
/// units, in one transaction. Call it at analyze time with the residue-level activations
/// `analyze` read and the proteins' sequences. Returns the number of units written.
pub fn write_residue_windows(
    atlas: &Path,
    kind: UnitKind,
    unit_offset: u32,
    activations: &Activations,
    sequences: &[&str],
    options: &WindowOptions,
) -> DescribeResult<usize> {
    activations
        .validate(sequences.len(), kind.as_str())
        .map_err(|e| DescribeError::input(e.to_string(), "pass the activations analyze read"))?;
    let windows = residue_windows(activations, sequences, options)?;
    let mut connection = open_atlas(atlas)?;
    let action = "writing residue_windows";
    let sql = |e| DescribeError::sqlite(atlas, action)(e);
    connection.execute_batch(TABLE).map_err(sql)?;
    let transaction = connection.transaction().map_err(sql)?;
    {
        let mut delete = transaction
            .prepare("DELETE FROM residue_windows WHERE unit = ?1")
            .map_err(sql)?;
        let mut insert = transaction
            .prepare(
                "INSERT INTO residue_windows (unit, active, protein, start, residues, \
                 activations) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql)?;
        for (u, unit) in windows.iter().enumerate() {
            let id = unit_offset + u as u32;
            delete.execute([id]).map_err(sql)?;
            for (active, list) in [(true, &unit.active), (false, &unit.inactive)] {
                for w in list {
                    let blob: Vec<u8> =
                        w.activations.iter().flat_map(|v| v.to_le_bytes()).collect();
                    insert
                        .execute(params![id, active, w.protein, w.start, w.residues, blob])
                        .map_err(sql)?;
                }
            }
        }
    }
    transaction.commit().map_err(sql)?;
    Ok(windows.len())
}

/// One unit's windows from the atlas (active ones sorted by their maximum); `None` when the
/// atlas has no windows for it.
pub fn read_residue_windows(
    connection: &Connection,
    unit: u32,
    path: &Path,
) -> DescribeResult<Option<UnitWindows>> {
    let action = format!("reading the residue windows of unit {unit}");
    let sql = |e| DescribeError::sqlite(path, &action)(e);
    connection.execute_batch(TABLE).map_err(sql)?;
    let mut statement = connection
        .prepare(
            "SELECT active, protein, start, residues, activations FROM residue_windows \
             WHERE unit = ?1 ORDER BY rowid",
        )
        .map_err(sql)?;
    let rows = statement
        .query_map([unit], |row| {
            let blob: Vec<u8> = row.get(4)?;
            Ok((
                row.get::<_, bool>(0)?,
                Window {
                    protein: row.get(1)?,
                    start: row.get(2)?,
                    residues: row.get(3)?,
                    activations: blob
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                },
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut windows = UnitWindows::default();
    for (active, window) in rows {
        if window.activations.len() != window.residues.len() {
            return Err(DescribeError::input(
                format!(
                    "{}: a residue window of unit {unit} has {} residues and {} activations",
                    path.display(),
                    window.residues.len(),
                    window.activations.len()
                ),
                "rewrite the windows with write_residue_windows",
            ));
        }
        if active {
            windows.active.push(window);
        } else {
            windows.inactive.push(window);
        }
    }
    windows
        .active
        .sort_by(|a, b| a.max().total_cmp(&b.max()).then(a.protein.cmp(&b.protein)));
    Ok(Some(windows))
}

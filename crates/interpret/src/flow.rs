//! Flow between layers: which features of one dictionary continue, or feed, which features of
//! another.
//!
//! - [`match_decoders`]: for dictionaries of adjacent layers, each target feature's best
//!   source feature by cosine of decoder rows (the direction each feature writes), with a null
//!   from random directions: the best cosine that a random Gaussian direction reaches against
//!   the same source rows. `p` is the share of null directions at or above the observed
//!   cosine (add-one), so a match with p ≤ 0.001 over 1,000 null directions is beyond chance.
//! - [`attribute`]: for a transcoder (source = transcoder latents writing into layer L+1, or an
//!   SAE at layer L feeding a transcoder) the direct weight of source feature `s` on target
//!   feature `t`, `decoder_s · encoder_t`: how much `t`'s pre-activation moves per unit of `s`.
//!   Each target keeps its strongest sources by magnitude.
//!
//! Links go into an atlas's `flow_links` table ([`write_flow_links`]); the web atlas draws the
//! strongest ones.
//!
//! ```
//! use plmscope_interpret::flow::{match_decoders, Directions, MatchOptions};
//! let source = Directions::new(2, 3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
//! let target = Directions::new(1, 3, vec![0.0, 0.9, 0.1]).unwrap();
//! let found = match_decoders(&source, &target, &MatchOptions::default());
//! assert_eq!(found.links[0].source, 1);
//! ```

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::error::{AnalysisError, AnalysisResult};

/// Row-major unit directions: row `i` (length `dim`) is unit `i`'s vector.
#[derive(Clone, Debug)]
pub struct Directions {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Directions {
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> AnalysisResult<Self> {
        if data.len() != rows * dim {
            return Err(AnalysisError::input(
                format!("{} values for {rows} directions of {dim}", data.len()),
                "give rows x dim values, row-major",
            ));
        }
        Ok(Directions { rows, dim, data })
    }

    /// The transpose of a `[dim, rows]` row-major matrix (e.g. SAELens' `W_enc` [d_in, d_sae]):
    /// one direction per column.
    pub fn from_columns(dim: usize, cols: usize, data: &[f32]) -> AnalysisResult<Self> {
        if data.len() != dim * cols {
            return Err(AnalysisError::input(
                format!("{} values for a {dim} x {cols} matrix", data.len()),
                "give dim x cols values, row-major",
            ));
        }
        let mut out = vec![0f32; data.len()];
        for i in 0..dim {
            for j in 0..cols {
                out[j * dim + i] = data[i * cols + j];
            }
        }
        Directions::new(cols, dim, out)
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Each row scaled to unit length (zero rows stay zero).
    pub fn normalised(&self) -> Directions {
        let mut data = self.data.clone();
        data.par_chunks_mut(self.dim.max(1)).for_each(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        });
        Directions { data, ..*self }
    }
}

/// How two units are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Cosine of decoder rows (adjacent-layer dictionaries).
    DecoderCosine,
    /// Decoder of the source · encoder of the target (transcoder paths).
    Transcoder,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::DecoderCosine => "decoder_cosine",
            LinkKind::Transcoder => "transcoder",
        }
    }
}

/// One link: source unit → target unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowLink {
    pub source: u32,
    pub target: u32,
    pub weight: f64,
    /// Null p-value (decoder matches only).
    pub p: Option<f64>,
    pub kind: LinkKind,
}

/// Choices of [`match_decoders`].
#[derive(Clone, Copy, Debug)]
pub struct MatchOptions {
    pub null_directions: usize,
    pub seed: u64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            null_directions: 1000,
            seed: 0,
        }
    }
}

/// Best matches and the null they were judged against.
#[derive(Clone, Debug, Serialize)]
pub struct DecoderMatch {
    /// One link per target unit with a nonzero decoder row: its best source.
    pub links: Vec<FlowLink>,
    /// The null's 99th and 99.9th percentiles of the best cosine.
    pub null_q99: f64,
    pub null_q999: f64,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

/// The best source row by dot product for a unit vector `v`: (index, value).
fn best(source: &Directions, v: &[f32]) -> (u32, f64) {
    (0..source.rows)
        .map(|s| (s as u32, dot(source.row(s), v)))
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// Each target row's best source row by cosine, with a random-direction null.
pub fn match_decoders(
    source: &Directions,
    target: &Directions,
    options: &MatchOptions,
) -> DecoderMatch {
    let source = source.normalised();
    let target = target.normalised();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let random: Vec<Vec<f32>> = (0..options.null_directions)
        .map(|_| {
            let v: Vec<f32> = (0..source.dim).map(|_| gaussian(&mut rng)).collect();
            let n = v
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            v.into_iter().map(|x| x / n).collect()
        })
        .collect();
    let mut null: Vec<f64> = random.par_iter().map(|v| best(&source, v).1).collect();
    null.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> f64 {
        if null.is_empty() {
            return f64::NAN;
        }
        null[((q * null.len() as f64).ceil() as usize).clamp(1, null.len()) - 1]
    };
    let links = (0..target.rows)
        .into_par_iter()
        .filter(|&t| target.row(t).iter().any(|v| *v != 0.0))
        .map(|t| {
            let (s, cosine) = best(&source, target.row(t));
            let above = null.len() - null.partition_point(|&x| x < cosine);
            FlowLink {
                source: s,
                target: t as u32,
                weight: cosine,
                p: Some((1 + above) as f64 / (1 + null.len()) as f64),
                kind: LinkKind::DecoderCosine,
            }
        })
        .collect();
    DecoderMatch {
        links,
        null_q99: quantile(0.99),
        null_q999: quantile(0.999),
    }
}

/// For each target (rows of `target_encoder`, one encoder direction per target unit), the `top`
/// sources (rows of `source_decoder`) with the largest `|decoder_s · encoder_t|`.
pub fn attribute(
    source_decoder: &Directions,
    target_encoder: &Directions,
    top: usize,
) -> AnalysisResult<Vec<FlowLink>> {
    if source_decoder.dim != target_encoder.dim {
        return Err(AnalysisError::input(
            format!(
                "source decoder writes {} dimensions, target encoder reads {}",
                source_decoder.dim, target_encoder.dim
            ),
            "pair a dictionary whose output space is the other's input space",
        ));
    }
    Ok((0..target_encoder.rows)
        .into_par_iter()
        .flat_map_iter(|t| {
            let e = target_encoder.row(t);
            let mut w: Vec<(u32, f64)> = (0..source_decoder.rows)
                .map(|s| (s as u32, dot(source_decoder.row(s), e)))
                .filter(|(_, w)| *w != 0.0)
                .collect();
            w.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
            w.truncate(top);
            w.into_iter().map(move |(s, weight)| FlowLink {
                source: s,
                target: t as u32,
                weight,
                p: None,
                kind: LinkKind::Transcoder,
            })
        })
        .collect())
}

/// Table of links, created when missing. Units are feature indices of each side's dictionary
/// (`units.kind = 'feature'`, `"index"`); atlases are named as given to the writer.
pub const CREATE_FLOW_TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS flow_links (
    source_atlas TEXT NOT NULL,
    source_unit  INTEGER NOT NULL,
    target_atlas TEXT NOT NULL,
    target_unit  INTEGER NOT NULL,
    weight       REAL NOT NULL,
    p            REAL,
    kind         TEXT NOT NULL CHECK (kind IN ('decoder_cosine', 'transcoder'))
);
CREATE INDEX IF NOT EXISTS flow_links_target ON flow_links (target_atlas, target_unit);
CREATE INDEX IF NOT EXISTS flow_links_source ON flow_links (source_atlas, source_unit);
"#;

/// Writes `links` into `atlas`, replacing earlier links of the same pair and kind.
pub fn write_flow_links(
    atlas: &Path,
    source_atlas: &str,
    target_atlas: &str,
    links: &[FlowLink],
) -> AnalysisResult<()> {
    let mut db = Connection::open(atlas).map_err(AnalysisError::sqlite(atlas, "open"))?;
    let tx = db
        .transaction()
        .map_err(AnalysisError::sqlite(atlas, "begin"))?;
    tx.execute_batch(CREATE_FLOW_TABLE)
        .map_err(AnalysisError::sqlite(atlas, "create flow_links"))?;
    let mut kinds: Vec<&str> = links.iter().map(|l| l.kind.as_str()).collect();
    kinds.dedup();
    for kind in kinds {
        tx.execute(
            "DELETE FROM flow_links WHERE source_atlas = ?1 AND target_atlas = ?2 AND kind = ?3",
            params![source_atlas, target_atlas, kind],
        )
        .map_err(AnalysisError::sqlite(atlas, "replace flow links"))?;
    }
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO flow_links (source_atlas, source_unit, target_atlas, target_unit, \
                 weight, p, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(AnalysisError::sqlite(atlas, "prepare flow links"))?;
        for l in links {
            insert
                .execute(params![
                    source_atlas,
                    l.source,
                    target_atlas,
                    l.target,
                    l.weight,
                    l.p,
                    l.kind.as_str()
                ])
                .map_err(AnalysisError::sqlite(atlas, "write flow links"))?;
        }
    }
    tx.commit().map_err(AnalysisError::sqlite(atlas, "commit"))
}

//! The most similar features by decoder cosine: for each latent, the `k` others whose decoder
//! rows (`W_dec[j]`, the direction a feature writes) point most nearly the same way.
//!
//! [`decoder_neighbours`] computes them from a dictionary; [`write_similar_units`] stores them in
//! an atlas as `similar_units (unit, rank, other, cosine)` (feature unit ids, `unit = index`
//! as `meta.feature_unit_ids` gives them). `analyze` writes the table when the code set's
//! dictionary can be found; `serve` reads it, or computes it from `--sae`.
//!
//! ```
//! use plmscope_interpret::similar::{decoder_neighbours, write_similar_units};
//! // Three latents in 2-d: 0 and 1 point almost the same way, 2 is orthogonal to both.
//! let w_dec = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0];
//! let neighbours = decoder_neighbours(&w_dec, 3, 1);
//! assert_eq!(neighbours[0][0].other, 1);
//! let atlas = rusqlite::Connection::open_in_memory().unwrap();
//! write_similar_units(&atlas, &neighbours, 0).unwrap();
//! let n: i64 = atlas.query_row("SELECT count(*) FROM similar_units", [], |r| r.get(0)).unwrap();
//! assert_eq!(n, 3);
//! ```

use rusqlite::{params, Connection};

/// One neighbour of a latent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// The other latent's index.
    pub other: u32,
    /// Cosine of the two decoder rows.
    pub cosine: f32,
}

/// The `k` nearest latents of every latent by decoder cosine (`w_dec` is `[d_sae, d]`
/// row-major), best first; zero rows have no neighbours. Exact: every pair is scored
/// (10,240 × 320 takes a few seconds on 2 cores).
pub fn decoder_neighbours(w_dec: &[f32], d_sae: usize, k: usize) -> Vec<Vec<Neighbour>> {
    decoder_neighbours_of(w_dec, d_sae, k, 0..d_sae)
}

/// [`decoder_neighbours`] of the latents in `latents` only (still against all `d_sae`), in
/// order: what one part of a sharded `analyze` stores for its own features.
pub fn decoder_neighbours_of(
    w_dec: &[f32],
    d_sae: usize,
    k: usize,
    latents: std::ops::Range<usize>,
) -> Vec<Vec<Neighbour>> {
    let latents = latents.start.min(d_sae)..latents.end.min(d_sae);
    if d_sae == 0 || !w_dec.len().is_multiple_of(d_sae) {
        return vec![Vec::new(); latents.len()];
    }
    let d = w_dec.len() / d_sae;
    let mut unit = w_dec.to_vec();
    let mut zero = vec![false; d_sae];
    for (row, z) in unit.chunks_exact_mut(d).zip(zero.iter_mut()) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            row.iter_mut().for_each(|v| *v /= norm);
        } else {
            *z = true;
        }
    }
    let unit = &unit;
    let zero = &zero;
    let nearest = |i: usize| -> Vec<Neighbour> {
        if zero[i] {
            return Vec::new();
        }
        let a = &unit[i * d..(i + 1) * d];
        let mut best: Vec<Neighbour> = Vec::with_capacity(k + 1);
        for (j, b) in unit.chunks_exact(d).enumerate() {
            if j == i || zero[j] {
                continue;
            }
            let cosine: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            if best.len() < k || cosine > best[best.len() - 1].cosine {
                let at = best.partition_point(|n| n.cosine >= cosine);
                best.insert(
                    at,
                    Neighbour {
                        other: j as u32,
                        cosine,
                    },
                );
                best.truncate(k);
            }
        }
        best
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(latents.len());
    let chunk = latents.len().div_ceil(threads.max(1));
    let end = latents.end;
    std::thread::scope(|scope| {
        let handles: Vec<_> = latents
            .step_by(chunk.max(1))
            .map(|start| {
                scope.spawn(move || {
                    (start..(start + chunk).min(end))
                        .map(nearest)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Writes (replacing) the `similar_units` table: `neighbours[i]` are the neighbours of latent
/// `first_latent + i` ([`decoder_neighbours_of`] a range starting there; 0 for all latents).
/// Feature units are their latent indices (features come first in an atlas).
pub fn write_similar_units(
    connection: &Connection,
    neighbours: &[Vec<Neighbour>],
    first_latent: usize,
) -> rusqlite::Result<()> {
    connection.execute_batch(
        "DROP TABLE IF EXISTS similar_units;
         CREATE TABLE similar_units (unit INTEGER NOT NULL, rank INTEGER NOT NULL,
             other INTEGER NOT NULL, cosine REAL NOT NULL);",
    )?;
    let tx = connection.unchecked_transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO similar_units VALUES (?1, ?2, ?3, ?4)")?;
        for (i, list) in neighbours.iter().enumerate() {
            for (rank, n) in list.iter().enumerate() {
                insert.execute(params![
                    (first_latent + i) as i64,
                    rank as i64,
                    n.other as i64,
                    n.cosine as f64
                ])?;
            }
        }
    }
    tx.execute_batch("CREATE INDEX similar_units_unit ON similar_units (unit);")?;
    tx.commit()
}

/// [`write_similar_units`] into the atlas at `path`.
pub fn store_similar_units(
    path: &std::path::Path,
    neighbours: &[Vec<Neighbour>],
    first_latent: usize,
) -> rusqlite::Result<()> {
    write_similar_units(&Connection::open(path)?, neighbours, first_latent)
}

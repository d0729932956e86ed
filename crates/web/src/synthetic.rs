//! A synthetic atlas with the real schema ([`plmscope_interpret::atlas::schema`]) and realistic
//! row counts, for the latency benchmark and tests that need many units. Deterministic.

use std::path::Path;

use rusqlite::{params, Connection};

/// Sizes of a synthetic atlas.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticSize {
    pub features: usize,
    pub neurons: usize,
    pub proteins: usize,
    /// Stored examples per unit (top; as many again quantile and random).
    pub examples: usize,
    /// Stored enrichment rows per unit.
    pub enrichment: usize,
}

impl Default for SyntheticSize {
    fn default() -> Self {
        SyntheticSize {
            features: 10_000,
            neurons: 320,
            proteins: 2_000,
            examples: 20,
            enrichment: 8,
        }
    }
}

/// Writes a synthetic residue-level atlas at `path` (which must not exist).
pub fn write_synthetic_atlas(path: &Path, size: SyntheticSize) -> rusqlite::Result<()> {
    let mut c = Connection::open(path)?;
    c.execute_batch(plmscope_interpret::atlas::schema::CREATE_TABLES)?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let tx = c.transaction()?;
    let units = size.features + size.neurons;
    {
        let meta = [
            ("format", "plmscope.atlas".to_string()),
            ("feature_level", "residue".into()),
            ("alpha", "0.05".into()),
            ("proteins", size.proteins.to_string()),
            ("feature_units", size.features.to_string()),
            ("neuron_units", size.neurons.to_string()),
            ("feature_unit_ids", "units.unit = 0 + index".into()),
            (
                "neuron_unit_ids",
                format!("units.unit = {} + index", size.features),
            ),
        ];
        for (k, v) in meta {
            tx.execute("INSERT INTO meta VALUES (?1, ?2)", params![k, v])?;
        }
        let mut st = tx.prepare("INSERT INTO proteins VALUES (?1, ?2, ?3, NULL, ?4, 1)")?;
        for p in 0..size.proteins {
            st.execute(params![
                p as i64,
                format!("P{p:05}"),
                50 + (p % 400) as i64,
                format!("PF{:05}", p % 300)
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO go_terms VALUES (?1, ?2, ?3)")?;
        for t in 0..3000 {
            let ns = ["BP", "MF", "CC"][t % 3];
            st.execute(params![
                format!("GO:{:07}", t),
                format!("synthetic process {t} of kind {}", t % 17),
                ns
            ])?;
        }
        let mut unit_st =
            tx.prepare(r#"INSERT INTO units VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#)?;
        let mut ex = tx.prepare("INSERT INTO examples VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        let mut en = tx.prepare(
            "INSERT INTO enrichment VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut co =
            tx.prepare("INSERT INTO concepts VALUES (?1, ?2, 0.5, ?3, ?4, ?5, ?5, ?5, ?5)")?;
        let mut pa =
            tx.prepare("INSERT INTO unit_patterns VALUES (?1, ?2, 12, ?3, 1, 1, 1, 0.5, NULL)")?;
        let mut de = tx.prepare(
            "INSERT INTO descriptions VALUES (?1, 'synthetic', 'none', ?2, '', ?3, ?3, ?3)",
        )?;
        for u in 0..units {
            let (kind, index) = if u < size.features {
                ("feature", u)
            } else {
                ("neuron", u - size.features)
            };
            let density = next() * 0.1;
            let max = 1.0 + 4.0 * next();
            let dead = (next() < 0.05) as i64;
            unit_st.execute(params![
                u as i64,
                kind,
                index as i64,
                density,
                max,
                max * 0.2,
                dead,
                (density * size.proteins as f64) as i64,
                20
            ])?;
            for r in 0..size.examples {
                let p = ((next() * size.proteins as f64) as usize).min(size.proteins - 1) as i64;
                let a = max * (1.0 - r as f64 / size.examples as f64);
                ex.execute(params![
                    u as i64,
                    p,
                    a,
                    (next() * 50.0) as i64,
                    r as i64,
                    "top"
                ])?;
                let p = ((next() * size.proteins as f64) as usize).min(size.proteins - 1) as i64;
                ex.execute(params![
                    u as i64,
                    p,
                    max * next(),
                    (next() * 50.0) as i64,
                    (r / 2) as i64,
                    "quantile"
                ])?;
                let p = ((next() * size.proteins as f64) as usize).min(size.proteins - 1) as i64;
                ex.execute(params![
                    u as i64,
                    p,
                    0.0,
                    Option::<i64>::None,
                    r as i64,
                    "random"
                ])?;
            }
            for e in 0..size.enrichment {
                let q = next().powi(6);
                let (annotation, term) = if e == 0 {
                    ("pfam", format!("PF{:05}", (next() * 300.0) as usize))
                } else {
                    ("go", format!("GO:{:07}", (next() * 3000.0) as usize))
                };
                en.execute(params![
                    u as i64,
                    annotation,
                    term,
                    5,
                    20,
                    40,
                    2000,
                    12.5,
                    q / 10.0,
                    q,
                    (q / 10.0).max(1e-300).ln(),
                    q.max(1e-300).ln()
                ])?;
            }
            co.execute(params![
                u as i64,
                format!("tmbed:concept{}", u % 4),
                next(),
                next(),
                next()
            ])?;
            pa.execute(params![
                u as i64,
                ["point", "short_motif", "whole", "periodic"][u % 4],
                next()
            ])?;
            de.execute(params![
                u as i64,
                format!("Synthetic description of unit {u}: binds motif {}", u % 97),
                next()
            ])?;
        }
    }
    tx.commit()?;
    c.execute_batch(plmscope_interpret::atlas::schema::CREATE_INDICES)?;
    c.execute_batch("ANALYZE")?;
    Ok(())
}

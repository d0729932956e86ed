//! The in-memory index built at startup: one summary row per unit (best GO term, Pfam, concept,
//! family, pattern class, description score) so the features list sorts and filters 10,000
//! units in a few milliseconds, the proteins each unit tops, and an FTS5 table over GO ids and
//! names, Pfam ids, protein accessions and description text. The atlases stay read-only; this
//! database lives in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::atlas::Atlas;
use crate::error::{WebError, WebResult};

const SCHEMA: &str = r#"
CREATE TABLE units (
    atlas INTEGER NOT NULL, unit INTEGER NOT NULL, kind TEXT NOT NULL, idx INTEGER NOT NULL,
    density REAL NOT NULL, max REAL NOT NULL, dead INTEGER NOT NULL, active INTEGER NOT NULL,
    go TEXT, go_name TEXT, go_q REAL, go_significant INTEGER NOT NULL DEFAULT 0,
    pfam TEXT, pfam_q REAL, concept TEXT, concept_f1 REAL, family TEXT, family_f1 REAL,
    pattern TEXT, description TEXT, score REAL,
    PRIMARY KEY (atlas, unit)
);
CREATE TABLE tops (atlas INTEGER NOT NULL, protein INTEGER NOT NULL, unit INTEGER NOT NULL,
    activation REAL NOT NULL, position INTEGER);
CREATE TABLE proteins (atlas INTEGER NOT NULL, protein INTEGER NOT NULL, accession TEXT NOT NULL,
    length INTEGER, families TEXT, name TEXT, PRIMARY KEY (atlas, protein));
CREATE VIRTUAL TABLE search USING fts5(atlas UNINDEXED, target UNINDEXED, kind UNINDEXED, text);
"#;

const INDICES: &str = r#"
CREATE INDEX units_density ON units (atlas, density);
CREATE INDEX units_go_q ON units (atlas, go_q);
CREATE INDEX units_concept ON units (atlas, concept_f1);
CREATE INDEX units_score ON units (atlas, score);
CREATE INDEX tops_protein ON tops (atlas, protein);
CREATE INDEX proteins_accession ON proteins (atlas, accession);
"#;

/// A protein as the index knows it.
pub struct ProteinEntry {
    pub index: i64,
    pub length: Option<i64>,
    /// Pfam families, `;`-separated.
    pub families: String,
    /// Name and gene (protein_info), when the atlas has them.
    pub name: String,
}

/// The startup index (one in-memory SQLite database, behind a mutex: queries take ~1 ms).
pub struct Index {
    connection: Mutex<Connection>,
}

#[derive(Default)]
struct Summary {
    go: Option<(String, String, f64)>,
    go_significant: i64,
    pfam: Option<(String, f64)>,
    concept: Option<(String, f64)>,
    family: Option<(String, f64)>,
    pattern: Option<String>,
    description: Option<(String, Option<f64>)>,
    text: String,
}

fn rows<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = c.prepare(sql)?;
    let out = statement.query_map(p, f)?.collect();
    out
}

impl Index {
    /// Builds the index over every atlas.
    pub fn build(atlases: &[Atlas]) -> WebResult<Index> {
        let mut memory = Connection::open_in_memory()?;
        memory.execute_batch(SCHEMA)?;
        for atlas in atlases {
            let tx = memory.transaction()?;
            atlas
                .with(|c| Self::load(atlas, c, &tx))
                .map_err(|e| WebError::input(&atlas.path, format!("building the index: {e}")))?;
            tx.commit()?;
        }
        memory.execute_batch(INDICES)?;
        memory.execute_batch("ANALYZE")?;
        Ok(Index {
            connection: Mutex::new(memory),
        })
    }

    fn load(atlas: &Atlas, c: &Connection, out: &Connection) -> WebResult<()> {
        let mut s: HashMap<i64, Summary> = HashMap::new();
        // Every stored GO row (analyze stores p < 0.05) is searchable; the list shows its q.
        for (unit, term, name, q) in rows(
            c,
            "SELECT e.unit, e.term, COALESCE(g.name, ''), e.q FROM enrichment e
             LEFT JOIN go_terms g ON g.id = e.term WHERE e.annotation = 'go'",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                ))
            },
        )? {
            let e = s.entry(unit).or_default();
            if q < atlas.alpha {
                e.go_significant += 1;
            }
            e.text.push_str(&format!("{term} {name} "));
            if !matches!(&e.go, Some(g) if g.2 <= q) {
                e.go = Some((term, name, q));
            }
        }
        for (unit, term, q) in rows(
            c,
            "SELECT unit, term, q FROM enrichment WHERE annotation = 'pfam' ORDER BY q DESC",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            },
        )? {
            let e = s.entry(unit).or_default();
            e.text.push_str(&format!("{term} "));
            e.pfam = Some((term, q));
        }
        for (unit, concept, f1) in rows(
            c,
            "SELECT unit, concept, MAX(f1) FROM concepts GROUP BY unit",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            },
        )? {
            s.entry(unit).or_default().concept = Some((concept, f1));
        }
        for (unit, family, f1) in rows(
            c,
            "SELECT unit, family, MAX(f1) FROM family_specificity GROUP BY unit",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            },
        )? {
            s.entry(unit).or_default().family = Some((family, f1));
        }
        for (unit, class) in rows(c, "SELECT unit, class FROM unit_patterns", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })? {
            s.entry(unit).or_default().pattern = Some(class);
        }
        if atlas.has_descriptions {
            for (unit, text, score) in rows(
                c,
                "SELECT unit, text, pearson FROM descriptions ORDER BY pearson IS NULL DESC, pearson",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<f64>>(2)?)),
            )? {
                let e = s.entry(unit).or_default();
                e.text.push_str(&format!("{text} "));
                e.description = Some((text, score));
            }
        }
        let mut insert = out.prepare(
            "INSERT INTO units VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
             ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        let mut fts = out.prepare("INSERT INTO search VALUES (?1, ?2, 'unit', ?3)")?;
        let units = rows(
            c,
            r#"SELECT unit, kind, "index", density, max, dead, active_proteins FROM units"#,
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )?;
        let empty = Summary::default();
        for (unit, kind, idx, density, max, dead, active) in units {
            let e = s.get(&unit).unwrap_or(&empty);
            insert.execute(params![
                atlas.id,
                unit,
                kind,
                idx,
                density,
                max,
                dead,
                active,
                e.go.as_ref().map(|g| &g.0),
                e.go.as_ref().map(|g| &g.1),
                e.go.as_ref().map(|g| g.2),
                e.go_significant,
                e.pfam.as_ref().map(|g| &g.0),
                e.pfam.as_ref().map(|g| g.1),
                e.concept.as_ref().map(|g| &g.0),
                e.concept.as_ref().map(|g| g.1),
                e.family.as_ref().map(|g| &g.0),
                e.family.as_ref().map(|g| g.1),
                e.pattern,
                e.description.as_ref().map(|g| &g.0),
                e.description.as_ref().and_then(|g| g.1),
            ])?;
            if !e.text.is_empty() {
                fts.execute(params![atlas.id, unit, e.text])?;
            }
        }
        let names: HashMap<String, String> = if atlas.has_protein_info {
            rows(c, "SELECT accession, COALESCE(name, '') || ' ' || COALESCE(gene, '') FROM protein_info", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .into_iter()
            .collect()
        } else {
            HashMap::new()
        };
        let mut protein = out.prepare("INSERT INTO proteins VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        let mut fts = out.prepare("INSERT INTO search VALUES (?1, ?2, 'protein', ?3)")?;
        for (index, accession, length, families) in rows(
            c,
            "SELECT protein, accession, length, COALESCE(families, '') FROM proteins",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )? {
            let name = names.get(&accession).cloned().unwrap_or_default();
            protein.execute(params![atlas.id, index, accession, length, families, name])?;
            let text = format!("{accession} {} {name}", families.replace(';', " "));
            fts.execute(params![atlas.id, index, text])?;
        }
        let mut top = out.prepare("INSERT INTO tops VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for (p, unit, a, position) in rows(
            c,
            "SELECT protein, unit, activation, position FROM examples WHERE kind = 'top' AND activation > 0",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?, r.get::<_, Option<i64>>(3)?)),
        )? {
            top.execute(params![atlas.id, p, unit, a, position])?;
        }
        Ok(())
    }

    /// Runs `f` on the index.
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> WebResult<R>) -> WebResult<R> {
        let c = self
            .connection
            .lock()
            .map_err(|_| WebError::Internal("index poisoned".into()))?;
        f(&c)
    }

    /// The protein index of an accession in an atlas.
    pub fn protein(&self, atlas: usize, accession: &str) -> WebResult<Option<ProteinEntry>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT protein, length, families, name FROM proteins WHERE atlas = ?1 AND accession = ?2",
                params![atlas, accession],
                |r| {
                    Ok(ProteinEntry { index: r.get(0)?, length: r.get(1)?, families: r.get(2)?, name: r.get(3)? })
                },
            )
            .optional()?)
        })
    }
}

/// An FTS5 query for free text: each word becomes a quoted phrase (so no input is FTS syntax),
/// all must match, and the last one matches as a prefix. `None` when no word is left.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '"')
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(8)
        .map(|w| format!("\"{w}\""))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}*", words.join(" ")))
}

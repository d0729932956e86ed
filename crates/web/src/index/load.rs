//! Reading one atlas into the index: a summary per unit from the analysis tables, the unit
//! rows, the proteins, and each protein's top examples; units and proteins also go to the word
//! index.

use std::collections::HashMap;

use rusqlite::Connection;

use super::text::{Doc, TextIndexBuilder};
use super::units::{sorted_orders, UnitRow};
use super::{AtlasIndex, ProteinEntry, Top};
use crate::atlas::Atlas;
use crate::error::WebResult;

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

/// The atlas's part of the index.
pub(super) fn atlas(
    atlas: &Atlas,
    c: &Connection,
    text: &mut TextIndexBuilder,
) -> WebResult<AtlasIndex> {
    let units = unit_rows(atlas, c, summaries(atlas, c)?, text)?;
    let (proteins, row_of_accession) = proteins(atlas, c, text)?;
    let row_of_unit = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.unit, i as u32))
        .collect();
    Ok(AtlasIndex {
        orders: sorted_orders(&units),
        units,
        row_of_unit,
        proteins,
        row_of_accession,
        tops: tops(c)?,
    })
}

/// What the analysis tables say of each unit, and its searchable text.
fn summaries(atlas: &Atlas, c: &Connection) -> WebResult<HashMap<i64, Summary>> {
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
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                ))
            },
        )? {
            let e = s.entry(unit).or_default();
            e.text.push_str(&format!("{text} "));
            e.description = Some((text, score));
        }
    }
    Ok(s)
}

/// One row per unit, in the atlas's order.
fn unit_rows(
    atlas: &Atlas,
    c: &Connection,
    mut s: HashMap<i64, Summary>,
    text: &mut TextIndexBuilder,
) -> WebResult<Vec<UnitRow>> {
    let units = rows(
        c,
        r#"SELECT unit, kind, "index", density, max, dead FROM units"#,
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        },
    )?;
    let mut out = Vec::with_capacity(units.len());
    for (unit, kind, idx, density, max, dead) in units {
        let e = s.remove(&unit).unwrap_or_default();
        if !e.text.is_empty() {
            let row = out.len() as u32;
            text.add(
                Doc::Unit {
                    atlas: atlas.id as u32,
                    row,
                },
                &e.text,
            )?;
        }
        let (go, go_name, go_q) = match e.go {
            Some((term, name, q)) => (Some(term), Some(name), Some(q)),
            None => (None, None, None),
        };
        let (description, score) = match e.description {
            Some((text, score)) => (Some(text), score),
            None => (None, None),
        };
        out.push(UnitRow {
            atlas: atlas.id,
            unit,
            kind,
            idx,
            density,
            max,
            dead: dead != 0,
            go,
            go_name,
            go_q,
            go_significant: e.go_significant,
            pfam_q: e.pfam.as_ref().map(|p| p.1),
            pfam: e.pfam.map(|p| p.0),
            concept_f1: e.concept.as_ref().map(|c| c.1),
            concept: e.concept.map(|c| c.0),
            family_f1: e.family.map(|f| f.1),
            pattern: e.pattern,
            description,
            score,
        });
    }
    Ok(out)
}

/// The proteins, in the atlas's order, and the row of each accession.
fn proteins(
    atlas: &Atlas,
    c: &Connection,
    text: &mut TextIndexBuilder,
) -> WebResult<(Vec<ProteinEntry>, HashMap<String, u32>)> {
    let names: HashMap<String, String> = if atlas.has_protein_info {
        rows(
            c,
            "SELECT accession, COALESCE(name, '') || ' ' || COALESCE(gene, '') FROM protein_info",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .into_iter()
        .collect()
    } else {
        HashMap::new()
    };
    let mut proteins = Vec::new();
    let mut row_of_accession = HashMap::new();
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
        let row = proteins.len() as u32;
        let words = format!("{accession} {} {name}", families.replace(';', " "));
        text.add(
            Doc::Protein {
                atlas: atlas.id as u32,
                row,
            },
            &words,
        )?;
        row_of_accession.entry(accession.clone()).or_insert(row);
        proteins.push(ProteinEntry {
            index,
            accession,
            length,
            families,
            name,
        });
    }
    Ok((proteins, row_of_accession))
}

/// Each protein's stored top examples with a positive activation, in the atlas's order.
fn tops(c: &Connection) -> WebResult<HashMap<i64, Vec<Top>>> {
    let mut tops: HashMap<i64, Vec<Top>> = HashMap::new();
    for (protein, unit, activation) in rows(
        c,
        "SELECT protein, unit, activation FROM examples WHERE kind = 'top' AND activation > 0",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        },
    )? {
        tops.entry(protein)
            .or_default()
            .push(Top { unit, activation });
    }
    Ok(tops)
}

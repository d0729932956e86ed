//! Sharded analyses: a part atlas holds the rows of a contiguous range of units, and
//! [`merge_parts`] joins N parts into the atlas one process writes.
//!
//! # What a part holds
//! A part is the atlas of [`super::analyze`] with [`AnalysisOptions::units`] set, trimmed by
//! [`trim_to_units`]:
//! - every table without a `unit` column (`meta`, `proteins`, `go_terms`, `protein_info`, ...)
//!   whole, equal in every part and in a single-process atlas, except the meta keys below;
//! - every table with a `unit` column (`units`, `examples`, `concepts`, `family_specificity`,
//!   `unit_patterns`, `protein_activations`, `residue_windows`, `similar_units`, ...) only for
//!   the part's units;
//! - `enrichment`: **every materialised test** of the part's units (study_count >= 1, whatever
//!   `store_tests` says) with its `ln_p`; its `ln_q` is only the part's own and is recomputed;
//! - `coherence`: empty (it depends on the global q);
//! - concepts, family F1 and pattern classes computed for the part's units only; the per-unit
//!   summaries (`units`, `examples`) and the describe tables (`protein_activations`,
//!   `residue_windows`) are computed for every unit and trimmed; `similar_units` is computed
//!   for the part's features only;
//! - meta `<kind>_<source>_total_tests` (the part's m) and `<kind>_summary` / `summary` (the
//!   part's counts).
//!
//! # What merge recomputes
//! Per kind (feature | neuron) and source (go | pfam), exactly as one process does: m is the
//! sum of the parts' `total_tests`; q is Benjamini-Hochberg (or Bonferroni) over the ln p of every
//! materialised test of all parts with that m (the same function on the same values: BH's
//! result does not depend on the input order, ties included); the rows `store_tests` keeps are
//! written with `p = exp(ln_p)`, `q = exp(ln_q)`. Coherence is computed from the merged tests
//! with the same code and seeds (its random sets depend only on namespace and set size). The
//! enrichment and coherence counts of `<kind>_summary` and `summary` are recomputed; the
//! concept, family F1 and pattern counts are the sums of the parts' (units are disjoint) and
//! the distinct concepts and families are counted on the merged rows; unit counts, dead units
//! and the median study size are every part's (every part summarises every unit: the neurons'
//! matched rule needs the features' median study size).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use plmscope_bio::{GoDag, GoId, Namespace};
use rusqlite::{params, Connection, OpenFlags};

use super::{coherence_stage, AnalysisSummary, CoherenceOptions, KindSummary, StoreTests};
use crate::atlas::{insert_coherence_row, COHERENCE_INSERT};
use crate::enrichment::{
    Background, CorrectionMethod, CorrectionScope, EnrichmentConfig, EnrichmentResult,
    TermSizeFilter, TermTest, UnitEnrichment,
};
use crate::error::{AnalysisError, AnalysisResult};
use crate::multiple_testing::{benjamini_hochberg_ln_q, bonferroni_ln_q};

/// Tables whose rows merge recomputes instead of joining.
const RECOMPUTED: [&str; 2] = ["enrichment", "coherence"];

/// Tables of `db` (schema `schema`) with a `unit` column, in name order.
fn unit_tables(db: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = db.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ))?;
    let names: Vec<String> = statement
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut tables = Vec::new();
    for name in names {
        let mut info = db.prepare(&format!("PRAGMA {schema}.table_info(\"{name}\")"))?;
        let has_unit = info
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|c| c == "unit");
        if has_unit {
            tables.push(name);
        }
    }
    Ok(tables)
}

/// Deletes every row of a per-unit table (one with a `unit` column) whose unit lies outside
/// `units`: what makes an atlas a part (see the module docs).
pub fn trim_to_units(atlas: &Path, units: Range<u32>) -> AnalysisResult<()> {
    let action = "keeping the part's units";
    let db = Connection::open(atlas).map_err(AnalysisError::sqlite(atlas, action))?;
    let tx = db
        .unchecked_transaction()
        .map_err(AnalysisError::sqlite(atlas, action))?;
    for table in unit_tables(&db, "main").map_err(AnalysisError::sqlite(atlas, action))? {
        tx.execute(
            &format!("DELETE FROM \"{table}\" WHERE unit < ?1 OR unit >= ?2"),
            params![units.start, units.end],
        )
        .map_err(AnalysisError::sqlite(atlas, action))?;
    }
    tx.commit().map_err(AnalysisError::sqlite(atlas, action))
}

fn meta(db: &Connection, path: &Path, key: &str) -> AnalysisResult<Option<String>> {
    use rusqlite::OptionalExtension;
    db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(AnalysisError::sqlite(path, "reading meta"))
}

fn parse_meta<T: serde::de::DeserializeOwned>(
    db: &Connection,
    path: &Path,
    key: &str,
) -> AnalysisResult<Option<T>> {
    meta(db, path, key)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| {
                AnalysisError::input(
                    format!("{}: meta {key} = {text:?} ({e})", path.display()),
                    "merge parts written by this version of plmscope",
                )
            })
        })
        .transpose()
}

/// One enrichment row of a part (everything but q).
struct TestRow {
    unit: u32,
    term: String,
    study_count: u32,
    study_size: u32,
    population_count: u32,
    population_size: u32,
    fold: f64,
    ln_p: f64,
}

/// Joins part atlases (in part order) into `out` (see the module docs). `dag` is the Gene
/// Ontology the parts were analysed with, needed when they tested GO with coherence on.
/// `recorded_atlas` is the path `meta.summary` names (what a single process records).
pub fn merge_parts(
    parts: &[PathBuf],
    out: &Path,
    recorded_atlas: &Path,
    dag: Option<&GoDag>,
) -> AnalysisResult<()> {
    let first = parts
        .first()
        .ok_or_else(|| AnalysisError::input("no parts", "give every part atlas"))?;
    if out.exists() {
        std::fs::remove_file(out).map_err(AnalysisError::io(out, "removing a stale merge"))?;
    }
    std::fs::copy(first, out).map_err(AnalysisError::io(out, "copying the first part"))?;
    let action = "merging parts";
    let db = Connection::open(out).map_err(AnalysisError::sqlite(out, action))?;
    let sql = |e| AnalysisError::sqlite(out, action)(e);

    // Per-unit tables: the parts' rows side by side.
    let tables = unit_tables(&db, "main").map_err(sql)?;
    for part in &parts[1..] {
        db.execute("ATTACH DATABASE ?1 AS part", [part.to_string_lossy()])
            .map_err(sql)?;
        let theirs = unit_tables(&db, "part").map_err(sql)?;
        if theirs != tables {
            return Err(AnalysisError::input(
                format!(
                    "{} has per-unit tables {theirs:?}, {} has {tables:?}",
                    part.display(),
                    first.display()
                ),
                "merge parts of one analysis",
            ));
        }
        let tx = db.unchecked_transaction().map_err(sql)?;
        for table in tables.iter().filter(|t| !RECOMPUTED.contains(&t.as_str())) {
            tx.execute_batch(&format!(
                "INSERT INTO main.\"{table}\" SELECT * FROM part.\"{table}\";"
            ))
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        db.execute_batch("DETACH DATABASE part;").map_err(sql)?;
    }

    // Settings, as recorded.
    let alpha: f64 = meta(&db, out, "alpha")?
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| AnalysisError::input("no meta alpha", "merge analyze parts"))?;
    let method: CorrectionMethod = parse_meta(&db, out, "correction_method")?
        .ok_or_else(|| AnalysisError::input("no meta correction_method", "merge analyze parts"))?;
    let store: StoreTests = parse_meta(&db, out, "store_tests")?.unwrap_or_default();
    let options: serde_json::Value = parse_meta(&db, out, "options")?.unwrap_or_default();
    let coherence: Option<CoherenceOptions> =
        serde_json::from_value(options["coherence"].clone()).unwrap_or(None);
    let min_f1: f64 = meta(&db, out, "concept_min_f1")?
        .and_then(|v| v.parse().ok())
        .or_else(|| options["concept_min_f1"].as_f64())
        .unwrap_or(0.5);
    let namespaces: Vec<Namespace> = meta(&db, out, "go_namespaces")?
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| namespace_of(s.trim()))
        .collect();

    // Units: kind and offset of every unit id.
    let mut kind_of: HashMap<u32, (String, u32)> = HashMap::new();
    {
        let mut st = db
            .prepare("SELECT unit, kind, \"index\" FROM units")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (unit, kind, index) = row.map_err(sql)?;
            kind_of.insert(unit, (kind, unit - index));
        }
    }

    // Every part's tests, m and summaries.
    let mut tests: BTreeMap<(String, String), Vec<TestRow>> = BTreeMap::new();
    let mut totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut part_summaries: Vec<BTreeMap<String, KindSummary>> = Vec::new();
    for part in parts {
        let pdb = Connection::open_with_flags(part, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(AnalysisError::sqlite(part, "opening a part"))?;
        let psql = |e| AnalysisError::sqlite(part, "reading a part")(e);
        let mut summaries = BTreeMap::new();
        for kind in ["feature", "neuron"] {
            if let Some(s) = parse_meta::<KindSummary>(&pdb, part, &format!("{kind}_summary"))? {
                summaries.insert(kind.to_string(), s);
            }
            for source in ["go", "pfam"] {
                if let Some(m) = meta(&pdb, part, &format!("{kind}_{source}_total_tests"))? {
                    let m: u64 = m.parse().map_err(|_| {
                        AnalysisError::input(
                            format!("{}: meta {kind}_{source}_total_tests = {m}", part.display()),
                            "merge analyze parts",
                        )
                    })?;
                    *totals
                        .entry((kind.to_string(), source.to_string()))
                        .or_default() += m;
                }
            }
        }
        part_summaries.push(summaries);
        let mut st = pdb
            .prepare(
                "SELECT unit, annotation, term, study_count, study_size, population_count, \
                 population_size, fold, ln_p FROM enrichment ORDER BY unit, rowid",
            )
            .map_err(psql)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    TestRow {
                        unit: r.get(0)?,
                        term: r.get(2)?,
                        study_count: r.get(3)?,
                        study_size: r.get(4)?,
                        population_count: r.get(5)?,
                        population_size: r.get(6)?,
                        fold: r.get(7)?,
                        ln_p: r.get(8)?,
                    },
                ))
            })
            .map_err(psql)?;
        for row in rows {
            let (annotation, row) = row.map_err(psql)?;
            let kind = kind_of.get(&row.unit).map(|k| k.0.clone()).ok_or_else(|| {
                AnalysisError::input(
                    format!(
                        "{}: enrichment of unit {}, not in units",
                        part.display(),
                        row.unit
                    ),
                    "merge parts of one analysis",
                )
            })?;
            tests.entry((kind, annotation)).or_default().push(row);
        }
    }

    // q over all parts, then the rows `store_tests` keeps.
    let (ln_nominal, ln_alpha) = (0.05f64.ln(), alpha.ln());
    let mut ln_qs: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let tx = db.unchecked_transaction().map_err(sql)?;
    tx.execute("DELETE FROM enrichment", []).map_err(sql)?;
    tx.execute("DELETE FROM coherence", []).map_err(sql)?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO enrichment (unit, annotation, term, study_count, study_size, \
                 population_count, population_size, fold, p, q, ln_p, ln_q) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sql)?;
        for (key, rows) in &tests {
            let m = totals.get(key).copied().unwrap_or(0) as usize;
            let ln_p: Vec<f64> = rows.iter().map(|r| r.ln_p).collect();
            let ln_q = match method {
                CorrectionMethod::BenjaminiHochberg => benjamini_hochberg_ln_q(&ln_p, m),
                CorrectionMethod::Bonferroni => bonferroni_ln_q(&ln_p, m),
            }
            .map_err(AnalysisError::stats(format!(
                "{} {} correction",
                key.0, key.1
            )))?;
            for (r, &lq) in rows.iter().zip(&ln_q) {
                let keep = match store {
                    StoreTests::Nominal => r.ln_p < ln_nominal,
                    StoreTests::Significant => lq < ln_alpha,
                    StoreTests::All => true,
                };
                if keep {
                    insert
                        .execute(params![
                            r.unit,
                            key.1,
                            r.term,
                            r.study_count,
                            r.study_size,
                            r.population_count,
                            r.population_size,
                            r.fold,
                            r.ln_p.exp(),
                            lq.exp(),
                            r.ln_p,
                            lq
                        ])
                        .map_err(sql)?;
                }
            }
            ln_qs.insert(key.clone(), ln_q);
        }
    }
    tx.commit().map_err(sql)?;

    // GO term namespaces (tested terms).
    let go_namespace: HashMap<String, String> = {
        let mut st = db
            .prepare("SELECT id, namespace FROM go_terms")
            .map_err(sql)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql)?
    };

    // Summaries and coherence, per kind.
    let mut summary: AnalysisSummary = parse_meta(&db, out, "summary")?
        .ok_or_else(|| AnalysisError::input("no meta summary", "merge analyze parts"))?;
    summary.atlas = recorded_atlas.to_path_buf();
    for kind in ["feature", "neuron"] {
        let Some(mut kind_summary) = part_summaries[0].get(kind).cloned() else {
            continue;
        };
        for source in ["go", "pfam"] {
            let key = (kind.to_string(), source.to_string());
            let Some(mut terms) = (match source {
                "go" => kind_summary.go.clone(),
                _ => kind_summary.families.clone(),
            }) else {
                continue;
            };
            let of = |s: &KindSummary| match source {
                "go" => s.go.clone(),
                _ => s.families.clone(),
            };
            terms.total_tests = totals.get(&key).copied().unwrap_or(0);
            terms.units_tested = part_summaries
                .iter()
                .filter_map(|p| p.get(kind).and_then(of))
                .map(|t| t.units_tested)
                .sum();
            let empty = Vec::new();
            let rows = tests.get(&key).unwrap_or(&empty);
            let ln_q = ln_qs.get(&key).map_or(&[][..], |q| &q[..]);
            let mut units = BTreeSet::new();
            let mut distinct = BTreeSet::new();
            terms.significant_tests = 0;
            for (r, &lq) in rows.iter().zip(ln_q) {
                if lq < ln_alpha {
                    terms.significant_tests += 1;
                    units.insert(r.unit);
                    distinct.insert(r.term.as_str());
                }
            }
            terms.units_with_significant = units.len() as u32;
            terms.distinct_terms = distinct.len() as u32;
            terms.distinct_terms_by_namespace = BTreeMap::new();
            if source == "go" {
                for t in &distinct {
                    if let Some(ns) = go_namespace.get(*t) {
                        *terms
                            .distinct_terms_by_namespace
                            .entry(ns.clone())
                            .or_insert(0) += 1;
                    }
                }
            }
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![
                    format!("{kind}_{source}_total_tests"),
                    terms.total_tests.to_string()
                ],
            )
            .map_err(sql)?;
            match source {
                "go" => kind_summary.go = Some(terms),
                _ => kind_summary.families = Some(terms),
            }
        }
        // Concepts, family F1 and pattern classes: each part scored only its units.
        let kinds: Vec<&KindSummary> = part_summaries.iter().filter_map(|p| p.get(kind)).collect();
        if let Some(c) = kind_summary.concepts.as_mut() {
            let each = kinds.iter().filter_map(|k| k.concepts.as_ref());
            c.pairs = each.clone().map(|c| c.pairs).sum();
            c.units_with_concept = each.map(|c| c.units_with_concept).sum();
            c.distinct_concepts = distinct_good(&db, out, "concepts", "concept", kind, min_f1)?;
        }
        if let Some(f) = kind_summary.family_specificity.as_mut() {
            let each = kinds.iter().filter_map(|k| k.family_specificity.as_ref());
            f.pairs = each.clone().map(|f| f.pairs).sum();
            f.units_with_family = each.map(|f| f.units_with_family).sum();
            f.distinct_families =
                distinct_good(&db, out, "family_specificity", "family", kind, min_f1)?;
        }
        if let Some(patterns) = kind_summary.patterns.as_mut() {
            patterns.clear();
            for counts in kinds.iter().filter_map(|k| k.patterns.as_ref()) {
                for (class, n) in counts {
                    *patterns.entry(class.clone()).or_insert(0) += n;
                }
            }
        }
        kind_summary.coherence_tests = 0;
        kind_summary.coherent = 0;
        let go_key = (kind.to_string(), "go".to_string());
        if let (Some(dag), Some(options), Some(rows)) = (dag, coherence, tests.get(&go_key)) {
            let (count, coherent) = write_coherence(
                &db,
                out,
                dag,
                rows,
                &ln_qs[&go_key],
                &go_namespace,
                &namespaces,
                &kind_of,
                alpha,
                &options,
            )?;
            kind_summary.coherence_tests = count;
            kind_summary.coherent = coherent;
        }
        let text =
            serde_json::to_string(&kind_summary).unwrap_or_else(|e| format!("unserialisable: {e}"));
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![format!("{kind}_summary"), text],
        )
        .map_err(sql)?;
        match kind {
            "feature" => summary.features = Some(kind_summary),
            _ => summary.neurons = Some(kind_summary),
        }
    }
    let text = serde_json::to_string(&summary).unwrap_or_else(|e| format!("unserialisable: {e}"));
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('summary', ?1)",
        [text],
    )
    .map_err(sql)?;
    // The first part's uncorrected tests leave free pages behind; statistics as a single
    // process gathers them.
    db.execute_batch("VACUUM; ANALYZE;").map_err(sql)?;
    db.close()
        .map_err(|(_, e)| AnalysisError::sqlite(out, "closing")(e))
}

/// Distinct `column` values of `table` rows of one kind's units with `f1 >= min_f1` (the
/// summary's distinct concepts or families).
fn distinct_good(
    db: &Connection,
    out: &Path,
    table: &str,
    column: &str,
    kind: &str,
    min_f1: f64,
) -> AnalysisResult<u32> {
    db.query_row(
        &format!(
            "SELECT COUNT(DISTINCT t.{column}) FROM {table} t JOIN units u ON u.unit = t.unit \
             WHERE u.kind = ?1 AND t.f1 >= ?2"
        ),
        params![kind, min_f1],
        |r| r.get(0),
    )
    .map_err(AnalysisError::sqlite(
        out,
        "counting distinct concepts or families",
    ))
}

fn namespace_of(short: &str) -> Option<Namespace> {
    [
        Namespace::BiologicalProcess,
        Namespace::MolecularFunction,
        Namespace::CellularComponent,
    ]
    .into_iter()
    .find(|n| n.short() == short)
}

/// Coherence of one kind from its merged GO tests, as [`super::analyze`] computes it; returns
/// (tests, tests with shortest-path p < alpha).
#[allow(clippy::too_many_arguments)]
fn write_coherence(
    db: &Connection,
    out: &Path,
    dag: &GoDag,
    rows: &[TestRow],
    ln_q: &[f64],
    go_namespace: &HashMap<String, String>,
    namespaces: &[Namespace],
    kind_of: &HashMap<u32, (String, u32)>,
    alpha: f64,
    options: &CoherenceOptions,
) -> AnalysisResult<(u32, u32)> {
    let index_of = |id: &str| -> AnalysisResult<u32> {
        GoId::parse(id)
            .and_then(|g| dag.index(g))
            .map(|t| t.0)
            .ok_or_else(|| {
                AnalysisError::input(
                    format!("GO term {id} of the parts is not in the given Gene Ontology"),
                    "give the ontology the parts were analysed with",
                )
            })
    };
    let term_namespaces: Vec<Namespace> = dag.terms().map(|t| dag.namespace(t)).collect();
    let mut candidates: BTreeMap<Namespace, Vec<u32>> = BTreeMap::new();
    for (id, ns) in go_namespace {
        if let Some(ns) = namespace_of(ns).filter(|n| namespaces.contains(n)) {
            candidates.entry(ns).or_default().push(index_of(id)?);
        }
    }
    candidates.retain(|_, pool| {
        pool.sort_unstable();
        pool.len() >= 2
    });
    // Units in order, each with its tests (index in the kind, as the analysis numbers them).
    let mut units: Vec<UnitEnrichment> = Vec::new();
    let mut offset = 0;
    for (r, &lq) in rows.iter().zip(ln_q) {
        let (_, off) = &kind_of[&r.unit];
        offset = *off;
        let index = r.unit - off;
        if units.last().is_none_or(|u| u.unit != index) {
            units.push(UnitEnrichment {
                unit: index,
                study_size: r.study_size,
                outside_background: 0,
                tests_made: 0,
                tests: Vec::new(),
            });
        }
        let term = index_of(&r.term)?;
        units.last_mut().expect("pushed").tests.push(TermTest {
            term,
            study_count: r.study_count,
            population_count: r.population_count,
            ln_p: r.ln_p,
            ln_q: lq,
        });
    }
    let result = EnrichmentResult {
        config: EnrichmentConfig {
            background: Background::AnnotatedOnly,
            term_size: TermSizeFilter {
                min_population_count: 0,
                max_population_count: u32::MAX,
            },
            method: CorrectionMethod::BenjaminiHochberg,
            scope: CorrectionScope::AllUnits,
        },
        population_size: 0,
        tested_terms: 0,
        terms_removed_by_size: 0,
        total_tests: 0,
        units,
    };
    let tests = coherence_stage::coherence_tests(
        dag,
        &result,
        &term_namespaces,
        &candidates,
        alpha,
        options,
    );
    let action = "writing coherence";
    let mut insert = db
        .prepare(COHERENCE_INSERT)
        .map_err(AnalysisError::sqlite(out, action))?;
    for (unit, ns, t) in &tests {
        insert_coherence_row(&mut insert, offset + unit, ns.short(), t)
            .map_err(AnalysisError::sqlite(out, action))?;
    }
    let coherent = tests
        .iter()
        .filter(|t| t.2.p_shortest_path.is_some_and(|p| p < alpha))
        .count() as u32;
    Ok((tests.len() as u32, coherent))
}

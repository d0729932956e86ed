//! Atlases side by side: for each atlas (one dictionary at one model, layer, site and level)
//! the dictionary's quality (FVE, L0, dead fraction) and, for features and neurons alike, how
//! much of the biology they reach: the share of units with a significant GO term, the distinct
//! GO terms, the GO depth of the significant terms (the seed paper's "abstraction by layer":
//! longest path to the root, goatools' `depth`), Pfam and concept coverage and description
//! scores; and the probes stored in each atlas (`plmscope probe --atlas`), features against
//! neurons per label set. Every number is a query on the atlas tables (the test checks them
//! against SQL).
//!
//! ```no_run
//! use plmscope_interpret::compare::{compare_atlases, to_tsv};
//! let rows = compare_atlases(&["l3.sqlite".into(), "l6.sqlite".into()]).unwrap();
//! print!("{}", to_tsv(&rows));
//! ```
//!
//! Where the atlas says which model, layer and dictionary it describes: meta `source` (JSON,
//! written by `analyze` since issue 10), else the code set's manifest named in meta `inputs`
//! and its dictionary's `cfg.json` (paths as recorded, tried from the working directory and
//! from the atlas's folders upwards). The GO graph is the OBO named in meta `inputs` (role
//! `go`), or [`CompareOptions::go`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plmscope_bio::{GoDag, GoId};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, AnalysisResult};

mod render;
pub use render::{probes_to_tsv, to_html, to_tsv};

/// What an atlas describes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AtlasSource {
    pub model: Option<String>,
    pub layer: Option<u32>,
    pub site: Option<String>,
    pub level: Option<String>,
    /// The dictionary's folder as recorded.
    pub dictionary: Option<String>,
    pub architecture: Option<String>,
    pub d_sae: Option<u64>,
    /// Validation metrics recorded by training.
    pub fve: Option<f64>,
    pub l0: Option<f64>,
    pub dead_fraction: Option<f64>,
}

/// One kind of unit (features or neurons) of one atlas.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UnitStats {
    pub units: u64,
    pub dead: u64,
    pub dead_fraction: f64,
    /// Units with a GO term at q < alpha, and their share of all units of the kind.
    pub go_units: u64,
    pub go_share: f64,
    pub go_distinct_terms: u64,
    /// Mean and median GO depth over the significant (unit, term) pairs; `None` without an
    /// ontology or without significant terms.
    pub go_mean_depth: Option<f64>,
    pub go_median_depth: Option<f64>,
    pub pfam_units: u64,
    pub pfam_share: f64,
    pub pfam_distinct: u64,
    /// Units with a concept at F1 ≥ meta `concept_min_f1` (0.5 by default).
    pub concept_units: u64,
    pub concept_share: f64,
    pub concept_distinct: u64,
    pub descriptions: u64,
    pub description_mean_pearson: Option<f64>,
}

/// One probe stored in an atlas (`plmscope probe --atlas`): a set's units against labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeSummary {
    pub labels: String,
    pub level: String,
    /// The probed set (code set: features; activation set: neurons).
    pub set: String,
    pub kind: String,
    pub units: u64,
    pub c: f64,
    /// Held-out AUROC and F1 of the fit at `c`.
    pub auroc: f64,
    pub f1: f64,
    pub nonzero: u64,
    /// Best held-out AUROC on the L1 path, and the fewest units reaching 95% of it.
    pub best_auroc: f64,
    pub units_for_95: u64,
    pub test_proteins: u64,
}

/// One atlas, features and neurons side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtlasComparison {
    pub atlas: PathBuf,
    pub source: AtlasSource,
    pub alpha: f64,
    pub features: Option<UnitStats>,
    pub neurons: Option<UnitStats>,
    /// The atlas's `probes` rows, by labels then held-out AUROC (best first).
    pub probes: Vec<ProbeSummary>,
}

/// Choices of a comparison.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// The GO OBO for depths, instead of the one each atlas names.
    pub go: Option<PathBuf>,
}

/// Compares atlases, each read-only, in the order given.
pub fn compare_atlases(atlases: &[PathBuf]) -> AnalysisResult<Vec<AtlasComparison>> {
    compare_atlases_with(atlases, &CompareOptions::default())
}

/// [`compare_atlases`] with options.
pub fn compare_atlases_with(
    atlases: &[PathBuf],
    options: &CompareOptions,
) -> AnalysisResult<Vec<AtlasComparison>> {
    let mut dags: HashMap<PathBuf, Option<GoDag>> = HashMap::new();
    atlases
        .iter()
        .map(|path| compare_one(path, options, &mut dags))
        .collect()
}

/// Opens an atlas read-only.
pub fn open_read_only(path: &Path) -> AnalysisResult<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(AnalysisError::sqlite(path, "open read-only"))
}

/// A meta value, when present.
pub fn meta(db: &Connection, path: &Path, key: &str) -> AnalysisResult<Option<String>> {
    db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(AnalysisError::sqlite(path, format!("read meta {key}")))
}

fn compare_one(
    path: &Path,
    options: &CompareOptions,
    dags: &mut HashMap<PathBuf, Option<GoDag>>,
) -> AnalysisResult<AtlasComparison> {
    let db = open_read_only(path)?;
    let source = atlas_source(&db, path)?;
    let alpha = meta(&db, path, "alpha")?
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.05);
    let go_path = options
        .go
        .clone()
        .or(input_path(&db, path, "go")?.and_then(|p| resolve_recorded_path(&p, path)));
    let dag = match go_path {
        Some(p) => dags
            .entry(p.clone())
            .or_insert_with(|| GoDag::open(&p).ok()),
        None => &None,
    };
    let min_f1 = meta(&db, path, "concept_min_f1")?
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.5);
    let stats = |kind: &str| unit_stats(&db, path, kind, alpha, min_f1, dag.as_ref());
    Ok(AtlasComparison {
        atlas: path.to_path_buf(),
        features: stats("feature")?,
        neurons: stats("neuron")?,
        probes: probes(&db, path)?,
        source,
        alpha,
    })
}

/// Every probe of `rows` as (index into `rows`, rank, probe): grouped by labels and level,
/// ranked by held-out AUROC across atlases (rank 1 the best of its group).
pub fn ranked_probes(rows: &[AtlasComparison]) -> Vec<(usize, usize, &ProbeSummary)> {
    let mut all: Vec<(usize, &ProbeSummary)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.probes.iter().map(move |p| (i, p)))
        .collect();
    all.sort_by(|(_, a), (_, b)| {
        (&a.labels, &a.level)
            .cmp(&(&b.labels, &b.level))
            .then(b.auroc.total_cmp(&a.auroc))
    });
    let mut ranked: Vec<(usize, usize, &ProbeSummary)> = Vec::with_capacity(all.len());
    for (i, p) in all {
        let rank = match ranked.last() {
            Some((_, r, prev)) if (&prev.labels, &prev.level) == (&p.labels, &p.level) => r + 1,
            _ => 1,
        };
        ranked.push((i, rank, p));
    }
    ranked
}

/// The `probes` table (empty when the atlas has none).
fn probes(db: &Connection, path: &Path) -> AnalysisResult<Vec<ProbeSummary>> {
    if !has_table(db, path, "probes")? {
        return Ok(Vec::new());
    }
    let sql = "SELECT labels, level, set_name, kind, units, c, auroc, f1, nonzero, best_auroc, \
               units_for_95, test_proteins FROM probes ORDER BY labels, level, auroc DESC, \
               set_name, kind";
    let read = || -> rusqlite::Result<Vec<ProbeSummary>> {
        let mut statement = db.prepare(sql)?;
        let rows = statement.query_map([], |r| {
            Ok(ProbeSummary {
                labels: r.get(0)?,
                level: r.get(1)?,
                set: r.get(2)?,
                kind: r.get(3)?,
                units: r.get::<_, i64>(4)? as u64,
                c: r.get(5)?,
                auroc: r.get(6)?,
                f1: r.get(7)?,
                nonzero: r.get::<_, i64>(8)? as u64,
                best_auroc: r.get(9)?,
                units_for_95: r.get::<_, i64>(10)? as u64,
                test_proteins: r.get::<_, i64>(11)? as u64,
            })
        })?;
        rows.collect()
    };
    read().map_err(AnalysisError::sqlite(path, "read probes"))
}

fn count(db: &Connection, path: &Path, sql: &str, kind: &str, x: f64) -> AnalysisResult<u64> {
    let n: i64 = db
        .query_row(sql, rusqlite::params![kind, x], |r| r.get(0))
        .map_err(AnalysisError::sqlite(path, format!("query {sql}")))?;
    Ok(n as u64)
}

fn has_table(db: &Connection, path: &Path, table: &str) -> AnalysisResult<bool> {
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .map_err(AnalysisError::sqlite(path, "list tables"))?;
    Ok(n > 0)
}

fn unit_stats(
    db: &Connection,
    path: &Path,
    kind: &str,
    alpha: f64,
    min_f1: f64,
    dag: Option<&GoDag>,
) -> AnalysisResult<Option<UnitStats>> {
    let units = count(
        db,
        path,
        "SELECT count(*) FROM units WHERE kind = ?1 AND ?2 = ?2",
        kind,
        0.0,
    )?;
    if units == 0 {
        return Ok(None);
    }
    let share = |n: u64| n as f64 / units as f64;
    let dead = count(
        db,
        path,
        "SELECT count(*) FROM units WHERE kind = ?1 AND dead != 0 AND ?2 = ?2",
        kind,
        0.0,
    )?;
    let significant = |annotation: &str, what: &str| -> AnalysisResult<u64> {
        count(
            db,
            path,
            &format!(
                "SELECT count(DISTINCT e.{what}) FROM enrichment e JOIN units u ON u.unit = \
                 e.unit WHERE u.kind = ?1 AND e.annotation = '{annotation}' AND e.q < ?2"
            ),
            kind,
            alpha,
        )
    };
    let (go_units, go_distinct_terms) = (significant("go", "unit")?, significant("go", "term")?);
    let (pfam_units, pfam_distinct) = (significant("pfam", "unit")?, significant("pfam", "term")?);
    let concept = |what: &str| {
        count(
            db,
            path,
            &format!(
                "SELECT count(DISTINCT c.{what}) FROM concepts c JOIN units u ON u.unit = \
                 c.unit WHERE u.kind = ?1 AND c.f1 >= ?2"
            ),
            kind,
            min_f1,
        )
    };
    let (concept_units, concept_distinct) = (concept("unit")?, concept("concept")?);
    let (go_mean_depth, go_median_depth) = match dag {
        Some(dag) => go_depths(db, path, kind, alpha, dag)?,
        None => (None, None),
    };
    let (descriptions, description_mean_pearson) = if has_table(db, path, "descriptions")? {
        db.query_row(
            "SELECT count(*), avg(d.pearson) FROM descriptions d JOIN units u ON u.unit = \
             d.unit WHERE u.kind = ?1",
            [kind],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<f64>>(1)?)),
        )
        .map_err(AnalysisError::sqlite(path, "read descriptions"))?
    } else {
        (0, None)
    };
    Ok(Some(UnitStats {
        units,
        dead,
        dead_fraction: share(dead),
        go_units,
        go_share: share(go_units),
        go_distinct_terms,
        go_mean_depth,
        go_median_depth,
        pfam_units,
        pfam_share: share(pfam_units),
        pfam_distinct,
        concept_units,
        concept_share: share(concept_units),
        concept_distinct,
        descriptions,
        description_mean_pearson,
    }))
}

/// Depth of each significant (unit, GO term) pair of `kind`.
pub fn significant_go_depths(
    db: &Connection,
    path: &Path,
    kind: &str,
    alpha: f64,
    dag: &GoDag,
) -> AnalysisResult<Vec<u32>> {
    let mut statement = db
        .prepare(
            "SELECT e.term FROM enrichment e JOIN units u ON u.unit = e.unit WHERE u.kind = ?1 \
             AND e.annotation = 'go' AND e.q < ?2",
        )
        .map_err(AnalysisError::sqlite(path, "query significant GO terms"))?;
    let terms = statement
        .query_map(rusqlite::params![kind, alpha], |r| r.get::<_, String>(0))
        .map_err(AnalysisError::sqlite(path, "query significant GO terms"))?;
    let mut depths = Vec::new();
    for term in terms {
        let term = term.map_err(AnalysisError::sqlite(path, "read a GO term"))?;
        let index = term.parse::<GoId>().ok().and_then(|id| dag.index(id));
        if let Some(index) = index {
            depths.push(dag.depth(index));
        }
    }
    Ok(depths)
}

fn go_depths(
    db: &Connection,
    path: &Path,
    kind: &str,
    alpha: f64,
    dag: &GoDag,
) -> AnalysisResult<(Option<f64>, Option<f64>)> {
    let mut depths = significant_go_depths(db, path, kind, alpha, dag)?;
    if depths.is_empty() {
        return Ok((None, None));
    }
    depths.sort_unstable();
    let mean = depths.iter().map(|&d| d as f64).sum::<f64>() / depths.len() as f64;
    let m = depths.len();
    let median = if m % 2 == 1 {
        depths[m / 2] as f64
    } else {
        (depths[m / 2 - 1] + depths[m / 2]) as f64 / 2.0
    };
    Ok((Some(mean), Some(median)))
}

#[derive(Deserialize)]
struct InputRecord {
    path: String,
    role: String,
}

fn input_path(db: &Connection, path: &Path, role: &str) -> AnalysisResult<Option<String>> {
    let Some(inputs) = meta(db, path, "inputs")? else {
        return Ok(None);
    };
    let records: Vec<InputRecord> = serde_json::from_str(&inputs).unwrap_or_default();
    Ok(records.into_iter().find(|r| r.role == role).map(|r| r.path))
}

/// `recorded` as it exists: from the working directory, else from the atlas's folders upwards.
pub fn resolve_recorded_path(recorded: &str, atlas: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(recorded);
    if p.exists() {
        return Some(p);
    }
    let mut dir = atlas.parent();
    while let Some(d) = dir {
        let candidate = d.join(&p);
        if candidate.exists() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

fn atlas_source(db: &Connection, path: &Path) -> AnalysisResult<AtlasSource> {
    if let Some(json) = meta(db, path, "source")? {
        if let Ok(source) = serde_json::from_str::<AtlasSource>(&json) {
            return Ok(source);
        }
    }
    let role = if input_path(db, path, "codes")?.is_some() {
        "codes"
    } else {
        "neurons"
    };
    let manifest = input_path(db, path, role)?.and_then(|p| resolve_recorded_path(&p, path));
    Ok(manifest
        .and_then(|m| std::fs::read_to_string(&m).ok().map(|t| (m, t)))
        .and_then(|(m, text)| {
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some(source_from_manifest(&json, &m, path))
        })
        .unwrap_or_default())
}

/// The source described by a code set's or activation set's manifest (and, for a code set,
/// its dictionary's `cfg.json` when it can be found).
pub fn source_from_manifest(manifest: &serde_json::Value, at: &Path, atlas: &Path) -> AtlasSource {
    let set = manifest.get("source").unwrap_or(manifest);
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut source = AtlasSource {
        model: set.pointer("/model/id").and_then(text),
        layer: set.get("layer").and_then(|l| l.as_u64()).map(|l| l as u32),
        site: set.get("site").and_then(text),
        level: set.get("level").and_then(text),
        ..AtlasSource::default()
    };
    if let Some(dictionary) = manifest.get("dictionary") {
        source.dictionary = dictionary.get("id").and_then(text);
        source.architecture = dictionary.get("architecture").and_then(text);
        source.d_sae = dictionary.get("d_sae").and_then(|d| d.as_u64());
        let cfg = source.dictionary.as_deref().and_then(|d| {
            resolve_recorded_path(d, atlas)
                .or_else(|| resolve_recorded_path(d, at))
                .and_then(|dir| {
                    let t = std::fs::read_to_string(dir.join("cfg.json")).ok()?;
                    serde_json::from_str::<serde_json::Value>(&t).ok()
                })
        });
        if let Some(cfg) = cfg {
            let metrics = cfg
                .pointer("/plmscope/training/final_metrics")
                .or(cfg.pointer("/plmscope/metrics"));
            let number = |k: &str| metrics.and_then(|m| m.get(k)).and_then(|v| v.as_f64());
            source.fve = number("fve").or(number("fvu").map(|f| 1.0 - f));
            source.l0 = number("l0");
            source.dead_fraction = number("dead_fraction");
        }
    }
    source
}

/// Writes `source` into the atlas's meta (key `source`), so later comparisons need no files
/// beside the atlas. `analyze` calls this with the code set's manifest.
pub fn record_source(atlas: &Path, source: &AtlasSource) -> AnalysisResult<()> {
    let db = Connection::open(atlas).map_err(AnalysisError::sqlite(atlas, "open"))?;
    let json = serde_json::to_string(source).unwrap_or_default();
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('source', ?1)",
        [json],
    )
    .map_err(AnalysisError::sqlite(atlas, "write meta source"))?;
    Ok(())
}

//! The features list's rows as plain structs: one [`UnitRow`] per unit, each atlas's rows
//! pre-sorted once per [`Sort`] key at startup, and a [`UnitFilter`] that a page applies by
//! scanning one of those orders.
//!
//! Why not SQL: with the rows in one in-memory SQLite database behind a mutex, each list request
//! sorted 10,000 rows (~10 ms) and 16 concurrent clients queued behind each other (p95 212 ms,
//! filtered 344 ms; BENCHMARKS.md, 2026-12-01). A scan of a pre-sorted order with the filter
//! below takes tens of microseconds and needs no lock.

use std::cmp::Ordering;

/// A unit's summary: what the features list, search results and labels show.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnitRow {
    pub atlas: usize,
    pub unit: i64,
    pub kind: String,
    pub idx: i64,
    pub density: f64,
    pub max: f64,
    pub dead: bool,
    /// Best GO term by q among the stored tests (p < 0.05), its name ('' when the atlas lacks it).
    pub go: Option<String>,
    pub go_name: Option<String>,
    pub go_q: Option<f64>,
    /// GO terms at q < alpha.
    pub go_significant: i64,
    pub pfam: Option<String>,
    pub pfam_q: Option<f64>,
    pub concept: Option<String>,
    pub concept_f1: Option<f64>,
    pub family_f1: Option<f64>,
    pub pattern: Option<String>,
    pub description: Option<String>,
    pub score: Option<f64>,
}

/// Sort keys of the features list. Every order ends with the unit id, so it is total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sort {
    GoQ,
    Unit,
    DensityDesc,
    DensityAsc,
    GoSignificant,
    PfamQ,
    ConceptF1,
    FamilyF1,
    Score,
    Max,
}

/// Ascending, missing values last (SQL `x IS NULL, x`).
fn asc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Descending, missing values last (SQL `x IS NULL, x DESC`).
fn desc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => asc(a, b),
    }
}

impl Sort {
    /// In the order the list's menu offers them.
    pub const ALL: [Sort; 10] = [
        Sort::GoQ,
        Sort::Unit,
        Sort::DensityDesc,
        Sort::DensityAsc,
        Sort::GoSignificant,
        Sort::PfamQ,
        Sort::ConceptF1,
        Sort::FamilyF1,
        Sort::Score,
        Sort::Max,
    ];

    /// The name in the query string (`sort=`).
    pub fn name(self) -> &'static str {
        match self {
            Sort::GoQ => "go_q",
            Sort::Unit => "unit",
            Sort::DensityDesc => "density",
            Sort::DensityAsc => "density_asc",
            Sort::GoSignificant => "go_significant",
            Sort::PfamQ => "pfam_q",
            Sort::ConceptF1 => "concept_f1",
            Sort::FamilyF1 => "family_f1",
            Sort::Score => "score",
            Sort::Max => "max",
        }
    }

    /// The label in the menu.
    pub fn label(self) -> &'static str {
        match self {
            Sort::GoQ => "best GO q",
            Sort::Unit => "unit",
            Sort::DensityDesc => "density (high first)",
            Sort::DensityAsc => "density (low first)",
            Sort::GoSignificant => "significant GO terms",
            Sort::PfamQ => "best Pfam q",
            Sort::ConceptF1 => "concept F1",
            Sort::FamilyF1 => "family F1",
            Sort::Score => "description score",
            Sort::Max => "max activation",
        }
    }

    pub fn from_name(name: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The order of two rows of one atlas.
    pub fn compare(self, a: &UnitRow, b: &UnitRow) -> Ordering {
        let key = match self {
            Sort::GoQ => asc(a.go_q, b.go_q),
            Sort::Unit => Ordering::Equal,
            Sort::DensityDesc => desc(Some(a.density), Some(b.density)),
            Sort::DensityAsc => asc(Some(a.density), Some(b.density)),
            Sort::GoSignificant => b.go_significant.cmp(&a.go_significant),
            Sort::PfamQ => asc(a.pfam_q, b.pfam_q),
            Sort::ConceptF1 => desc(a.concept_f1, b.concept_f1),
            Sort::FamilyF1 => desc(a.family_f1, b.family_f1),
            Sort::Score => desc(a.score, b.score),
            Sort::Max => desc(Some(a.max), Some(b.max)),
        };
        key.then(a.unit.cmp(&b.unit))
    }
}

/// Best GO q first (missing last), then atlas and unit: the order of search results.
pub(crate) fn by_go_q(a: &UnitRow, b: &UnitRow) -> Ordering {
    asc(a.go_q, b.go_q)
        .then(a.atlas.cmp(&b.atlas))
        .then(a.unit.cmp(&b.unit))
}

/// Each sort key's order of `rows` (positions into it), indexed like [`Sort::ALL`].
pub(crate) fn sorted_orders(rows: &[UnitRow]) -> Vec<Vec<u32>> {
    Sort::ALL
        .iter()
        .map(|&sort| {
            let mut order: Vec<u32> = (0..rows.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| sort.compare(&rows[a as usize], &rows[b as usize]));
            order
        })
        .collect()
}

/// The list's filters; `None` (or `false`) filters nothing. A missing value never passes a
/// bound (SQL: a comparison with NULL is not true).
#[derive(Clone, Debug, Default)]
pub(crate) struct UnitFilter {
    pub kind: Option<String>,
    pub min_density: Option<f64>,
    pub max_density: Option<f64>,
    /// A GO id (exact) or a piece of its name (ASCII case-insensitive, as SQLite's `lower`).
    pub go: Option<String>,
    pub max_q: Option<f64>,
    pub pfam: Option<String>,
    pub min_f1: Option<f64>,
    pub pattern: Option<String>,
    pub min_score: Option<f64>,
    pub alive: bool,
}

fn at_least(value: Option<f64>, bound: Option<f64>) -> bool {
    bound.is_none_or(|b| value.is_some_and(|v| v >= b))
}

fn at_most(value: Option<f64>, bound: Option<f64>) -> bool {
    bound.is_none_or(|b| value.is_some_and(|v| v <= b))
}

fn same(value: &Option<String>, wanted: &Option<String>) -> bool {
    wanted.as_ref().is_none_or(|w| value.as_ref() == Some(w))
}

/// Whether `needle` occurs in `haystack`, ASCII letters compared case-insensitively (SQL
/// `instr(lower(haystack), lower(needle)) > 0` with SQLite's ASCII-only `lower`).
fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

impl UnitFilter {
    pub fn matches(&self, u: &UnitRow) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == u.kind)
            && at_least(Some(u.density), self.min_density)
            && at_most(Some(u.density), self.max_density)
            && self.go.as_ref().is_none_or(|g| {
                u.go.as_ref() == Some(g)
                    || u.go_name
                        .as_deref()
                        .is_some_and(|n| contains_ascii_ci(n, g))
            })
            && at_most(u.go_q, self.max_q)
            && same(&u.pfam, &self.pfam)
            && at_least(u.concept_f1, self.min_f1)
            && same(&u.pattern, &self.pattern)
            && at_least(u.score, self.min_score)
            && !(self.alive && u.dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, Connection};

    /// The ORDER BY clauses of the SQL list this replaced, by sort name.
    const SQL_ORDERS: &[(&str, &str)] = &[
        ("go_q", "go_q IS NULL, go_q, unit"),
        ("unit", "unit"),
        ("density", "density DESC, unit"),
        ("density_asc", "density, unit"),
        ("go_significant", "go_significant DESC, unit"),
        ("pfam_q", "pfam_q IS NULL, pfam_q, unit"),
        ("concept_f1", "concept_f1 IS NULL, concept_f1 DESC, unit"),
        ("family_f1", "family_f1 IS NULL, family_f1 DESC, unit"),
        ("score", "score IS NULL, score DESC, unit"),
        ("max", "max DESC, unit"),
    ];

    const SQL_FILTER: &str = "(?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR density >= ?2)
        AND (?3 IS NULL OR density <= ?3)
        AND (?4 IS NULL OR go = ?4 OR instr(lower(go_name), lower(?4)) > 0)
        AND (?5 IS NULL OR go_q <= ?5) AND (?6 IS NULL OR pfam = ?6) AND (?7 IS NULL OR concept_f1 >= ?7)
        AND (?8 IS NULL OR pattern = ?8) AND (?9 IS NULL OR score >= ?9) AND (?10 = 0 OR dead = 0)";

    /// Rows with few distinct values (so ties and NULLs are common), in shuffled unit order.
    fn rows() -> Vec<UnitRow> {
        let mut state = 7u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut out = Vec::new();
        for i in 0..600u64 {
            let unit = ((i * 389) % 600) as i64;
            let maybe =
                |v: u64, n: &mut dyn FnMut(u64) -> u64| (n(4) != 0).then_some(v as f64 / 8.0);
            let go = (next(3) != 0).then(|| format!("GO:{:07}", next(5)));
            out.push(UnitRow {
                atlas: 0,
                unit,
                kind: if unit < 500 { "feature" } else { "neuron" }.into(),
                idx: unit % 500,
                density: next(6) as f64 / 10.0,
                max: next(4) as f64,
                dead: next(10) == 0,
                go_name: go
                    .as_ref()
                    .map(|g| format!("Kinase {} ACTIVITY é", &g[9..])),
                go_q: go.as_ref().and_then(|_| maybe(next(5), &mut next)),
                go,
                go_significant: next(3) as i64,
                pfam: (next(2) == 0).then(|| format!("PF{:05}", next(3))),
                pfam_q: maybe(next(5), &mut next),
                concept: None,
                concept_f1: maybe(next(5), &mut next),
                family_f1: maybe(next(5), &mut next),
                pattern: (next(2) == 0).then(|| ["point", "whole"][next(2) as usize].to_string()),
                description: None,
                score: maybe(next(5), &mut next),
            });
        }
        out
    }

    fn filters() -> Vec<UnitFilter> {
        let none = UnitFilter::default();
        vec![
            none.clone(),
            UnitFilter {
                kind: Some("neuron".into()),
                ..none.clone()
            },
            UnitFilter {
                min_density: Some(0.2),
                max_density: Some(0.4),
                ..none.clone()
            },
            UnitFilter {
                go: Some("GO:0000003".into()),
                ..none.clone()
            },
            UnitFilter {
                go: Some("kinase 2 act".into()),
                ..none.clone()
            },
            UnitFilter {
                go: Some("é".into()),
                ..none.clone()
            },
            UnitFilter {
                go: Some("É".into()),
                ..none.clone()
            },
            UnitFilter {
                max_q: Some(0.25),
                alive: true,
                ..none.clone()
            },
            UnitFilter {
                pfam: Some("PF00001".into()),
                min_f1: Some(0.25),
                ..none.clone()
            },
            UnitFilter {
                pattern: Some("whole".into()),
                min_score: Some(0.125),
                ..none.clone()
            },
        ]
    }

    #[test]
    fn every_sort_and_filter_orders_rows_as_the_sql_did() {
        let rows = rows();
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE units (unit INTEGER PRIMARY KEY, kind TEXT, density REAL, max REAL,
             dead INTEGER, go TEXT, go_name TEXT, go_q REAL, go_significant INTEGER, pfam TEXT,
             pfam_q REAL, concept_f1 REAL, family_f1 REAL, pattern TEXT, score REAL)",
        )
        .unwrap();
        for u in &rows {
            c.execute(
                "INSERT INTO units VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![u.unit, u.kind, u.density, u.max, u.dead as i64, u.go, u.go_name, u.go_q,
                        u.go_significant, u.pfam, u.pfam_q, u.concept_f1, u.family_f1, u.pattern, u.score],
            )
            .unwrap();
        }
        let orders = sorted_orders(&rows);
        for (s, (name, order_by)) in Sort::ALL.iter().zip(SQL_ORDERS) {
            assert_eq!(s.name(), *name);
            let order = &orders[Sort::ALL.iter().position(|x| x == s).unwrap()];
            for f in filters() {
                let ours: Vec<i64> = order
                    .iter()
                    .map(|&r| &rows[r as usize])
                    .filter(|u| f.matches(u))
                    .map(|u| u.unit)
                    .collect();
                let mut st = c
                    .prepare(&format!(
                        "SELECT unit FROM units WHERE {SQL_FILTER} ORDER BY {order_by}"
                    ))
                    .unwrap();
                let sql: Vec<i64> = st
                    .query_map(
                        params![
                            f.kind,
                            f.min_density,
                            f.max_density,
                            f.go,
                            f.max_q,
                            f.pfam,
                            f.min_f1,
                            f.pattern,
                            f.min_score,
                            f.alive as i64
                        ],
                        |r| r.get(0),
                    )
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                // Catches: NULLs sorted first, a descending key sorted ascending, ties not
                // broken by unit, a missing value passing a bound, Unicode case folding.
                assert!(
                    !sql.is_empty() || f.go.is_some(),
                    "{name} {f:?}: the filter is too strict to test"
                );
                assert_eq!(ours, sql, "sort {name}, filter {f:?}");
            }
        }
    }
}

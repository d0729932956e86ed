//! `/a/{atlas}`: the units of one atlas, sorted and filtered. Every value is bound as an SQL
//! parameter; the sort order is chosen from a fixed list.

use std::fmt::Write;

use rusqlite::params;
use serde::Deserialize;

use super::{unit_row, unit_tr, UNIT_COLUMNS, UNIT_HEADER};
use crate::error::{WebError, WebResult};
use crate::html::{esc, page, url};
use crate::server::AppState;

/// Rows per page.
const PAGE: i64 = 100;

/// The list's query string, as the form sends it (empty fields allowed).
#[derive(Deserialize, Default, Debug)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub sort: Option<String>,
    pub min_density: Option<String>,
    pub max_density: Option<String>,
    pub go: Option<String>,
    pub max_q: Option<String>,
    pub pfam: Option<String>,
    pub min_f1: Option<String>,
    pub pattern: Option<String>,
    pub min_score: Option<String>,
    pub alive: Option<String>,
    pub page: Option<String>,
}

/// Sort keys: (name, label, ORDER BY clause).
const SORTS: &[(&str, &str, &str)] = &[
    ("go_q", "best GO q", "go_q IS NULL, go_q, unit"),
    ("unit", "unit", "unit"),
    ("density", "density (high first)", "density DESC, unit"),
    ("density_asc", "density (low first)", "density, unit"),
    (
        "go_significant",
        "significant GO terms",
        "go_significant DESC, unit",
    ),
    ("pfam_q", "best Pfam q", "pfam_q IS NULL, pfam_q, unit"),
    (
        "concept_f1",
        "concept F1",
        "concept_f1 IS NULL, concept_f1 DESC, unit",
    ),
    (
        "family_f1",
        "family F1",
        "family_f1 IS NULL, family_f1 DESC, unit",
    ),
    (
        "score",
        "description score",
        "score IS NULL, score DESC, unit",
    ),
    ("max", "max activation", "max DESC, unit"),
];

fn text(v: &Option<String>) -> WebResult<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.len() > 100 => Err(WebError::BadRequest(
            "a filter is longer than 100 bytes".into(),
        )),
        Some(t) => Ok(Some(t.to_string())),
    }
}

fn number(name: &str, v: &Option<String>) -> WebResult<Option<f64>> {
    match text(v)? {
        None => Ok(None),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| WebError::BadRequest(format!("{name} must be a number, not {t:?}"))),
    }
}

/// Renders the list.
pub fn render(s: &AppState, atlas: usize, q: &ListQuery) -> WebResult<String> {
    let a = s.atlas(atlas)?;
    let kind = text(&q.kind)?;
    if let Some(k) = &kind {
        if k != "feature" && k != "neuron" {
            return Err(WebError::BadRequest(format!(
                "kind must be feature or neuron, not {k:?}"
            )));
        }
    }
    let sort_name = text(&q.sort)?.unwrap_or_else(|| "go_q".into());
    let Some(&(_, _, order)) = SORTS.iter().find(|(n, _, _)| *n == sort_name) else {
        return Err(WebError::BadRequest(format!("unknown sort {sort_name:?}")));
    };
    let min_density = number("min_density", &q.min_density)?;
    let max_density = number("max_density", &q.max_density)?;
    let go = text(&q.go)?;
    let max_q = number("max_q", &q.max_q)?;
    let pfam = text(&q.pfam)?;
    let min_f1 = number("min_f1", &q.min_f1)?;
    let pattern = text(&q.pattern)?;
    let min_score = number("min_score", &q.min_score)?;
    let alive = text(&q.alive)?.is_some_and(|v| v != "0");
    let page_no = match text(&q.page)? {
        None => 0,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (0..1_000_000).contains(p))
            .ok_or_else(|| WebError::BadRequest(format!("bad page {p:?}")))?,
    };
    let filter = "atlas = ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR density >= ?3)
        AND (?4 IS NULL OR density <= ?4)
        AND (?5 IS NULL OR go = ?5 OR instr(lower(go_name), lower(?5)) > 0)
        AND (?6 IS NULL OR go_q <= ?6) AND (?7 IS NULL OR pfam = ?7) AND (?8 IS NULL OR concept_f1 >= ?8)
        AND (?9 IS NULL OR pattern = ?9) AND (?10 IS NULL OR score >= ?10) AND (?11 = 0 OR dead = 0)";
    let (total, rows) = s.index.with(|c| {
        let values = params![atlas, kind, min_density, max_density, go, max_q, pfam, min_f1, pattern, min_score, alive as i64];
        let total: i64 = c.query_row(&format!("SELECT COUNT(*) FROM units WHERE {filter}"), values, |r| r.get(0))?;
        let mut st = c.prepare(&format!(
            "SELECT {UNIT_COLUMNS} FROM units WHERE {filter} ORDER BY {order} LIMIT {PAGE} OFFSET ?12"
        ))?;
        let rows = st
            .query_map(
                params![atlas, kind, min_density, max_density, go, max_q, pfam, min_f1, pattern, min_score, alive as i64, page_no * PAGE],
                unit_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total, rows))
    })?;
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let mut body = format!(
        "<h1>{}</h1><p class=muted>{} level · {} units match</p>",
        esc(&a.name),
        esc(&a.level),
        total
    );
    let _ = write!(
        body,
        "<form id=filters><label>kind <select name=kind><option value=''>all</option><option{}>feature</option><option{}>neuron</option></select></label> \
         <label>sort <select name=sort>{}</select></label> \
         <label>density <input name=min_density size=5 value='{}'>–<input name=max_density size=5 value='{}'></label> \
         <label>GO <input name=go size=14 value='{}'></label> <label>q ≤ <input name=max_q size=5 value='{}'></label> \
         <label>Pfam <input name=pfam size=8 value='{}'></label> <label>concept F1 ≥ <input name=min_f1 size=4 value='{}'></label> \
         <label>pattern <input name=pattern size=10 value='{}'></label> <label>score ≥ <input name=min_score size=4 value='{}'></label> \
         <label><input type=checkbox name=alive value=1{}> alive only</label> <button>apply</button></form>",
        if kind.as_deref() == Some("feature") { " selected" } else { "" },
        if kind.as_deref() == Some("neuron") { " selected" } else { "" },
        SORTS
            .iter()
            .map(|(n, l, _)| format!("<option value={n}{}>{l}</option>", if *n == sort_name { " selected" } else { "" }))
            .collect::<String>(),
        v(&q.min_density),
        v(&q.max_density),
        v(&q.go),
        v(&q.max_q),
        v(&q.pfam),
        v(&q.min_f1),
        v(&q.pattern),
        v(&q.min_score),
        if alive { " checked" } else { "" },
    );
    let _ = write!(body, "<table id=units>{UNIT_HEADER}");
    for u in &rows {
        body.push_str(&unit_tr(u, None));
    }
    body.push_str("</table>");
    if (page_no + 1) * PAGE < total {
        let keep = [
            ("kind", &q.kind),
            ("sort", &q.sort),
            ("min_density", &q.min_density),
            ("max_density", &q.max_density),
            ("go", &q.go),
            ("max_q", &q.max_q),
            ("pfam", &q.pfam),
            ("min_f1", &q.min_f1),
            ("pattern", &q.pattern),
            ("min_score", &q.min_score),
            ("alive", &q.alive),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}&", url(v)))
        })
        .collect::<String>();
        let _ = write!(
            body,
            "<p><a id=next href='/a/{atlas}?{}page={}'>next {PAGE}</a></p>",
            esc(&keep),
            page_no + 1
        );
    }
    Ok(page(&a.name, &body))
}

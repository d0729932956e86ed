//! `/a/{atlas}`: the units of one atlas, sorted and filtered: a scan of the index's pre-sorted
//! rows ([`crate::index::Sort`]); the sort order is chosen from a fixed list.

use std::fmt::Write;

use serde::Deserialize;

use super::{unit_tr, UNIT_HEADER};
use crate::error::{WebError, WebResult};
use crate::html::{esc, page, url};
use crate::index::{Sort, UnitFilter};
use crate::server::AppState;

/// Rows per page.
const PAGE: usize = 100;

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
    let Some(sort) = Sort::from_name(&sort_name) else {
        return Err(WebError::BadRequest(format!("unknown sort {sort_name:?}")));
    };
    let filter = UnitFilter {
        kind: kind.clone(),
        min_density: number("min_density", &q.min_density)?,
        max_density: number("max_density", &q.max_density)?,
        go: text(&q.go)?,
        max_q: number("max_q", &q.max_q)?,
        pfam: text(&q.pfam)?,
        min_f1: number("min_f1", &q.min_f1)?,
        pattern: text(&q.pattern)?,
        min_score: number("min_score", &q.min_score)?,
        alive: text(&q.alive)?.is_some_and(|v| v != "0"),
    };
    let alive = filter.alive;
    let page_no = match text(&q.page)? {
        None => 0,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p < 1_000_000)
            .ok_or_else(|| WebError::BadRequest(format!("bad page {p:?}")))?,
    };
    let found = s.index.list(atlas, sort, &filter, page_no * PAGE, PAGE)?;
    let (total, rows) = (found.total, found.rows);
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
        Sort::ALL
            .iter()
            .map(|s| format!("<option value={}{}>{}</option>", s.name(), if *s == sort { " selected" } else { "" }, s.label()))
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
    for u in rows {
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

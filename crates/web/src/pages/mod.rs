//! The pages, each a function from the state and the request's parameters to HTML.

pub mod compare;
pub mod depth;
pub mod feature;
pub mod flow;
pub mod list;
pub mod protein;
pub mod sequence;

use std::fmt::Write;

use crate::error::{WebError, WebResult};
use crate::html::{esc, num, opt, page, url};
use crate::index::{TextQuery, UnitRow};
use crate::server::AppState;

/// Units a search shows (best GO q first) and proteins (in atlas order).
const SEARCH_UNITS: usize = 200;
const SEARCH_PROTEINS: usize = 100;

/// `/`: the atlases served.
pub fn home(s: &AppState) -> WebResult<String> {
    let mut body = String::from("<h1>Atlases</h1><table><tr><th>atlas</th><th>level</th><th>features</th><th>neurons</th><th>proteins</th><th>residue tracks</th></tr>");
    for a in &s.atlases {
        let m = |k: &str| a.meta.get(k).cloned().unwrap_or_else(|| "–".into());
        let _ = write!(
            body,
            "<tr><td><a href='/a/{}'>{}</a></td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            a.id,
            esc(&a.name),
            esc(&a.level),
            esc(&m("feature_units")),
            esc(&m("neuron_units")),
            esc(&m("proteins")),
            if a.tracks.is_some() { "yes" } else { "no (code set not found)" }
        );
    }
    body.push_str("</table>");
    Ok(page("atlases", &body))
}

pub(crate) fn go_link(term: &str) -> String {
    format!(
        "<a href='https://www.ebi.ac.uk/QuickGO/term/{}'>{}</a>",
        url(term),
        esc(term)
    )
}

pub(crate) fn pfam_chip(family: &str) -> String {
    format!(
        "<a class=chip href='https://www.ebi.ac.uk/interpro/entry/pfam/{}'>{}</a>",
        url(family),
        esc(family)
    )
}

pub(crate) const UNIT_HEADER: &str = "<tr><th>unit</th><th>kind</th><th>density</th><th>max</th><th>best GO term</th><th>q</th><th>sig. GO</th><th>Pfam</th><th>q</th><th>concept</th><th>F1</th><th>family F1</th><th>pattern</th><th>description</th><th>score</th></tr>";

pub(crate) fn unit_tr(u: &UnitRow, atlas_name: Option<&str>) -> String {
    let mut desc = u.description.clone().unwrap_or_default();
    if desc.chars().count() > 80 {
        desc = desc.chars().take(80).collect::<String>() + "…";
    }
    format!(
        "<tr class=unit><td><a href='/a/{a}/unit/{unit}'>{prefix}{kind} {idx}</a>{dead}</td><td>{kind}</td><td class=n>{density}</td><td class=n>{max}</td>\
         <td>{go} {go_name}</td><td class=n>{go_q}</td><td class=n>{sig}</td><td>{pfam}</td><td class=n>{pfam_q}</td><td>{concept}</td><td class=n>{f1}</td><td class=n>{fam}</td>\
         <td>{pattern}</td><td>{desc}</td><td class=n>{score}</td></tr>",
        a = u.atlas,
        unit = u.unit,
        prefix = atlas_name.map(|n| format!("{} · ", esc(n))).unwrap_or_default(),
        kind = esc(&u.kind),
        idx = u.idx,
        dead = if u.dead { " <span class=muted>(dead)</span>" } else { "" },
        density = num(u.density),
        max = num(u.max),
        go = u.go.as_deref().map(go_link).unwrap_or_default(),
        go_name = esc(u.go_name.as_deref().unwrap_or("")),
        go_q = opt(u.go_q),
        sig = u.go_significant,
        pfam = u.pfam.as_deref().map(pfam_chip).unwrap_or_default(),
        pfam_q = opt(u.pfam_q),
        concept = esc(u.concept.as_deref().unwrap_or("")),
        f1 = opt(u.concept_f1),
        fam = opt(u.family_f1),
        pattern = esc(u.pattern.as_deref().unwrap_or("")),
        desc = esc(&desc),
        score = opt(u.score),
    )
}

/// `/search?q=`: units whose stored GO tests (p < 0.05; q shown), Pfam families or description match, and
/// proteins whose accession, families or name match, over every atlas.
pub fn search(s: &AppState, q: &str) -> WebResult<String> {
    if q.len() > 200 {
        return Err(WebError::BadRequest(
            "the search text is longer than 200 bytes".into(),
        ));
    }
    let mut body = format!("<h1>Search</h1><form action='/search'><input name=q value='{}' size=40> <button>search</button></form>", esc(q));
    let Some(query) = TextQuery::parse(q)? else {
        body.push_str("<p class=muted>Type a GO id or name, a Pfam id, an accession or words of a description.</p>");
        return Ok(page("search", &body));
    };
    let found = s.index.search(&query, SEARCH_UNITS, SEARCH_PROTEINS);
    let (units, proteins) = (found.units, found.proteins);
    let _ = write!(
        body,
        "<h2>Units ({}{})</h2><table id=units>{UNIT_HEADER}",
        units.len(),
        if found.units_total > units.len() {
            format!(" of {}, best GO q first", found.units_total)
        } else {
            String::new()
        }
    );
    for u in &units {
        let name = s.atlases.get(u.atlas).map(|a| a.name.as_str());
        body.push_str(&unit_tr(u, if s.atlases.len() > 1 { name } else { None }));
    }
    let _ = write!(body, "</table><h2>Proteins ({})</h2><table id=proteins><tr><th>protein</th><th>atlas</th><th>length</th><th>families</th><th>name</th></tr>", proteins.len());
    for (a, p) in &proteins {
        let (acc, len, fam, name) = (&p.accession, p.length, &p.families, &p.name);
        let atlas = s.atlases.get(*a).map(|x| x.name.as_str()).unwrap_or("");
        let _ = write!(
            body,
            "<tr><td><a href='/a/{a}/protein/{}'>{}</a></td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            url(acc),
            esc(acc),
            esc(atlas),
            len.map(|l| l.to_string()).unwrap_or_default(),
            fam.split(';').filter(|f| !f.is_empty()).map(pfam_chip).collect::<String>(),
            esc(name)
        );
    }
    body.push_str("</table>");
    Ok(page(&format!("search {q}"), &body))
}

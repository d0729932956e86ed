//! `/a/{atlas}/protein/{accession}`: every unit that fires on one protein, with residue tracks.

use std::fmt::Write;

use super::pfam_chip;
use crate::error::{WebError, WebResult};
use crate::html::{esc, num, page, track, url};
use crate::index::ProteinEntry;
use crate::server::AppState;

/// Units listed (most active first).
const UNITS: usize = 40;

/// Renders the page.
pub fn render(s: &AppState, atlas: usize, accession: &str) -> WebResult<String> {
    let a = s.atlas(atlas)?;
    if accession.len() > 64 {
        return Err(WebError::BadRequest(
            "an accession is at most 64 bytes".into(),
        ));
    }
    let Some(ProteinEntry {
        index: protein,
        length,
        families,
        name,
        ..
    }) = s.index.protein(atlas, accession)?
    else {
        return Err(WebError::NotFound(format!(
            "{} has no protein {accession:?}",
            a.name
        )));
    };
    // (unit, kind, index, activation, max of the unit, best GO name), most active (relative to
    // the unit's max) first; a unit of max 0 last (SQL: x / 0 is NULL).
    let relative = |activation: f64, max: f64| (max != 0.0).then(|| activation / max);
    let mut tops: Vec<_> = s
        .index
        .tops(atlas, *protein)
        .iter()
        .filter_map(|t| s.index.unit(atlas, t.unit).map(|u| (t, u)))
        .collect();
    tops.sort_by(|(x, u), (y, v)| {
        match (relative(x.activation, u.max), relative(y.activation, v.max)) {
            (Some(a), Some(b)) => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
            (a, b) => b.is_some().cmp(&a.is_some()),
        }
    });
    let mut units: Vec<(i64, String, i64, f64, f64, String)> = tops
        .iter()
        .map(|(t, u)| {
            let go = u.go_name.clone().unwrap_or_default();
            (t.unit, u.kind.clone(), u.idx, t.activation, u.max, go)
        })
        .collect();
    // Every feature stored in the protein's codes, when the code set is here.
    if let Some(on) = a.tracks.as_ref().and_then(|t| t.features_on(accession)) {
        units.retain(|u| u.1 != "feature");
        let mut features = Vec::new();
        for &(index, v) in on.iter().take(UNITS) {
            let unit = a.feature_offset + index;
            let (max, go) = match s.index.unit(atlas, unit) {
                Some(u) => (u.max, u.go_name.clone().unwrap_or_default()),
                None => (v as f64, String::new()),
            };
            features.push((unit, "feature".to_string(), index, v as f64, max, go));
        }
        features.extend(units);
        units = features;
    }
    let mut b = format!(
        "<p><a href='/a/{atlas}'>{}</a></p><h1>{}</h1><p>{}{} residues · {} · \
         <a href='https://www.uniprot.org/uniprotkb/{u}'>UniProt</a> · <a href='https://alphafold.ebi.ac.uk/entry/{u}'>AlphaFold DB</a></p>",
        esc(&a.name),
        esc(accession),
        if name.trim().is_empty() { String::new() } else { format!("{} · ", esc(name.trim())) },
        length.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
        families.split(';').filter(|f| !f.is_empty()).map(pfam_chip).collect::<String>(),
        u = url(accession)
    );
    let _ = write!(b, "<h2>Units that fire ({})</h2><table id=units><tr><th>unit</th><th>activation</th><th>of unit max</th><th>best GO term</th></tr>", units.len().min(UNITS));
    let tracks = a.tracks.as_ref().filter(|t| t.residue);
    for (unit, kind, index, v, max, go) in units.iter().take(UNITS) {
        let _ = write!(
            b,
            "<tr><td><a href='/a/{atlas}/unit/{unit}'>{} {index}</a></td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(kind), num(*v), num(if *max > 0.0 { v / max } else { 0.0 }), esc(go)
        );
        if let Some(t) = tracks {
            if let Some(values) = t.values(accession, kind, *index) {
                let _ = write!(
                    b,
                    "<tr><td></td><td colspan=3>{}</td></tr>",
                    track(t.sequence(accession), &values, *max as f32)
                );
            }
        }
    }
    b.push_str("</table>");
    Ok(page(accession, &b))
}

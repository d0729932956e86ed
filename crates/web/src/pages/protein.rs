//! `/a/{atlas}/protein/{accession}`: every unit that fires on one protein, with residue tracks.

use std::fmt::Write;

use rusqlite::params;

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
    }) = s.index.protein(atlas, accession)?
    else {
        return Err(WebError::NotFound(format!(
            "{} has no protein {accession:?}",
            a.name
        )));
    };
    // (unit, kind, index, activation, max of the unit, best GO name)
    let mut units: Vec<(i64, String, i64, f64, f64, String)> = s.index.with(|c| {
        let mut st = c.prepare(
            "SELECT t.unit, u.kind, u.idx, t.activation, u.max, COALESCE(u.go_name, '') FROM tops t
             JOIN units u ON u.atlas = t.atlas AND u.unit = t.unit
             WHERE t.atlas = ?1 AND t.protein = ?2 ORDER BY t.activation / u.max DESC",
        )?;
        let rows = st
            .query_map(params![atlas, protein], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })?;
    // Every feature stored in the protein's codes, when the code set is here.
    if let Some(on) = a.tracks.as_ref().and_then(|t| t.features_on(accession)) {
        units.retain(|u| u.1 != "feature");
        let mut features = Vec::new();
        s.index.with(|c| {
            let mut st = c.prepare(
                "SELECT max, COALESCE(go_name, '') FROM units WHERE atlas = ?1 AND unit = ?2",
            )?;
            for &(index, v) in on.iter().take(UNITS) {
                let unit = a.feature_offset + index;
                let (max, go): (f64, String) = st
                    .query_row(params![atlas, unit], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap_or((v as f64, String::new()));
                features.push((unit, "feature".to_string(), index, v as f64, max, go));
            }
            Ok(())
        })?;
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

//! `/sequence`: paste a sequence, see its features with residue tracks (needs `--model` and
//! `--sae`).

use std::fmt::Write;

use crate::error::{WebError, WebResult};
use crate::html::{esc, num, page, track};
use crate::live::MAX_RESIDUES;
use crate::server::AppState;

/// Features shown.
const SHOWN: usize = 30;

/// The form, and the result when a sequence was posted.
pub fn render(s: &AppState, posted: Option<&str>) -> WebResult<String> {
    let Some(live) = &s.live else {
        return Ok(page("your sequence", "<h1>Your sequence</h1><p>Start the server with <code>--model M --sae DIR</code> to encode pasted sequences.</p>"));
    };
    let text = posted.unwrap_or("");
    let mut b = format!(
        "<h1>Your sequence</h1><p class=muted>layer {} {} · {} level · {} features</p>\
         <form method=post action='/sequence'><textarea name=sequence rows=5 cols=90 placeholder='MKT... or FASTA'>{}</textarea><br><button>encode</button></form>",
        live.layer, live.site.name(), if live.residue { "residue" } else { "protein" }, live.dictionary.d_sae, esc(text)
    );
    let Some(text) = posted else {
        return Ok(page("your sequence", &b));
    };
    let sequence: String = text
        .lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if sequence.is_empty() || sequence.chars().count() > MAX_RESIDUES {
        return Err(WebError::BadRequest(format!(
            "give 1 to {MAX_RESIDUES} residues"
        )));
    }
    let encoded = live.encode(&sequence)?;
    let _ = write!(b, "<h2>{} features fire on {} residues</h2><table id=features><tr><th>feature</th><th>max</th></tr>", encoded.features.len(), encoded.residues);
    for (index, max, values) in encoded.features.iter().take(SHOWN) {
        let link = match live.atlas {
            Some(a) => {
                let offset = s.atlases[a].feature_offset;
                format!(
                    "<a href='/a/{a}/unit/{}'>feature {index}</a>",
                    offset + *index as i64
                )
            }
            None => format!("feature {index}"),
        };
        let _ = write!(
            b,
            "<tr><td>{link}</td><td class=n>{}</td></tr>",
            num(*max as f64)
        );
        if live.residue {
            let _ = write!(
                b,
                "<tr><td></td><td>{}</td></tr>",
                track(Some(&sequence), values, *max)
            );
        }
    }
    b.push_str("</table>");
    Ok(page("your sequence", &b))
}

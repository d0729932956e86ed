//! `/a/{atlas}/unit/{unit}`: one feature or neuron.

use std::fmt::Write;

use rusqlite::{Connection, OptionalExtension};

use super::{go_link, pfam_chip};
use crate::atlas::Atlas;
use crate::error::{WebError, WebResult};
use crate::html::{esc, histogram, num, opt, page, track, url};
use crate::server::AppState;

/// One stored example of the unit.
struct Example {
    accession: String,
    length: Option<i64>,
    activation: f64,
    position: Option<i64>,
    kind: String,
}

/// Top examples drawn with residue tracks.
const TOP_TRACKS: usize = 10;

fn examples(c: &Connection, unit: i64) -> rusqlite::Result<Vec<Example>> {
    let mut st = c.prepare(
        "SELECT p.accession, p.length, e.activation, e.position, e.kind FROM examples e
         JOIN proteins p ON p.protein = e.protein WHERE e.unit = ?1 ORDER BY e.kind, e.rank, e.activation DESC",
    )?;
    let rows = st.query_map([unit], |r| {
        Ok(Example {
            accession: r.get(0)?,
            length: r.get(1)?,
            activation: r.get(2)?,
            position: r.get(3)?,
            kind: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// The unit's activation over every protein when the atlas stores it (`protein_activations`).
fn all_activations(
    a: &Atlas,
    c: &Connection,
    unit: i64,
) -> rusqlite::Result<Option<(Vec<f64>, String)>> {
    if !a.has_protein_activations {
        return Ok(None);
    }
    let blob: Option<(Vec<u8>, String)> = c
        .query_row(
            "SELECT activations, pooling FROM protein_activations WHERE unit = ?1",
            [unit],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let proteins: f64 = a
        .meta
        .get("proteins")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    Ok(blob.map(|(b, pooling)| {
        let mut v: Vec<f64> = b
            .chunks_exact(4)
            .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]) as f64)
            .collect();
        v.resize((proteins as usize).max(v.len()), 0.0);
        (v, pooling)
    }))
}

fn protein_links(acc: &str) -> String {
    format!(
        "<a href='https://www.uniprot.org/uniprotkb/{u}'>UniProt</a> · <a href='https://alphafold.ebi.ac.uk/entry/{u}'>AlphaFold</a>",
        u = url(acc)
    )
}

/// The example table, with a residue track under each row when the sets were found.
fn example_rows(a: &Atlas, kind: &str, index: i64, max: f64, list: &[&Example], out: &mut String) {
    out.push_str("<table class=examples><tr><th>#</th><th>protein</th><th>length</th><th>activation</th><th>max at</th><th>links</th></tr>");
    for (i, e) in list.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td class=n>{}</td><td><a href='/a/{}/protein/{}'>{}</a></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            i + 1,
            a.id,
            url(&e.accession),
            esc(&e.accession),
            e.length.map(|l| l.to_string()).unwrap_or_default(),
            num(e.activation),
            e.position.map(|p| (p + 1).to_string()).unwrap_or_default(),
            protein_links(&e.accession)
        );
        if let Some(t) = a.tracks.as_ref().filter(|t| t.residue) {
            if let Some(values) = t.values(&e.accession, kind, index) {
                let _ = write!(
                    out,
                    "<tr><td></td><td colspan=5>{}</td></tr>",
                    track(t.sequence(&e.accession), &values, max as f32)
                );
            }
        }
    }
    out.push_str("</table>");
}

/// Renders the page.
pub fn render(s: &AppState, atlas: usize, unit: i64) -> WebResult<String> {
    let a = s.atlas(atlas)?;
    a.with(|c| {
        let row = c
            .query_row(
                r#"SELECT kind, "index", density, max, mean, dead, active_proteins, study_size FROM units WHERE unit = ?1"#,
                [unit],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?, r.get::<_, f64>(3)?,
                        r.get::<_, f64>(4)?, r.get::<_, i64>(5)?, r.get::<_, i64>(6)?, r.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((kind, index, density, max, mean, dead, active, study)) = row else {
            return Err(WebError::NotFound(format!("{} has no unit {unit}", a.name)));
        };
        let mut b = format!(
            "<p><a href='/a/{atlas}'>{}</a></p><h1 id=title>{kind} {index} <span class=muted>(unit {unit})</span></h1>\
             <p>density {} · max {} · mean {} · active on {active} proteins · study set {study}{}</p>",
            esc(&a.name), num(density), num(max), num(mean), if dead != 0 { " · <b>dead</b>" } else { "" }
        );
        // Description.
        if a.has_descriptions {
            let mut st = c.prepare("SELECT text, model, pearson, spearman, auroc FROM descriptions WHERE unit = ?1 ORDER BY pearson IS NULL, pearson DESC")?;
            let rows = st.query_map([unit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<f64>>(2)?, r.get::<_, Option<f64>>(3)?, r.get::<_, Option<f64>>(4)?)))?;
            for row in rows {
                let (text, model, pearson, spearman, auroc) = row?;
                let _ = write!(b, "<p class=desc id=description>{} <span class=muted>({}; Pearson r {}, Spearman {}, AUROC {})</span></p>", esc(&text), esc(&model), opt(pearson), opt(spearman), opt(auroc));
            }
        }
        let examples = examples(c, unit)?;
        // Histogram.
        let (values, caption) = match all_activations(a, c, unit)? {
            Some((v, pooling)) => (v, format!("activation over every protein (pooling: {pooling}; zeros included)")),
            None => {
                let v: Vec<f64> = examples.iter().map(|e| e.activation).collect();
                (v, format!("activation of the {} stored examples (top, quantile and random samples)", examples.len()))
            }
        };
        b.push_str("<h2>Activation</h2>");
        b.push_str(&histogram(&values, 30, &caption));
        // Pattern class.
        if let Some((class, ex, frac)) = c
            .query_row("SELECT class, examples, mean_fraction_active FROM unit_patterns WHERE unit = ?1", [unit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?)))
            .optional()?
        {
            let _ = write!(b, "<p>activation pattern: <b id=pattern>{}</b> <span class=muted>({ex} examples, mean fraction active {})</span></p>", esc(&class), num(frac));
        }
        // Top examples and lower ranges.
        let top: Vec<&Example> = examples.iter().filter(|e| e.kind == "top").take(TOP_TRACKS).collect();
        b.push_str("<h2>Top proteins</h2>");
        example_rows(a, &kind, index, max, &top, &mut b);
        let lower: Vec<&Example> = examples.iter().filter(|e| e.kind == "quantile" && e.activation < 0.75 * max && e.activation > 0.0).collect();
        if !lower.is_empty() {
            b.push_str("<h2>Lower activation ranges</h2>");
            for (lo, hi) in [(0.5, 0.75), (0.25, 0.5), (0.0, 0.25)] {
                let band: Vec<&Example> = lower.iter().copied().filter(|e| e.activation >= lo * max && e.activation < hi * max).take(4).collect();
                if !band.is_empty() {
                    let _ = write!(b, "<h3>{}–{}% of max</h3>", (lo * 100.0) as i64, (hi * 100.0) as i64);
                    example_rows(a, &kind, index, max, &band, &mut b);
                }
            }
        }
        // Enrichment.
        let mut st = c.prepare(
            "SELECT e.annotation, e.term, COALESCE(g.name, ''), COALESCE(g.namespace, ''), e.study_count, e.study_size,
                    e.population_count, e.population_size, e.fold, e.p, e.q
             FROM enrichment e LEFT JOIN go_terms g ON g.id = e.term WHERE e.unit = ?1 ORDER BY e.ln_q, e.ln_p LIMIT 100",
        )?;
        let rows = st
            .query_map([unit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, i64>(4)?, r.get::<_, i64>(5)?, r.get::<_, i64>(6)?, r.get::<_, i64>(7)?, r.get::<_, f64>(8)?, r.get::<_, f64>(9)?, r.get::<_, f64>(10)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let pfams: Vec<&str> = rows.iter().filter(|r| r.0 == "pfam" && r.10 < a.alpha).map(|r| r.1.as_str()).collect();
        if !pfams.is_empty() {
            let _ = write!(b, "<h2>Pfam</h2><p id=pfam>{}</p>", pfams.iter().map(|p| pfam_chip(p)).collect::<String>());
        }
        let _ = write!(b, "<h2>GO enrichment</h2><p class=muted>one-sided hypergeometric, q &lt; {} significant; tests with p &lt; 0.05 stored</p>\
            <table id=enrichment><tr><th>term</th><th>name</th><th>namespace</th><th>study</th><th>population</th><th>fold</th><th>p</th><th>q</th></tr>", a.alpha);
        for (ann, term, name, ns, sc, ss, pc, ps, fold, p, q) in rows.iter().filter(|r| r.0 == "go") {
            let _ = ann;
            let _ = write!(
                b,
                "<tr class='{}'><td>{}</td><td>{}</td><td>{}</td><td class=n>{sc}/{ss}</td><td class=n>{pc}/{ps}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                if *q < a.alpha { "go sig" } else { "go" },
                go_link(term), esc(name), esc(ns), num(*fold), num(*p), num(*q)
            );
        }
        b.push_str("</table>");
        // Concepts.
        let mut st = c.prepare("SELECT concept, threshold, precision, recall, f1, domain_f1 FROM concepts WHERE unit = ?1 ORDER BY f1 DESC LIMIT 20")?;
        let concepts = st
            .query_map([unit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, f64>(2)?, r.get::<_, f64>(3)?, r.get::<_, f64>(4)?, r.get::<_, f64>(5)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        if !concepts.is_empty() {
            b.push_str("<h2>Residue concepts</h2><table id=concepts><tr><th>concept</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>domain F1</th></tr>");
            for (concept, t, p, r, f1, df1) in &concepts {
                let _ = write!(b, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", esc(concept), num(*t), num(*p), num(*r), num(*f1), num(*df1));
            }
            b.push_str("</table>");
        }
        // Family specificity.
        let mut st = c.prepare("SELECT family, threshold, precision, recall, f1, family_size FROM family_specificity WHERE unit = ?1 ORDER BY f1 DESC")?;
        let families = st
            .query_map([unit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, f64>(2)?, r.get::<_, f64>(3)?, r.get::<_, f64>(4)?, r.get::<_, i64>(5)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        if !families.is_empty() {
            b.push_str("<h2>Family F1 (InterProt)</h2><table id=families><tr><th>family</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>members</th></tr>");
            for (f, t, p, r, f1, n) in &families {
                let _ = write!(b, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{n}</td></tr>", pfam_chip(f), num(*t), num(*p), num(*r), num(*f1));
            }
            b.push_str("</table>");
        }
        // Similar features.
        if kind == "feature" {
            let similar: Vec<(i64, f64)> = if let Some(n) = s.similar.get(&atlas) {
                n.get(index as usize).map(|l| l.iter().map(|x| (a.feature_offset + x.other as i64, x.cosine as f64)).collect()).unwrap_or_default()
            } else if a.has_similar_units {
                let mut st = c.prepare("SELECT other, cosine FROM similar_units WHERE unit = ?1 ORDER BY rank")?;
                let rows = st.query_map([unit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
                rows
            } else {
                Vec::new()
            };
            b.push_str("<h2>Most similar features (decoder cosine)</h2>");
            if similar.is_empty() {
                b.push_str("<p class=muted>Start the server with <code>--sae DIR</code> (or store <code>similar_units</code> in the atlas) to see them.</p>");
            } else {
                b.push_str("<table id=similar><tr><th>feature</th><th>cosine</th><th>best GO term</th></tr>");
                for (other, cosine) in &similar {
                    let summary = s.index.unit(atlas, *other);
                    let term = summary.and_then(|u| u.go.as_deref());
                    let name = summary.and_then(|u| u.go_name.as_deref());
                    let _ = write!(b, "<tr><td><a href='/a/{atlas}/unit/{other}'>feature {}</a></td><td class=n>{}</td><td>{} {}</td></tr>", other - a.feature_offset, num(*cosine), term.map(go_link).unwrap_or_default(), esc(name.unwrap_or("")));
                }
                b.push_str("</table>");
            }
        }
        if kind == "feature" && s.flow.describes(atlas) {
            b.push_str(&super::flow::feature_section(s, atlas, index));
        }
        Ok(page(&format!("{kind} {index} · {}", a.name), &b))
    })
}

//! `/compare`: the atlases side by side, features and neurons, from their `meta`, `units` and
//! `enrichment` tables (computed once at startup).

use std::fmt::Write;

use crate::atlas::Atlas;
use crate::error::WebResult;
use crate::html::{esc, num, page};
use crate::server::AppState;

/// One kind's numbers in one atlas.
#[derive(Clone, Debug)]
pub struct KindSummary {
    pub kind: String,
    pub units: i64,
    pub dead: i64,
    /// Units with at least one GO term at q < alpha.
    pub with_go: i64,
    /// Distinct GO terms significant for some unit.
    pub distinct_go: i64,
}

/// One atlas's row.
#[derive(Clone, Debug)]
pub struct AtlasSummary {
    pub name: String,
    pub level: String,
    pub proteins: String,
    pub kinds: Vec<KindSummary>,
}

/// Reads one atlas's numbers.
pub fn summarise(a: &Atlas) -> WebResult<AtlasSummary> {
    let kinds = a.with(|c| {
        let mut st = c.prepare(
            "SELECT u.kind, COUNT(*), SUM(u.dead),
                    SUM(EXISTS (SELECT 1 FROM enrichment e WHERE e.unit = u.unit AND e.annotation = 'go' AND e.q < ?1))
             FROM units u GROUP BY u.kind ORDER BY u.kind",
        )?;
        let rows = st
            .query_map([a.alpha], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut distinct = c.prepare(
            "SELECT COUNT(DISTINCT e.term) FROM enrichment e JOIN units u ON u.unit = e.unit
             WHERE u.kind = ?1 AND e.annotation = 'go' AND e.q < ?2",
        )?;
        let mut out = Vec::new();
        for (kind, units, dead, with_go) in rows {
            let distinct_go: i64 = distinct.query_row(rusqlite::params![kind, a.alpha], |r| r.get(0))?;
            out.push(KindSummary { kind, units, dead, with_go, distinct_go });
        }
        Ok(out)
    })?;
    Ok(AtlasSummary {
        name: a.name.clone(),
        level: a.level.clone(),
        proteins: a.meta.get("proteins").cloned().unwrap_or_default(),
        kinds,
    })
}

/// Renders the table.
pub fn render(s: &AppState) -> WebResult<String> {
    let mut b = String::from(
        "<h1>Compare atlases</h1><p class=muted>significant: some GO term at q &lt; alpha (BH within kind and source)</p>\
         <table id=compare><tr><th>atlas</th><th>level</th><th>proteins</th><th>kind</th><th>units</th><th>dead fraction</th>\
         <th>share with a significant GO term</th><th>distinct significant GO terms</th></tr>",
    );
    for (i, a) in s.compare.iter().enumerate() {
        for k in &a.kinds {
            let frac = |n: i64| {
                if k.units > 0 {
                    n as f64 / k.units as f64
                } else {
                    0.0
                }
            };
            let _ = write!(
                b,
                "<tr><td><a href='/a/{i}'>{}</a></td><td>{}</td><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                esc(&a.name), esc(&a.level), esc(&a.proteins), esc(&k.kind), k.units, num(frac(k.dead)), num(frac(k.with_go)), k.distinct_go
            );
        }
    }
    b.push_str("</table>");
    probes_table(s, &mut b);
    b.push_str("<p><a id=depth-link href='/flow#depth'>GO depth by layer</a> (mean and median depth of significant GO terms per atlas and kind, with the links between layers' features)</p>");
    if s.compare_full.is_some() {
        b.push_str("<p><a id=full href='/compare/full'>Full comparison</a> (FVE, L0, GO depth, Pfam and concept coverage, description scores: <code>plmscope compare</code>'s report)</p>");
    }
    Ok(page("compare", &b))
}

/// The probes the atlases hold (`plmscope probe --atlas`): per label set, every probed set
/// ranked by held-out AUROC across atlases, features and neurons together.
fn probes_table(s: &AppState, b: &mut String) {
    let Some(rows) = &s.compare_rows else {
        return;
    };
    let ranked = plmscope_interpret::compare::ranked_probes(rows);
    if ranked.is_empty() {
        return;
    }
    b.push_str(
        "<h2>Probes</h2><p class=muted>L1 logistic probes on held-out proteins \
         (<code>plmscope probe --atlas</code>); units for 95%: the fewest units on the L1 path \
         reaching 95% of its best AUROC</p><table id=probes><tr><th>labels</th><th>level</th>\
         <th>atlas</th><th>kind</th><th>set</th><th>AUROC</th><th>F1</th><th>nonzero</th>\
         <th>units for 95%</th><th>best path AUROC</th></tr>",
    );
    for (i, _, p) in ranked {
        let name = s.atlases.get(i).map_or("", |a| a.name.as_str());
        let _ = write!(
            b,
            "<tr class=probe><td>{}</td><td>{}</td><td><a href='/a/{i}'>{}</a></td><td>{}</td>\
             <td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&p.labels),
            esc(&p.level),
            esc(name),
            esc(&p.kind),
            esc(&p.set),
            num(p.auroc),
            num(p.f1),
            p.nonzero,
            p.units_for_95,
            num(p.best_auroc)
        );
    }
    b.push_str("</table>");
}

//! The GO depth profile by layer (the seed paper's "abstraction by layer"): for each atlas and
//! kind of unit, the mean and median depth of its significant GO terms, as computed by
//! `plmscope compare` ([`plmscope_interpret::compare`]), drawn against the layer.

use std::fmt::Write;

use plmscope_interpret::compare::{AtlasComparison, UnitStats};

use crate::html::esc;
use crate::server::AppState;

/// One (atlas, kind) with depths.
struct Point<'a> {
    atlas: usize,
    name: &'a str,
    kind: &'static str,
    model: String,
    level: String,
    layer: Option<u32>,
    stats: &'a UnitStats,
    mean: f64,
    median: f64,
}

const COLOURS: [&str; 6] = [
    "#2f6fbf", "#e07b00", "#2e8b57", "#8e44ad", "#c0392b", "#555555",
];

fn points<'a>(s: &'a AppState, rows: &'a [AtlasComparison]) -> Vec<Point<'a>> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let name = s.atlases.get(i).map_or("", |a| a.name.as_str());
        for (kind, stats) in [("feature", &r.features), ("neuron", &r.neurons)] {
            let Some(stats) = stats else { continue };
            let (Some(mean), Some(median)) = (stats.go_mean_depth, stats.go_median_depth) else {
                continue;
            };
            let level = r
                .source
                .level
                .clone()
                .or_else(|| s.atlases.get(i).map(|a| a.level.clone()))
                .unwrap_or_default();
            out.push(Point {
                atlas: i,
                name,
                kind,
                model: r.source.model.clone().unwrap_or_else(|| "model ?".into()),
                level,
                layer: r.source.layer,
                stats,
                mean,
                median,
            });
        }
    }
    out
}

/// A model's name without its folders (`facebook/esm2_t6_8M_UR50D` → `esm2_t6_8M_UR50D`).
fn last_part(model: &str) -> &str {
    model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model)
}

/// Series: one line per (model, level, kind), points in layer order.
fn plot(points: &[Point<'_>]) -> String {
    let placed: Vec<&Point<'_>> = points.iter().filter(|p| p.layer.is_some()).collect();
    if placed.is_empty() {
        return String::new();
    }
    let layers = placed.iter().filter_map(|p| p.layer);
    let (lo, hi) = (
        layers.clone().min().unwrap_or(0) as f64,
        layers.max().unwrap_or(0) as f64,
    );
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let top = placed
        .iter()
        .map(|p| p.mean.max(p.median))
        .fold(1.0, f64::max)
        .ceil()
        + 1.0;
    let (w, h, left, bottom, right) = (700.0, 240.0, 40.0, 30.0, 300.0);
    let x = |layer: u32| left + 20.0 + (layer as f64 - lo) / (hi - lo) * (w - left - right - 40.0);
    let y = |depth: f64| 10.0 + (1.0 - depth / top) * (h - bottom - 10.0);
    let mut svg = format!(
        "<svg id=depth-plot width={w} height={h} viewBox='0 0 {w} {h}' role=img font-size=11>\
         <line x1={left} y1={:.1} x2={:.1} y2={:.1} stroke='#999'/><line x1={left} y1=10 x2={left} y2={:.1} stroke='#999'/>",
        y(0.0),
        w - right,
        y(0.0),
        y(0.0)
    );
    for d in 0..=top as u32 {
        let _ = write!(
            svg,
            "<text x={:.1} y={:.1} text-anchor=end>{d}</text>",
            left - 4.0,
            y(d as f64) + 4.0
        );
    }
    let mut shown: Vec<u32> = placed.iter().filter_map(|p| p.layer).collect();
    shown.sort_unstable();
    shown.dedup();
    for l in shown {
        let _ = write!(
            svg,
            "<text x={:.1} y={:.1} text-anchor=middle>{l}</text>",
            x(l),
            h - bottom + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x={:.1} y={:.1} text-anchor=middle>layer</text><text x=10 y={:.1} transform='rotate(-90 10 {:.1})' text-anchor=middle>GO depth</text>",
        (left + w - right) / 2.0,
        h - 2.0,
        y(top / 2.0),
        y(top / 2.0)
    );
    let mut series: Vec<(String, &'static str, &str)> = placed
        .iter()
        .map(|p| (p.model.clone(), p.kind, p.level.as_str()))
        .collect();
    series.sort();
    series.dedup();
    for (i, (model, kind, level)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut members: Vec<&&Point<'_>> = placed
            .iter()
            .filter(|p| p.model == *model && p.kind == *kind && p.level == *level)
            .collect();
        members.sort_by_key(|p| (p.layer, p.atlas));
        for (value, dash) in [(true, ""), (false, " stroke-dasharray='4 3'")] {
            let line: Vec<String> = members
                .iter()
                .map(|p| {
                    let v = if value { p.mean } else { p.median };
                    format!("{:.1},{:.1}", x(p.layer.unwrap_or(0)), y(v))
                })
                .collect();
            let _ = write!(
                svg,
                "<polyline class=series data-series='{}' data-statistic='{}' points='{}' fill=none stroke='{colour}' stroke-width=2{dash} />",
                esc(&format!("{model} · {level} · {kind}")),
                if value { "mean" } else { "median" },
                line.join(" ")
            );
        }
        for p in &members {
            let (px, my, dy) = (x(p.layer.unwrap_or(0)), y(p.mean), y(p.median));
            let _ = write!(
                svg,
                "<circle class=point data-atlas='{}' data-kind='{}' data-mean='{:.3}' data-median='{:.3}' cx={px:.1} cy={my:.1} r=4 fill='{colour}'>\
                 <title>{}: layer {}, {}s, mean GO depth {:.2}, median {:.1}</title></circle>\
                 <rect x={:.1} y={:.1} width=7 height=7 fill=white stroke='{colour}'><title>{}: median {:.1}</title></rect>",
                p.atlas,
                p.kind,
                p.mean,
                p.median,
                esc(p.name),
                p.layer.unwrap_or(0),
                p.kind,
                p.mean,
                p.median,
                px - 3.5,
                dy - 3.5,
                esc(p.name),
                p.median
            );
        }
        let ly = 16.0 + i as f64 * 16.0;
        let _ = write!(
            svg,
            "<line x1={:.1} y1={ly:.1} x2={:.1} y2={ly:.1} stroke='{colour}' stroke-width=2 /><text x={:.1} y={:.1}>{}</text>",
            w - right + 10.0,
            w - right + 30.0,
            w - right + 34.0,
            ly + 4.0,
            esc(&format!("{} · {level} · {kind}s", last_part(model)))
        );
    }
    let _ = write!(
        svg,
        "<text x={:.1} y={:.1} fill='#777'>solid: mean · dashed, squares: median</text></svg>",
        w - right + 10.0,
        16.0 + series.len() as f64 * 16.0 + 6.0
    );
    svg
}

/// The section: plot and table, or why there is none.
pub fn section(s: &AppState) -> String {
    let mut b = String::from("<h2 id=depth>GO depth of significant terms by layer</h2>");
    let Some(rows) = s.compare_rows.as_deref() else {
        b.push_str("<p class=muted>The atlases could not be compared at startup (see the server's log), so there are no GO depths.</p>");
        return b;
    };
    let points = points(s, rows);
    if points.is_empty() {
        b.push_str("<p class=muted>No GO depths: no atlas has a significant GO term whose depth is known. Depths need the GO ontology \
                    (the OBO each atlas names in its meta <code>inputs</code>, role <code>go</code>) to be found from here.</p>");
        return b;
    }
    b.push_str("<p class=muted>Depth: longest path to the root in the atlas's GO graph (goatools' <code>depth</code>), over the significant \
                (unit, term) pairs of each kind, as <code>plmscope compare</code> computes it.</p>");
    b.push_str(&plot(&points));
    if points.iter().any(|p| p.layer.is_none()) {
        b.push_str("<p class=muted>Atlases whose layer is unknown (no meta <code>source</code>) are in the table only.</p>");
    }
    b.push_str("<table id=depth-table><tr><th>atlas</th><th>model</th><th>layer</th><th>level</th><th>kind</th><th>units with a significant GO term</th><th>distinct terms</th><th>mean depth</th><th>median depth</th></tr>");
    for p in &points {
        let _ = write!(
            b,
            "<tr><td><a href='/a/{}'>{}</a></td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.2}</td><td class=n>{:.1}</td></tr>",
            p.atlas,
            esc(p.name),
            esc(&p.model),
            p.layer.map(|l| l.to_string()).unwrap_or("?".into()),
            esc(&p.level),
            p.kind,
            p.stats.go_units,
            p.stats.go_distinct_terms,
            p.mean,
            p.median
        );
    }
    b.push_str("</table>");
    b
}

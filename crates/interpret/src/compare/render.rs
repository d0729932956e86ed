//! The comparison as TSV (one row per atlas, a header line) and as one self-contained HTML
//! page: the table, then one inline SVG plot per metric across layers, one line per
//! dictionary, level and kind of unit.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{AtlasComparison, UnitStats};

type Metric = (&'static str, fn(&UnitStats) -> Option<f64>);
type AtlasMetric = (&'static str, fn(&AtlasComparison) -> Option<f64>);
/// Series name → (layer, value) points.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

const UNIT_METRICS: [Metric; 13] = [
    ("units", |s| Some(s.units as f64)),
    ("dead_fraction", |s| Some(s.dead_fraction)),
    ("go_share", |s| Some(s.go_share)),
    ("go_units", |s| Some(s.go_units as f64)),
    ("go_distinct_terms", |s| Some(s.go_distinct_terms as f64)),
    ("go_mean_depth", |s| s.go_mean_depth),
    ("go_median_depth", |s| s.go_median_depth),
    ("pfam_share", |s| Some(s.pfam_share)),
    ("pfam_distinct", |s| Some(s.pfam_distinct as f64)),
    ("concept_share", |s| Some(s.concept_share)),
    ("concept_distinct", |s| Some(s.concept_distinct as f64)),
    ("descriptions", |s| Some(s.descriptions as f64)),
    ("description_mean_pearson", |s| s.description_mean_pearson),
];

fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v}"),
        Some(v) => format!("{v:.6}"),
        None => String::new(),
    }
}

fn dictionary_name(row: &AtlasComparison) -> String {
    // `.../dictionaries/<name>/<layer.site.level>`: the study's dictionary name.
    row.source
        .dictionary
        .as_deref()
        .and_then(|d| {
            let p = std::path::Path::new(d);
            p.parent()?.file_name()?.to_str().map(str::to_string)
        })
        .unwrap_or_else(|| "neurons".to_string())
}

/// One header line and one line per atlas, tab-separated; empty cells for missing values.
pub fn to_tsv(rows: &[AtlasComparison]) -> String {
    let mut header = vec![
        "atlas",
        "model",
        "layer",
        "site",
        "level",
        "dictionary",
        "architecture",
        "d_sae",
        "fve",
        "l0",
        "train_dead_fraction",
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    for kind in ["feature", "neuron"] {
        header.extend(UNIT_METRICS.iter().map(|(m, _)| format!("{kind}_{m}")));
    }
    let mut out = header.join("\t");
    out.push('\n');
    for row in rows {
        let s = &row.source;
        let mut cells = vec![
            row.atlas.display().to_string(),
            s.model.clone().unwrap_or_default(),
            s.layer.map(|l| l.to_string()).unwrap_or_default(),
            s.site.clone().unwrap_or_default(),
            s.level.clone().unwrap_or_default(),
            s.dictionary.clone().unwrap_or_default(),
            s.architecture.clone().unwrap_or_default(),
            s.d_sae.map(|d| d.to_string()).unwrap_or_default(),
            number(s.fve),
            number(s.l0),
            number(s.dead_fraction),
        ];
        for stats in [&row.features, &row.neurons] {
            cells.extend(
                UNIT_METRICS
                    .iter()
                    .map(|(_, f)| number(stats.as_ref().and_then(f))),
            );
        }
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| c.replace(['\t', '\n'], " "))
            .collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A line plot of `series` (name → (layer, value) points), 360×220 pixels.
fn svg_plot(title: &str, series: &Series) -> String {
    let points = series.values().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return String::new();
    }
    if x1 == x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let (w, h, left, right, top, bottom) = (360.0, 220.0, 48.0, 120.0, 24.0, 30.0);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let sy = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"{t}\"><text x=\"{left}\" y=\"16\" font-size=\"12\" \
         font-weight=\"bold\">{t}</text>",
        t = escape(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"{left}\" y=\"{ty}\" font-size=\"10\">layer {x0}</text>\
         <text x=\"{r}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{x1}</text>\
         <text x=\"{lx}\" y=\"{b}\" font-size=\"10\" text-anchor=\"end\">{ya}</text>\
         <text x=\"{lx}\" y=\"{tt}\" font-size=\"10\" text-anchor=\"end\">{yb}</text>",
        b = h - bottom,
        r = w - right,
        ty = h - bottom + 14.0,
        lx = left - 4.0,
        tt = top + 8.0,
        ya = number(Some(y0)),
        yb = (y1 * 1000.0).round() / 1000.0
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut pts = pts.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            line.join(" ")
        );
        for &(x, y) in &pts {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} layer {x}: \
                 {}</title></circle>",
                sx(x),
                sy(y),
                escape(name),
                number(Some(y))
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"{colour}\">{}</text>",
            w - right + 6.0,
            top + 12.0 + 12.0 * i as f64,
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One self-contained HTML page (no scripts, no external files).
pub fn to_html(rows: &[AtlasComparison]) -> String {
    let tsv = to_tsv(rows);
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>plmscope compare</title>\
         <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;\
         font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\
         th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:12px}</style></head>\
         <body><h1>Atlases compared</h1>",
    );
    html.push_str(&html_table(&tsv));
    html.push_str("<h2>Across layers</h2><div class=\"plots\">");
    let mut plots: Vec<(String, Series)> = Vec::new();
    let dictionary_metrics: [AtlasMetric; 3] = [
        ("fve", |r| r.source.fve),
        ("l0", |r| r.source.l0),
        ("train_dead_fraction", |r| r.source.dead_fraction),
    ];
    for (name, f) in dictionary_metrics {
        let mut series = Series::new();
        for row in rows {
            if let (Some(layer), Some(v)) = (row.source.layer, f(row)) {
                series
                    .entry(dictionary_name(row))
                    .or_default()
                    .push((layer as f64, v));
            }
        }
        plots.push((name.to_string(), series));
    }
    for (name, f) in UNIT_METRICS.iter().skip(1) {
        let mut series = Series::new();
        for row in rows {
            let Some(layer) = row.source.layer else {
                continue;
            };
            for (kind, stats) in [("features", &row.features), ("neurons", &row.neurons)] {
                if let Some(v) = stats.as_ref().and_then(f) {
                    let label = if kind == "neurons" {
                        format!("neurons {}", row.source.level.as_deref().unwrap_or(""))
                    } else {
                        dictionary_name(row)
                    };
                    series.entry(label).or_default().push((layer as f64, v));
                }
            }
        }
        plots.push((name.to_string(), series));
    }
    for (name, series) in plots.iter().filter(|(_, s)| !s.is_empty()) {
        html.push_str(&svg_plot(name, series));
    }
    html.push_str("</div>");
    let probes = probes_to_tsv(rows);
    if probes.lines().count() > 1 {
        // Which set (features or neurons, which layer) predicts each label best: the seed's
        // question of choosing a model and layer for a task.
        html.push_str("<h2 id=\"probes\">Probes</h2>");
        html.push_str(&html_table(&probes));
    }
    html.push_str("</body></html>\n");
    html
}

/// A TSV (header line first) as an HTML table, cells escaped.
fn html_table(tsv: &str) -> String {
    let mut html = String::from("<table>");
    for (i, line) in tsv.lines().enumerate() {
        let tag = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for cell in line.split('\t') {
            let _ = write!(html, "<{tag}>{}</{tag}>", escape(cell));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The probes stored in the atlases, one line each (a header line first), grouped by labels
/// and level and ranked by held-out AUROC across atlases.
pub fn probes_to_tsv(rows: &[AtlasComparison]) -> String {
    let mut out = String::from(
        "labels\tlevel\trank\tauroc\tf1\tnonzero\tunits_for_95\tbest_auroc\tkind\tunits\tc\t\
         test_proteins\tlayer\tset\tatlas\n",
    );
    for (row, rank, p) in super::ranked_probes(rows) {
        let row = &rows[row];
        let cells = [
            p.labels.clone(),
            p.level.clone(),
            rank.to_string(),
            number(Some(p.auroc)),
            number(Some(p.f1)),
            p.nonzero.to_string(),
            p.units_for_95.to_string(),
            number(Some(p.best_auroc)),
            p.kind.clone(),
            p.units.to_string(),
            number(Some(p.c)),
            p.test_proteins.to_string(),
            row.source.layer.map(|l| l.to_string()).unwrap_or_default(),
            p.set.clone(),
            row.atlas.display().to_string(),
        ];
        let cells: Vec<String> = cells.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

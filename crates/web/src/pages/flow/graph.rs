//! The layered graph: columns (dictionaries) by layer, nodes ordered to cross few edges, and
//! the SVG.

use std::collections::HashMap;
use std::fmt::Write;

use plmscope_interpret::flow::LinkKind;

use super::{node_id, node_text};
use crate::flow::{FlowGraph, Link, Node};
use crate::html::{esc, num};
use crate::server::AppState;

/// Layout, in SVG pixels.
const COLUMN: f64 = 320.0;
const LABEL: f64 = 170.0;
const ROW: f64 = 20.0;
const HEAD: f64 = 40.0;

/// Columns (ends) left to right: by layer (unknown last), then sources before the ends they
/// link into (longest chain of drawn links from an end no link enters), then by name.
fn columns(g: &FlowGraph, links: &[&Link]) -> Vec<u32> {
    let mut ends: Vec<u32> = links
        .iter()
        .flat_map(|l| [l.source.end, l.target.end])
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let mut depth: HashMap<u32, usize> = ends.iter().map(|&e| (e, 0)).collect();
    for _ in 0..ends.len() {
        for l in links.iter().filter(|l| l.source.end != l.target.end) {
            let d = depth[&l.source.end] + 1;
            let t = depth.entry(l.target.end).or_default();
            *t = (*t).max(d).min(ends.len());
        }
    }
    ends.sort_by_key(|&e| {
        let end = &g.ends[e as usize];
        (end.layer.unwrap_or(u32::MAX), depth[&e], end.name.clone())
    });
    ends
}

/// Rows within each column: the first by total strength, each next one by the mean row of the
/// nodes it is linked to in columns already placed (fewer crossings), then strength.
fn rows(links: &[&Link], columns: &[u32]) -> HashMap<Node, usize> {
    let mut strength: HashMap<Node, f64> = HashMap::new();
    for l in links {
        *strength.entry(l.source).or_default() += l.weight.abs();
        *strength.entry(l.target).or_default() += l.weight.abs();
    }
    let mut placed: HashMap<Node, usize> = HashMap::new();
    for &end in columns {
        let mut nodes: Vec<(Node, f64, f64)> = strength
            .iter()
            .filter(|(n, _)| n.end == end)
            .map(|(&n, &w)| {
                let neighbours: Vec<usize> = links
                    .iter()
                    .filter_map(|l| match (l.source == n, l.target == n) {
                        (true, _) => placed.get(&l.target),
                        (_, true) => placed.get(&l.source),
                        _ => None,
                    })
                    .copied()
                    .collect();
                let mean = if neighbours.is_empty() {
                    f64::MAX
                } else {
                    neighbours.iter().sum::<usize>() as f64 / neighbours.len() as f64
                };
                (n, mean, w)
            })
            .collect();
        nodes.sort_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
        for (row, (n, _, _)) in nodes.into_iter().enumerate() {
            placed.insert(n, row);
        }
    }
    placed
}

/// One kind's strongest links as an SVG graph.
pub(super) fn svg(
    s: &AppState,
    g: &FlowGraph,
    kind: LinkKind,
    group: usize,
    links: &[&Link],
) -> String {
    let columns = columns(g, links);
    let rows = rows(links, &columns);
    let x_of: HashMap<u32, f64> = columns
        .iter()
        .enumerate()
        .map(|(i, &e)| (e, 12.0 + i as f64 * COLUMN))
        .collect();
    let y = |n: &Node| HEAD + rows[n] as f64 * ROW;
    let x = |n: &Node| x_of[&n.end];
    let tallest = rows.values().copied().max().unwrap_or(0) + 1;
    let (width, height) = (
        columns.len() as f64 * COLUMN,
        HEAD + tallest as f64 * ROW + 10.0,
    );
    let mut svg = format!(
        "<svg class=flow id='flow-{k}-{group}' data-kind='{k}' width={width} height={height} viewBox='0 0 {width} {height}' role=img font-size=11>",
        k = kind.as_str()
    );
    for &e in &columns {
        let end = &g.ends[e as usize];
        let layer = end
            .layer
            .map(|l| format!("layer {l}"))
            .unwrap_or("layer ?".into());
        let name = end
            .atlas
            .and_then(|a| s.atlases.get(a))
            .map_or(end.name.as_str(), |a| a.name.as_str());
        let _ = write!(
            svg,
            "<text class=column x={:.1} y=14 font-weight=600>{}</text><text x={:.1} y=28 fill='#777'>{}<title>{}</title></text>",
            x_of[&e],
            esc(&layer),
            x_of[&e],
            esc(&short(name, 40)),
            esc(&end.name)
        );
    }
    let strongest = links.iter().map(|l| l.weight.abs()).fold(0.0, f64::max);
    for l in links {
        let (x1, y1) = (x(&l.source) + LABEL, y(&l.source));
        let (x2, y2) = (x(&l.target) - 6.0, y(&l.target));
        let bend = ((x2 - x1).abs() / 2.0).max(30.0);
        let width = 0.6 + 5.0 * l.weight.abs() / strongest.max(f64::MIN_POSITIVE);
        let colour = if l.weight < 0.0 { "#c0392b" } else { "#2f6fbf" };
        let _ = write!(
            svg,
            "<path class=edge data-source='{}' data-target='{}' data-weight='{}' d='M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}' \
             fill=none stroke='{colour}' stroke-opacity=0.6 stroke-width={width:.2}><title>{} → {}: {} {}{}</title></path>",
            esc(&node_id(g, l.source)),
            esc(&node_id(g, l.target)),
            l.weight,
            x1 + bend,
            x2 - bend,
            esc(&node_id(g, l.source)),
            esc(&node_id(g, l.target)),
            kind.as_str(),
            num(l.weight),
            l.p.map(|p| format!(", p {}", num(p))).unwrap_or_default()
        );
    }
    let mut nodes: Vec<&Node> = rows.keys().collect();
    nodes.sort();
    for n in nodes {
        let t = node_text(s, g, *n);
        let body = format!(
            "<g class=node data-node='{}'><circle cx={:.1} cy={:.1} r=5 fill='#243b53'/><text x={:.1} y={:.1}>{}</text><title>{}</title></g>",
            esc(&node_id(g, *n)),
            x(n),
            y(n),
            x(n) + 9.0,
            y(n) + 4.0,
            esc(&t.label),
            esc(&t.title)
        );
        match t.href {
            Some(href) => {
                let _ = write!(svg, "<a href='{href}'>{body}</a>");
            }
            None => svg.push_str(&body),
        }
    }
    svg.push_str("</svg>");
    svg
}

fn short(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(chars - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

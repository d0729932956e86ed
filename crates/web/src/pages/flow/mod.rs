//! `/flow`: the strongest links `plmscope flow` stored, as a layered graph in inline SVG (one
//! column per dictionary, ordered by layer; one node per feature, labelled with its best GO
//! term; edges as wide as the link is strong), a table of the same links, and the GO depth
//! profile by layer ([`super::depth`]).

mod graph;

use std::fmt::Write;

use plmscope_interpret::flow::LinkKind;
use serde::Deserialize;

use crate::error::{WebError, WebResult};
use crate::flow::{FlowGraph, Link, Node, KINDS};
use crate::html::{esc, num, opt, page};
use crate::server::AppState;

/// Links drawn per kind unless `top=` says otherwise, and the most it may say.
const TOP: usize = 40;
const MAX_TOP: usize = 200;

/// The page's query string.
#[derive(Deserialize, Default, Debug)]
pub struct FlowQuery {
    pub kind: Option<String>,
    pub top: Option<String>,
}

fn parse(q: &FlowQuery) -> WebResult<(Vec<LinkKind>, usize)> {
    let kinds = match q.kind.as_deref().map(str::trim) {
        None | Some("") => KINDS.to_vec(),
        Some(k) => vec![KINDS.into_iter().find(|x| x.as_str() == k).ok_or_else(|| {
            WebError::BadRequest(format!(
                "kind must be decoder_cosine or transcoder, not {k:?}"
            ))
        })?],
    };
    let top = match q.top.as_deref().map(str::trim) {
        None | Some("") => TOP,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                WebError::BadRequest(format!("top must be 1 to {MAX_TOP}, not {t:?}"))
            })?,
    };
    Ok((kinds, top))
}

/// What a node shows: its feature page, label and tooltip.
pub(super) struct NodeText {
    pub href: Option<String>,
    pub label: String,
    pub title: String,
}

pub(super) fn node_text(s: &AppState, g: &FlowGraph, n: Node) -> NodeText {
    let end = &g.ends[n.end as usize];
    let served = end.atlas.and_then(|a| s.atlases.get(a));
    let unit = served.map(|a| a.feature_offset + n.index as i64);
    let summary = served.zip(unit).and_then(|(a, u)| s.index.unit(a.id, u));
    let go_name = summary.and_then(|u| u.go_name.as_deref()).unwrap_or("");
    let mut label = format!("f{} {go_name}", n.index);
    if label.chars().count() > LABEL_CHARS {
        label = label.chars().take(LABEL_CHARS - 1).collect::<String>() + "…";
    }
    let mut title = format!("{} · feature {}", end.name, n.index);
    if let Some(u) = summary.filter(|u| u.go.is_some()) {
        let go = u.go.as_deref().unwrap_or("");
        let _ = write!(title, " · {go} {go_name} (q {})", opt(u.go_q));
    }
    NodeText {
        href: served
            .zip(unit)
            .map(|(a, u)| format!("/a/{}/unit/{u}", a.id)),
        label,
        title,
    }
}

/// `end#index`: how the page names a node in data attributes and the table.
pub(super) fn node_id(g: &FlowGraph, n: Node) -> String {
    format!("{}#{}", g.ends[n.end as usize].name, n.index)
}

/// A link end in a table cell: the feature's page when its atlas is served.
pub(crate) fn node_cell(s: &AppState, g: &FlowGraph, n: Node) -> String {
    let t = node_text(s, g, n);
    let end = &g.ends[n.end as usize];
    let layer = end.layer.map(|l| format!("L{l} ")).unwrap_or_default();
    let name = format!("{layer}feature {}", n.index);
    let go = s
        .atlases
        .get(end.atlas.unwrap_or(usize::MAX))
        .and_then(|a| s.index.unit(a.id, a.feature_offset + n.index as i64))
        .and_then(|u| u.go_name.clone())
        .unwrap_or_default();
    match t.href {
        Some(href) => format!(
            "<a href='{href}' title='{}'>{}</a> <span class=muted>{}</span>",
            esc(&t.title),
            esc(&name),
            esc(&go)
        ),
        None => format!(
            "<span title='{}'>{}</span> <span class=muted>({}, not served)</span>",
            esc(&t.title),
            esc(&name),
            esc(&end.name)
        ),
    }
}

/// Characters of a node's label.
const LABEL_CHARS: usize = 26;

/// One group of dictionaries joined by links of one kind: its strongest links drawn, and listed.
fn group_section(s: &AppState, kind: LinkKind, i: usize, group: &[u32], top: usize) -> String {
    let g = &s.flow;
    let of_group = |l: &&Link| l.kind == kind && group.contains(&l.source.end);
    let links: Vec<&Link> = g.links.iter().filter(of_group).take(top).collect();
    let total = g.links.iter().filter(of_group).count();
    let mut names: Vec<(u32, &str)> = group
        .iter()
        .map(|&e| {
            let end = &g.ends[e as usize];
            let name = end
                .atlas
                .and_then(|a| s.atlases.get(a))
                .map_or(end.name.as_str(), |a| a.name.as_str());
            (end.layer.unwrap_or(u32::MAX), name)
        })
        .collect();
    names.sort();
    let names: Vec<String> = names.iter().map(|(_, n)| esc(n)).collect();
    let mut b = format!(
        "<h2>{}: {} <span class=muted>(strongest {} of {total})</span></h2><div style='overflow-x:auto'>{}</div>\
         <table class=links id='links-{}-{i}'><tr><th>source</th><th>target</th><th>weight</th><th>p</th></tr>",
        match kind {
            LinkKind::DecoderCosine => "Decoder matches",
            LinkKind::Transcoder => "Transcoder paths",
        },
        names.join(" · "),
        links.len(),
        graph::svg(s, g, kind, i, &links),
        kind.as_str()
    );
    for l in &links {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            node_cell(s, g, l.source),
            node_cell(s, g, l.target),
            num(l.weight),
            opt(l.p)
        );
    }
    b.push_str("</table>");
    b
}

/// Renders the page.
pub fn render(s: &AppState, q: &FlowQuery) -> WebResult<String> {
    let (kinds, top) = parse(q)?;
    let g = &s.flow;
    let mut b = String::from("<h1>Flow between layers</h1>");
    if g.links.is_empty() {
        let _ = write!(
            b,
            "<p id=no-flow>No atlas given holds feature links ({}). <code>plmscope flow --source DICT --target DICT --atlas ATLAS</code> \
             writes them: features of dictionaries of adjacent layers matched by decoder direction, or, with <code>--weights</code>, \
             transcoder paths attributed to source features; serve that atlas to see them here.</p>",
            if g.holders.is_empty() { "no flow_links table" } else { "flow_links is empty" }
        );
    } else {
        let holders: Vec<String> = g
            .holders
            .iter()
            .filter_map(|&a| s.atlases.get(a))
            .map(|a| format!("<a href='/a/{}'>{}</a>", a.id, esc(&a.name)))
            .collect();
        let _ = write!(
            b,
            "<p class=muted>{} links stored by <code>plmscope flow</code> in {}. Columns are dictionaries by layer; \
             each node is a feature, labelled with its best GO term; edges are as wide as the link is strong \
             (decoder cosine, or decoder · encoder weight for transcoders; red: negative). \
             <a href='/flow?top={MAX_TOP}'>more links</a></p>",
            g.links.len(),
            holders.join(", ")
        );
        for kind in kinds {
            for (i, group) in g.components(kind).iter().enumerate() {
                let _ = write!(b, "{}", group_section(s, kind, i, group, top));
            }
        }
    }
    b.push_str(&super::depth::section(s));
    Ok(page("flow", &b))
}

/// Links shown per direction on a feature page.
const FEATURE_LINKS: usize = 5;

/// The feature page's section: the strongest links into and out of feature `index` of `atlas`.
pub(crate) fn feature_section(s: &AppState, atlas: usize, index: i64) -> String {
    let g = &s.flow;
    let Ok(index) = u32::try_from(index) else {
        return String::new();
    };
    let mut b = String::from("<h2 id=flow>Flow between layers</h2>");
    let mut any = false;
    for (incoming, title, id) in [
        (true, "From features of other dictionaries", "flow-in"),
        (false, "Into features of other dictionaries", "flow-out"),
    ] {
        let mut links: Vec<&Link> = g
            .nodes_of(atlas, index)
            .flat_map(|n| g.links_of(n, incoming))
            .collect();
        links.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        links.truncate(FEATURE_LINKS);
        if links.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(
            b,
            "<h3>{title}</h3><table id={id}><tr><th>feature</th><th>link</th><th>weight</th><th>p</th></tr>"
        );
        for l in links {
            let other = if incoming { l.source } else { l.target };
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                node_cell(s, g, other),
                l.kind.as_str(),
                num(l.weight),
                opt(l.p)
            );
        }
        b.push_str("</table>");
    }
    if !any {
        b.push_str("<p class=muted>No stored flow link touches this feature.</p>");
    }
    b.push_str("<p><a href='/flow'>All links, drawn by layer</a></p>");
    b
}

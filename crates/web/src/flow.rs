//! The links `plmscope flow` stored in atlases (`flow_links`, written by
//! [`plmscope_interpret::flow::write_flow_links`]), read once at startup: each link joins a
//! feature of one dictionary to a feature of another, the dictionaries named as `flow` was given
//! them (`--source-atlas`/`--target-atlas`, by default the dictionary folders). A name is
//! matched to an atlas served here by the atlas's file name or path, or by the dictionary the
//! atlas records (meta `source`, or its code set's header), so nodes can link to feature pages
//! and carry their layer.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use plmscope_interpret::compare::AtlasComparison;
use plmscope_interpret::flow::LinkKind;
use rusqlite::Connection;

use crate::atlas::{resolve_input, Atlas};
use crate::error::{WebError, WebResult};

/// One side of links: a dictionary as `flow_links` names it.
#[derive(Clone, Debug)]
pub struct End {
    pub name: String,
    /// The atlas served here that describes it, when one does.
    pub atlas: Option<usize>,
    /// Its model layer (the atlas's meta `source`), when known.
    pub layer: Option<u32>,
}

/// A feature of an end: (end, feature index in that dictionary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub end: u32,
    pub index: u32,
}

/// One stored link.
#[derive(Clone, Debug)]
pub struct Link {
    pub source: Node,
    pub target: Node,
    pub weight: f64,
    /// Null p-value of a decoder match.
    pub p: Option<f64>,
    pub kind: LinkKind,
}

/// Every link of every atlas given, strongest (|weight|) first.
#[derive(Default)]
pub struct FlowGraph {
    pub ends: Vec<End>,
    pub links: Vec<Link>,
    /// Atlases holding a `flow_links` table.
    pub holders: Vec<usize>,
    /// Links touching each node, strongest first.
    by_node: HashMap<Node, Vec<u32>>,
}

/// The kinds, in the order the page draws them.
pub const KINDS: [LinkKind; 2] = [LinkKind::DecoderCosine, LinkKind::Transcoder];

fn kind_of(text: &str) -> Option<LinkKind> {
    KINDS.into_iter().find(|k| k.as_str() == text)
}

type Row = (String, i64, String, i64, f64, Option<f64>, String);

fn read_links(c: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut st = c.prepare(
        "SELECT source_atlas, source_unit, target_atlas, target_unit, weight, p, kind
         FROM flow_links",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    rows.collect()
}

/// The dictionaries an atlas records: meta `source`'s, and its code set's.
fn dictionaries(a: &Atlas, compared: Option<&AtlasComparison>) -> Vec<String> {
    let recorded = compared.and_then(|c| c.source.dictionary.clone());
    let from_codes = a.tracks.as_ref().and_then(|t| t.dictionary_id());
    recorded.into_iter().chain(from_codes).collect()
}

fn same_path(a: Option<std::path::PathBuf>, b: Option<std::path::PathBuf>) -> bool {
    match (
        a.and_then(|p| p.canonicalize().ok()),
        b.and_then(|p| p.canonicalize().ok()),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The served atlas a `flow_links` name (read from the atlas at `holder`) refers to.
fn resolve(
    name: &str,
    holder: &Path,
    atlases: &[Atlas],
    compared: &[AtlasComparison],
) -> Option<usize> {
    let trimmed = name.trim_end_matches('/');
    let by_file = atlases.iter().find(|a| {
        a.name == trimmed
            || a.path.to_string_lossy() == trimmed
            || a.path
                .file_name()
                .is_some_and(|f| f.to_string_lossy() == trimmed)
    });
    if let Some(a) = by_file {
        return Some(a.id);
    }
    let named = resolve_input(holder, trimmed);
    atlases
        .iter()
        .find(|a| {
            dictionaries(a, compared.get(a.id)).iter().any(|d| {
                d.trim_end_matches('/') == trimmed
                    || same_path(named.clone(), resolve_input(&a.path, d))
            })
        })
        .map(|a| a.id)
}

impl FlowGraph {
    /// Reads `flow_links` from every atlas that has it; the same link stored twice is kept once.
    /// `compared` (`plmscope compare`'s rows, in atlas order) gives layers and dictionaries.
    pub fn load(atlases: &[Atlas], compared: &[AtlasComparison]) -> WebResult<FlowGraph> {
        let mut graph = FlowGraph::default();
        let mut end_of: HashMap<String, u32> = HashMap::new();
        let mut seen = HashSet::new();
        for a in atlases.iter().filter(|a| a.has_flow_links) {
            graph.holders.push(a.id);
            let rows = a
                .with(|c| Ok(read_links(c)?))
                .map_err(|e| WebError::input(&a.path, format!("reading flow_links: {e}")))?;
            for (source, su, target, tu, weight, p, kind) in rows {
                let Some(kind) = kind_of(&kind) else { continue };
                let mut end = |name: String| -> u32 {
                    *end_of.entry(name.clone()).or_insert_with(|| {
                        let atlas = resolve(&name, &a.path, atlases, compared);
                        let layer = atlas
                            .and_then(|i| compared.get(i))
                            .and_then(|c| c.source.layer);
                        graph.ends.push(End { name, atlas, layer });
                        graph.ends.len() as u32 - 1
                    })
                };
                let (Ok(su), Ok(tu)) = (u32::try_from(su), u32::try_from(tu)) else {
                    continue;
                };
                let source = Node {
                    end: end(source),
                    index: su,
                };
                let target = Node {
                    end: end(target),
                    index: tu,
                };
                if seen.insert((source, target, kind.as_str())) {
                    graph.links.push(Link {
                        source,
                        target,
                        weight,
                        p,
                        kind,
                    });
                }
            }
        }
        graph
            .links
            .sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        for (i, l) in graph.links.iter().enumerate() {
            graph.by_node.entry(l.source).or_default().push(i as u32);
            if l.target != l.source {
                graph.by_node.entry(l.target).or_default().push(i as u32);
            }
        }
        Ok(graph)
    }

    /// Groups of ends joined by links of `kind` (each drawn as a graph of its own, so the
    /// protein-level pair of layers does not run across the residue-level one), ordered by
    /// their lowest layer, then name; ends within a group by index.
    pub fn components(&self, kind: LinkKind) -> Vec<Vec<u32>> {
        let mut parent: Vec<u32> = (0..self.ends.len() as u32).collect();
        fn root(parent: &mut [u32], mut e: u32) -> u32 {
            while parent[e as usize] != e {
                parent[e as usize] = parent[parent[e as usize] as usize];
                e = parent[e as usize];
            }
            e
        }
        let mut used = vec![false; self.ends.len()];
        for l in self.links.iter().filter(|l| l.kind == kind) {
            used[l.source.end as usize] = true;
            used[l.target.end as usize] = true;
            let (a, b) = (
                root(&mut parent, l.source.end),
                root(&mut parent, l.target.end),
            );
            parent[a.max(b) as usize] = a.min(b);
        }
        let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for e in 0..self.ends.len() as u32 {
            if used[e as usize] {
                let r = root(&mut parent, e);
                groups.entry(r).or_default().push(e);
            }
        }
        let mut out: Vec<Vec<u32>> = groups.into_values().collect();
        let key = |group: &Vec<u32>| {
            group
                .iter()
                .map(|&e| {
                    let end = &self.ends[e as usize];
                    (end.layer.unwrap_or(u32::MAX), end.name.clone())
                })
                .min()
        };
        out.sort_by_cached_key(key);
        out
    }

    /// The node of a feature of a served atlas, for each end that atlas describes.
    pub fn nodes_of(&self, atlas: usize, index: u32) -> impl Iterator<Item = Node> + '_ {
        self.ends
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.atlas == Some(atlas))
            .map(move |(end, _)| Node {
                end: end as u32,
                index,
            })
    }

    /// Whether some end is the atlas served as `atlas`.
    pub fn describes(&self, atlas: usize) -> bool {
        self.ends.iter().any(|e| e.atlas == Some(atlas))
    }

    /// Links into (`incoming`) or out of a node, strongest first.
    pub fn links_of(&self, node: Node, incoming: bool) -> impl Iterator<Item = &Link> + '_ {
        self.by_node
            .get(&node)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.links[i as usize])
            .filter(move |l| {
                if incoming {
                    l.target == node
                } else {
                    l.source == node
                }
            })
    }
}

//! `/flow` on two small atlases (layers 3 and 6) holding links written by the library
//! (`plmscope_interpret::flow`): decoder matches l3 → l6 stored in l6, transcoder attributions
//! stored in l3, and links to a dictionary that is not served. The SVG's edges and nodes are
//! checked against the `flow_links` rows and the atlases' GO terms, the feature page against
//! its strongest links, and the GO depth profile against `plmscope compare`'s numbers.

mod common;

use std::collections::HashSet;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::get;
use plmscope_interpret::compare::{compare_atlases, record_source, AtlasSource};
use plmscope_interpret::flow::{
    attribute, match_decoders, write_flow_links, Directions, FlowLink, LinkKind, MatchOptions,
};
use plmscope_web::synthetic::{write_synthetic_atlas, SyntheticSize};
use plmscope_web::{spawn_on_loopback, AppState, ServeOptions};
use rusqlite::{params, Connection};

struct Served {
    addr: SocketAddr,
    atlases: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

/// Term t's parent is (t - 1) / 2: a binary tree, so depth(t) = floor(log2(t + 1)).
fn write_obo(path: &Path) {
    let mut obo = String::from("format-version: 1.2\ndata-version: test\n\n");
    for t in 0..3000 {
        let _ = write!(
            obo,
            "[Term]\nid: GO:{t:07}\nname: term {t}\nnamespace: biological_process\n"
        );
        if t > 0 {
            let _ = writeln!(obo, "is_a: GO:{:07} ! parent", (t - 1) / 2);
        }
        obo.push('\n');
    }
    std::fs::write(path, obo).unwrap();
}

fn directions(rows: usize, seed: u64) -> Directions {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data = (0..rows * 8)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Directions::new(rows, 8, data).unwrap()
}

fn atlas(dir: &Path, name: &str, features: usize, layer: u32, obo: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.sqlite"));
    let size = SyntheticSize {
        features,
        neurons: 8,
        proteins: 60,
        examples: 4,
        enrichment: 6,
    };
    write_synthetic_atlas(&path, size).unwrap();
    let inputs = serde_json::json!([{ "path": obo.display().to_string(), "role": "go" }]);
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO meta VALUES ('inputs', ?1)",
            [inputs.to_string()],
        )
        .unwrap();
    record_source(
        &path,
        &AtlasSource {
            model: Some("esm2_t6_8M".into()),
            layer: Some(layer),
            level: Some("residue".into()),
            dictionary: Some(format!("dicts/{name}")),
            ..Default::default()
        },
    )
    .unwrap();
    path
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let obo = dir.path().join("tree.obo");
        write_obo(&obo);
        let l3 = atlas(dir.path(), "l3", 60, 3, &obo);
        let l6 = atlas(dir.path(), "l6", 80, 6, &obo);
        // Named by the dictionary l3 records, and by l6's file name.
        let found = match_decoders(
            &directions(60, 1),
            &directions(80, 2),
            &MatchOptions::default(),
        );
        write_flow_links(&l6, "dicts/l3", "l6", &found.links).unwrap();
        let paths = attribute(&directions(60, 3), &directions(80, 4), 2).unwrap();
        write_flow_links(&l3, "l3", "dicts/l6", &paths).unwrap();
        let away = [FlowLink {
            source: 5,
            target: 7,
            weight: 0.99,
            p: Some(0.001),
            kind: LinkKind::DecoderCosine,
        }];
        write_flow_links(&l6, "l6", "elsewhere/l9", &away).unwrap();
        // A pair of dictionaries linked to nothing else: a graph of its own.
        let apart = [FlowLink {
            source: 1,
            target: 2,
            weight: 0.5,
            p: Some(0.002),
            kind: LinkKind::DecoderCosine,
        }];
        write_flow_links(&l3, "other/a", "other/b", &apart).unwrap();
        let state = AppState::load(&ServeOptions {
            atlases: vec![l3.clone(), l6.clone()],
            ..Default::default()
        })
        .unwrap();
        Served {
            addr: spawn_on_loopback(state).unwrap(),
            atlases: vec![l3, l6],
            _dir: dir,
        }
    })
}

/// (source name, source unit, target name, target unit, weight) of one atlas's links of a kind,
/// strongest first.
fn stored(atlas: &Path, kind: &str) -> Vec<(String, i64, String, i64, f64)> {
    let c = Connection::open(atlas).unwrap();
    let mut st = c
        .prepare(
            "SELECT source_atlas, source_unit, target_atlas, target_unit, weight FROM flow_links
             WHERE kind = ?1 ORDER BY abs(weight) DESC",
        )
        .unwrap();
    st.query_map([kind], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The best GO term (lowest q) of a unit, and its name, read from the atlas.
fn best_go(atlas: &Path, unit: i64) -> Option<(String, String)> {
    let c = Connection::open(atlas).unwrap();
    c.query_row(
        "SELECT e.term, g.name FROM enrichment e JOIN go_terms g ON g.id = e.term
         WHERE e.unit = ?1 AND e.annotation = 'go' ORDER BY e.q LIMIT 1",
        params![unit],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// The edges of each graph of a kind (one graph per group of linked dictionaries).
fn graphs(body: &str, kind: &str) -> Vec<HashSet<String>> {
    body.split("<svg class=flow ")
        .skip(1)
        .filter(|svg| svg.contains(&format!("data-kind='{kind}'")))
        .map(|svg| {
            svg.split("</svg>")
                .next()
                .unwrap()
                .split("<path class=edge ")
                .skip(1)
                .map(|e| e.split(" d='").next().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn edge(source: &str, su: i64, target: &str, tu: i64, weight: f64) -> String {
    format!("data-source='{source}#{su}' data-target='{target}#{tu}' data-weight='{weight}'")
}

#[test]
fn the_graph_draws_the_strongest_stored_links_as_edges_between_labelled_nodes() {
    let s = served();
    let (l3, l6) = (&s.atlases[0], &s.atlases[1]);
    let (status, body) = get(s.addr, "/flow");
    assert_eq!(status, 200, "{body}");
    // Default: the 40 strongest links of each kind (the unserved link of weight 0.99 among them).
    let decoder: Vec<_> = stored(l6, "decoder_cosine");
    assert_eq!(decoder.len(), 81);
    let expected: HashSet<String> = decoder
        .iter()
        .take(40)
        .map(|(a, su, b, tu, w)| edge(a, *su, b, *tu, *w))
        .collect();
    // Catches: links sorted by signed weight or not at all, a top-N cut off by one, unrelated
    // dictionaries drawn into one graph.
    let decoder_graphs = graphs(&body, "decoder_cosine");
    assert_eq!(
        decoder_graphs.len(),
        2,
        "l3 → l6 → l9, and other/a → other/b"
    );
    assert_eq!(decoder_graphs[0], expected);
    assert_eq!(
        decoder_graphs[1],
        HashSet::from([edge("other/a", 1, "other/b", 2, 0.5)])
    );
    let transcoder = stored(l3, "transcoder");
    assert_eq!(transcoder.len(), 160, "2 sources for each of 80 targets");
    let expected: HashSet<String> = transcoder
        .iter()
        .take(40)
        .map(|(a, su, b, tu, w)| edge(a, *su, b, *tu, *w))
        .collect();
    assert_eq!(graphs(&body, "transcoder"), vec![expected]);
    assert!(
        transcoder.iter().take(40).any(|l| l.4 < 0.0) == body.contains("stroke='#c0392b'"),
        "negative weights are drawn red"
    );
    // Columns by layer.
    assert!(body.contains(">layer 3</text>") && body.contains(">layer 6</text>"));
    // Every target of the drawn decoder links is a node linking to its feature page in l6
    // (atlas 1; feature ids are 0 + index), labelled with its best GO term.
    for (_, _, target, tu, _) in decoder.iter().take(40).filter(|l| l.2 == "l6") {
        let node = format!("<a href='/a/1/unit/{tu}'><g class=node data-node='{target}#{tu}'>");
        assert!(body.contains(&node), "{node}");
        if let Some((term, name)) = best_go(l6, *tu) {
            let tooltip = format!("l6 · feature {tu} · {term} {name}");
            assert!(body.contains(&tooltip), "{tooltip}");
        }
    }
    // Sources named by the dictionary l3 records resolve to atlas 0.
    let (_, su, _, _, _) = decoder.iter().find(|l| l.0 == "dicts/l3").unwrap();
    assert!(body.contains(&format!(
        "<a href='/a/0/unit/{su}'><g class=node data-node='dicts/l3#{su}'>"
    )));
    // A dictionary not served: a node without a link, named in the table.
    assert!(body.contains("<g class=node data-node='elsewhere/l9#7'>"));
    assert!(!body.contains("<g class=node data-node='elsewhere/l9#7'><a"));
    assert!(body.contains("(elsewhere/l9, not served)"));
    // More links on request; hostile parameters are 400.
    let (_, all) = get(s.addr, "/flow?kind=decoder_cosine&top=200");
    let sizes: Vec<usize> = graphs(&all, "decoder_cosine")
        .iter()
        .map(HashSet::len)
        .collect();
    assert_eq!(sizes, [81, 1]);
    assert!(!all.contains("data-kind='transcoder'"));
    for bad in [
        "/flow?kind=fish",
        "/flow?top=0",
        "/flow?top=201",
        "/flow?top=%27",
    ] {
        assert_eq!(get(s.addr, bad).0, 400, "{bad}");
    }
}

#[test]
fn a_feature_page_lists_its_strongest_incoming_and_outgoing_links() {
    let s = served();
    let decoder = stored(&s.atlases[1], "decoder_cosine");
    let (_, su, _, tu, _) = decoder.iter().find(|l| l.0 == "dicts/l3").unwrap();
    let (status, body) = get(s.addr, &format!("/a/1/unit/{tu}"));
    assert_eq!(status, 200);
    let incoming = body
        .split("<table id=flow-in>")
        .nth(1)
        .expect("incoming links");
    let incoming = incoming.split("</table>").next().unwrap();
    assert!(
        incoming.contains(&format!("href='/a/0/unit/{su}'")),
        "{incoming}"
    );
    assert!(incoming.contains("decoder_cosine"));
    // l3's feature su: the decoder link leaves it, and its transcoder paths; the 5 strongest
    // are listed.
    let mut out: Vec<(f64, i64)> = decoder
        .iter()
        .filter(|l| l.0 == "dicts/l3" && l.1 == *su)
        .chain(
            stored(&s.atlases[0], "transcoder")
                .iter()
                .filter(|l| l.0 == "l3" && l.1 == *su),
        )
        .map(|l| (l.4, l.3))
        .collect();
    out.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    out.truncate(5);
    let (_, body) = get(s.addr, &format!("/a/0/unit/{su}"));
    let outgoing = body
        .split("<table id=flow-out>")
        .nth(1)
        .expect("outgoing links");
    let outgoing = outgoing.split("</table>").next().unwrap();
    assert_eq!(outgoing.matches("<tr><td>").count(), out.len());
    for (_, target) in &out {
        assert!(
            outgoing.contains(&format!("href='/a/1/unit/{target}'")),
            "{outgoing}"
        );
    }
    assert!(body.contains("href='/flow'"));
}

#[test]
fn the_go_depth_profile_shows_compare_numbers_per_atlas_and_kind() {
    let s = served();
    let rows = compare_atlases(&s.atlases).unwrap();
    let (_, body) = get(s.addr, "/flow");
    assert!(body.contains("<svg id=depth-plot"));
    let mut points = 0;
    for (i, r) in rows.iter().enumerate() {
        for (kind, stats) in [("feature", &r.features), ("neuron", &r.neurons)] {
            let stats = stats.as_ref().unwrap();
            let mean = stats
                .go_mean_depth
                .expect("the OBO is found: depths are known");
            let median = stats.go_median_depth.unwrap();
            let point = format!(
                "data-atlas='{i}' data-kind='{kind}' data-mean='{mean:.3}' data-median='{median:.3}'"
            );
            assert!(body.contains(&point), "{point}");
            points += 1;
        }
    }
    assert_eq!(points, 4);
    assert_eq!(body.matches("<circle class=point ").count(), 4);
    // One line per (model, level, kind) and statistic, through both layers.
    assert_eq!(body.matches("<polyline class=series ").count(), 4);
    let (_, compare) = get(s.addr, "/compare");
    assert!(compare.contains("href='/flow#depth'"));
}

//! The server over loopback on a synthetic atlas with the real schema: every page answers,
//! search finds a GO term, unknown ids get 404, malformed and hostile queries get 4xx (never
//! 500) and change nothing, and 1,000 concurrent requests are all answered.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use common::{get, post_form};
use plmscope_web::synthetic::{write_synthetic_atlas, SyntheticSize};
use plmscope_web::{spawn_on_loopback, AppState, ServeOptions};

struct Served {
    addr: SocketAddr,
    atlas: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let atlas = dir.path().join("synthetic.sqlite");
        let size = SyntheticSize {
            features: 300,
            neurons: 40,
            proteins: 200,
            examples: 10,
            enrichment: 6,
        };
        write_synthetic_atlas(&atlas, size).unwrap();
        let state = AppState::load(&ServeOptions {
            atlases: vec![atlas.clone()],
            ..Default::default()
        })
        .unwrap();
        let addr = spawn_on_loopback(state).unwrap();
        assert!(addr.ip().is_loopback());
        Served {
            addr,
            atlas,
            _dir: dir,
        }
    })
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn every_page_of_the_atlas_answers() {
    let s = served();
    for target in [
        "/",
        "/a/0",
        "/a/0?kind=neuron&sort=density",
        "/compare",
        "/flow",
        "/sequence",
        "/search?q=GO%3A0000003",
        "/a/0/unit/1",
        "/a/0/unit/310",
        "/a/0/protein/P00001",
    ] {
        let (status, body) = get(s.addr, target);
        assert_eq!(status, 200, "{target}: {body}");
        assert!(body.contains("</html>"), "{target}");
    }
    let (_, list) = get(s.addr, "/a/0?kind=feature&sort=go_q");
    assert_eq!(
        list.matches("<tr class=unit>").count(),
        100,
        "one page of 100 units"
    );
    assert!(list.contains("id=next"));
    let (_, flow) = get(s.addr, "/flow");
    assert!(
        flow.contains("id=no-flow") && flow.contains("plmscope flow --source"),
        "without flow_links the page says which command writes them"
    );
    assert!(flow.contains("id=depth"), "the GO depth section is there");
    let (_, neurons) = get(s.addr, "/a/0?kind=neuron");
    assert!(
        neurons.contains("neuron 0") && !neurons.contains(">feature "),
        "kind filter"
    );
}

#[test]
fn search_finds_units_by_go_term_and_proteins_by_accession() {
    let s = served();
    // Which units have GO:... significant? Read the atlas itself.
    let c = rusqlite::Connection::open(&s.atlas).unwrap();
    let (unit, term): (i64, String) = c
        .query_row("SELECT unit, term FROM enrichment WHERE annotation = 'go' AND q < 0.05 ORDER BY q LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let (status, body) = get(s.addr, &format!("/search?q={}", term.replace(':', "%3A")));
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("/a/0/unit/{unit}'")),
        "unit {unit} with {term} not found"
    );
    let (_, body) = get(s.addr, "/search?q=P00042");
    assert!(body.contains("/a/0/protein/P00042"));
    let (_, body) = get(s.addr, "/search?q=binds+motif+5");
    assert!(
        body.contains("Synthetic description"),
        "description text is searched"
    );
}

#[test]
fn the_feature_page_shows_enrichment_examples_and_links() {
    let s = served();
    let c = rusqlite::Connection::open(&s.atlas).unwrap();
    let go_rows: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM enrichment WHERE unit = 7 AND annotation = 'go'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (status, body) = get(s.addr, "/a/0/unit/7");
    assert_eq!(status, 200);
    assert_eq!(body.matches("<tr class='go").count() as i64, go_rows);
    assert!(body.contains("https://www.ebi.ac.uk/QuickGO/term/GO%3A"));
    assert!(
        body.contains("https://www.uniprot.org/uniprotkb/P")
            && body.contains("https://alphafold.ebi.ac.uk/entry/P")
    );
    assert!(body.contains("<svg id=histogram"));
    assert!(body.contains("Synthetic description of unit 7"));
}

#[test]
fn unknown_ids_are_404_and_malformed_ids_400() {
    let s = served();
    assert_eq!(get(s.addr, "/a/0/unit/999999").0, 404);
    assert_eq!(get(s.addr, "/a/7").0, 404);
    assert_eq!(get(s.addr, "/a/0/protein/NOPE").0, 404);
    assert_eq!(get(s.addr, "/nowhere").0, 404);
    assert_eq!(get(s.addr, "/a/0/unit/abc").0, 400);
    assert_eq!(get(s.addr, "/a/x").0, 400);
    assert_eq!(get(s.addr, "/a/0/unit/99999999999999999999999").0, 400);
    assert_eq!(get(s.addr, "/a/0?kind=fish").0, 400);
    assert_eq!(get(s.addr, "/a/0?sort=unit;DROP").0, 400);
    assert_eq!(get(s.addr, "/a/0?min_density=lots").0, 400);
    assert_eq!(get(s.addr, "/a/0?page=-1").0, 400);
}

#[test]
fn hostile_queries_get_4xx_or_harmless_200_and_change_nothing() {
    let s = served();
    let before = sha(&s.atlas);
    let hostile = [
        ("/search?q=%zz", 400),
        ("/search?q=%", 400),
        ("/search?q=a%00b", 400),
        ("/search?q=%FF%FE", 400),
        ("/a/0/protein/P%00", 400),
        ("/a/0?go=%27%3B%20DROP%20TABLE%20units%3B--", 200),
        (
            "/search?q=%27%20OR%201%3D1%3B%20DROP%20TABLE%20units%3B--",
            200,
        ),
        ("/search?q=%22unbalanced", 200),
        ("/search?q=NEAR(a%20b)%20OR%20*", 200),
        ("/a/0/protein/%27%20OR%20%271%27%3D%271", 404),
        ("/a/0?pfam=x%27)%20UNION%20SELECT%20*%20FROM%20meta--", 200),
    ];
    for (target, expected) in hostile {
        let (status, body) = get(s.addr, target);
        assert_eq!(status, expected, "{target}: {body}");
    }
    let (_, body) = get(s.addr, "/a/0?go=%27%3B%20DROP%20TABLE%20units%3B--");
    assert!(
        body.contains("0 units match"),
        "a SQL fragment matches nothing"
    );
    let (status, _) = get(s.addr, &format!("/search?q={}", "a".repeat(500)));
    assert_eq!(status, 400, "over-long search text");
    let (status, _) = post_form(s.addr, "/sequence", "sequence=MKV");
    assert_eq!(status, 200, "no model: the page says how to enable it");
    let (status, _) = post_form(s.addr, "/sequence", "nothing=1");
    assert!((400..500).contains(&status));
    assert_eq!(sha(&s.atlas), before, "the atlas is unchanged");
    assert_eq!(get(s.addr, "/a/0").0, 200, "still up");
}

#[test]
fn a_thousand_concurrent_requests_are_all_answered() {
    let s = served();
    let addr = s.addr;
    let targets = [
        "/a/0",
        "/a/0/unit/3",
        "/search?q=synthetic",
        "/a/0/protein/P00010",
        "/compare",
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses: Vec<u16> = runtime.block_on(async move {
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let target = targets[i % targets.len()];
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let request =
                        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                    stream.write_all(request.as_bytes()).await.unwrap();
                    let mut buffer = Vec::new();
                    stream.read_to_end(&mut buffer).await.unwrap();
                    let text = String::from_utf8_lossy(&buffer);
                    text.split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(statuses.len(), 1000);
    assert!(
        statuses.iter().all(|&s| s == 200),
        "{:?}",
        statuses.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
}

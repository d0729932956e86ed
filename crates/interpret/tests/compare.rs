//! `compare` numbers equal what the atlas tables give, queried independently, on a hand-built
//! atlas whose answers are known; and TSV/HTML carry them, probes included.

use plmscope_interpret::atlas::schema::CREATE_TABLES;
use plmscope_interpret::compare::{
    compare_atlases_with, probes_to_tsv, record_source, to_html, to_tsv, AtlasSource,
    CompareOptions,
};
use plmscope_interpret::probe::atlas::write_probes;
use plmscope_interpret::probe::{
    run_probe, ProbeData, ProbeOptions, ProbeReport, UnitKind, UnitValues,
};
use rusqlite::{params, Connection};

const OBO: &str = "format-version: 1.2\ndata-version: test\n\n\
[Term]\nid: GO:0008150\nname: biological_process\nnamespace: biological_process\n\n\
[Term]\nid: GO:0000001\nname: a\nnamespace: biological_process\nis_a: GO:0008150 ! bp\n\n\
[Term]\nid: GO:0000002\nname: b\nnamespace: biological_process\nis_a: GO:0000001 ! a\n\n\
[Term]\nid: GO:0000003\nname: c\nnamespace: biological_process\nis_a: GO:0000002 ! b\n";

/// 10 features (2 dead), 4 neurons; GO: features 0,1 at q < 0.05 (terms 1, 2 and 3),
/// feature 2 only at q = 0.2; neuron 10 on term 1. Pfam: feature 3. Concepts: feature 4 at
/// F1 0.7, feature 5 at 0.3, neuron 11 at 0.6.
fn build(path: &std::path::Path, layer: u32) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(CREATE_TABLES).unwrap();
    db.execute("INSERT INTO meta VALUES ('alpha', '0.05')", [])
        .unwrap();
    db.execute("INSERT INTO meta VALUES ('concept_min_f1', '0.5')", [])
        .unwrap();
    for u in 0..14i64 {
        let (kind, index) = if u < 10 {
            ("feature", u)
        } else {
            ("neuron", u - 10)
        };
        let dead = i64::from(u == 8 || u == 9);
        db.execute(
            "INSERT INTO units VALUES (?1, ?2, ?3, 0.1, 1.0, 0.1, ?4, 5, 5)",
            params![u, kind, index, dead],
        )
        .unwrap();
    }
    let enrich = |unit: i64, annotation: &str, term: &str, q: f64| {
        db.execute(
            "INSERT INTO enrichment VALUES (?1, ?2, ?3, 3, 5, 10, 100, 6.0, ?4, ?4, 0, 0)",
            params![unit, annotation, term, q],
        )
        .unwrap();
    };
    enrich(0, "go", "GO:0000001", 0.01);
    enrich(0, "go", "GO:0000002", 0.02);
    enrich(1, "go", "GO:0000003", 0.001);
    enrich(1, "go", "GO:0000002", 0.04);
    enrich(2, "go", "GO:0000003", 0.2);
    enrich(3, "pfam", "PF00001", 0.01);
    enrich(10, "go", "GO:0000001", 0.03);
    let concept = |unit: i64, name: &str, f1: f64| {
        db.execute(
            "INSERT INTO concepts VALUES (?1, ?2, 0.5, 0.5, 0.5, ?3, 0.5, 0.5, 0.5)",
            params![unit, name, f1],
        )
        .unwrap();
    };
    concept(4, "tm_helix", 0.7);
    concept(5, "tm_helix", 0.3);
    concept(11, "signal", 0.6);
    db.execute(
        "INSERT INTO descriptions VALUES (0, 'replay', 'm', 'x', 'h', 0.5, NULL, NULL)",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO descriptions VALUES (1, 'replay', 'm', 'y', 'h', 0.3, NULL, NULL)",
        [],
    )
    .unwrap();
    drop(db);
    record_source(
        path,
        &AtlasSource {
            model: Some("esm2_t6_8M".into()),
            layer: Some(layer),
            site: Some("resid_post".into()),
            level: Some("protein".into()),
            dictionary: Some(format!("d/topk/layer{layer}")),
            fve: Some(0.9),
            l0: Some(16.0),
            dead_fraction: Some(0.2),
            ..AtlasSource::default()
        },
    )
    .unwrap();
}

fn sql(path: &std::path::Path, query: &str) -> f64 {
    let db = Connection::open(path).unwrap();
    db.query_row(query, [], |r| r.get::<_, f64>(0)).unwrap()
}

#[test]
fn compare_matches_the_atlas_tables() {
    let dir = tempfile::tempdir().unwrap();
    let obo = dir.path().join("go.obo");
    std::fs::write(&obo, OBO).unwrap();
    let atlases: Vec<_> = [3, 6]
        .into_iter()
        .map(|layer| {
            let p = dir.path().join(format!("l{layer}.sqlite"));
            build(&p, layer);
            p
        })
        .collect();
    let rows = compare_atlases_with(&atlases, &CompareOptions { go: Some(obo) }).unwrap();
    let r = &rows[0];
    let f = r.features.as_ref().unwrap();
    let n = r.neurons.as_ref().unwrap();
    assert_eq!((f.units, f.dead, n.units), (10, 2, 4));
    assert_eq!(f.dead_fraction, 0.2);
    // Catches: counting q >= alpha, counting rows instead of units, mixing kinds.
    assert_eq!((f.go_units, f.go_distinct_terms), (2, 3));
    assert_eq!(f.go_share, 0.2);
    assert_eq!((n.go_units, n.go_distinct_terms), (1, 1));
    // Depths of the four significant feature pairs: 1, 2, 3, 2.
    assert_eq!(f.go_mean_depth, Some(2.0));
    assert_eq!(f.go_median_depth, Some(2.0));
    assert_eq!(n.go_mean_depth, Some(1.0));
    assert_eq!((f.pfam_units, f.pfam_distinct), (1, 1));
    assert_eq!((f.concept_units, f.concept_distinct), (1, 1));
    assert_eq!((n.concept_units, n.concept_distinct), (1, 1));
    assert_eq!(f.descriptions, 2);
    assert!((f.description_mean_pearson.unwrap() - 0.4).abs() < 1e-12);
    assert_eq!(r.source.layer, Some(3));
    assert_eq!(r.source.fve, Some(0.9));

    // The same numbers by independent queries.
    let p = &atlases[0];
    let q = |s: &str| sql(p, s);
    assert_eq!(
        f.go_units as f64,
        q(
            "SELECT count(DISTINCT unit) FROM enrichment WHERE annotation = 'go' AND q < 0.05 \
           AND unit < 10"
        )
    );
    assert_eq!(
        f.dead_fraction,
        q("SELECT avg(dead) FROM units WHERE kind = 'feature'")
    );

    let tsv = to_tsv(&rows);
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split('\t').collect();
    let cells: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(header.len(), cells.len());
    let col = |name: &str| cells[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("layer"), "3");
    assert_eq!(col("feature_go_distinct_terms"), "3");
    assert_eq!(col("neuron_go_units"), "1");
    assert_eq!(col("feature_go_mean_depth"), "2");
    assert_eq!(col("fve"), "0.900000");

    let html = to_html(&rows);
    assert!(html.contains("<svg") && html.contains("go_mean_depth"));
    assert!(!html.contains("<script") && !html.contains("http://www.w3.org/1999"));
}

/// A toy probe report: `units` units, unit 2 carries the label (strength `signal`).
fn probe_report(name: &str, kind: UnitKind, signal: f32) -> ProbeReport {
    let (rows, units) = (240, 6);
    let labels: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
    let mut values = vec![0f32; rows * units];
    for i in 0..rows {
        for j in 0..units {
            values[j * rows + i] = ((i * 31 + j * 17) % 13) as f32 / 13.0;
        }
        values[2 * rows + i] += if labels[i] { signal } else { 0.0 };
    }
    let data = ProbeData {
        name: name.into(),
        kind,
        units,
        values: UnitValues::Dense(values),
        labels,
        groups: (0..rows as u32).collect(),
    };
    run_probe(&data, &ProbeOptions::default()).unwrap()
}

#[test]
fn compare_lists_the_probes_each_atlas_holds_ranked_per_label_set() {
    let dir = tempfile::tempdir().unwrap();
    let obo = dir.path().join("go.obo");
    std::fs::write(&obo, OBO).unwrap();
    let atlases: Vec<_> = [3, 6]
        .into_iter()
        .map(|layer| {
            let p = dir.path().join(format!("l{layer}.sqlite"));
            build(&p, layer);
            p
        })
        .collect();
    let options = ProbeOptions::default();
    let l3 = [
        probe_report("codes/l3", UnitKind::Feature, 0.4),
        probe_report("acts/l3", UnitKind::Neuron, 0.1),
    ];
    let l6 = [probe_report("codes/l6", UnitKind::Feature, 2.0)];
    write_probes(&atlases[0], "tmbed=alpha.fasta", "residue", &options, &l3).unwrap();
    write_probes(&atlases[1], "tmbed=alpha.fasta", "residue", &options, &l6).unwrap();
    let rows = compare_atlases_with(&atlases, &CompareOptions { go: Some(obo) }).unwrap();
    // Catches: probes dropped, attached to the wrong atlas, or not ordered by AUROC.
    assert_eq!(rows[0].probes.len(), 2);
    assert_eq!(rows[1].probes.len(), 1);
    let stored = &rows[1].probes[0];
    assert_eq!(
        (stored.set.as_str(), stored.kind.as_str()),
        ("codes/l6", "feature")
    );
    assert_eq!(stored.auroc, l6[0].auroc);
    assert_eq!(stored.units_for_95, l6[0].units_for_95 as u64);
    assert_eq!(stored.nonzero, l6[0].nonzero as u64);
    assert!(rows[0].probes[0].auroc >= rows[0].probes[1].auroc);

    let tsv = probes_to_tsv(&rows);
    let lines: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 4, "{tsv}");
    let col = |name: &str| lines[0].iter().position(|h| *h == name).unwrap();
    // Ranked across atlases within the label set: the strongest signal (layer 6) first.
    let aurocs: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l[col("auroc")].parse().unwrap())
        .collect();
    assert_eq!(lines[1][col("set")], "codes/l6");
    assert_eq!(lines[1][col("layer")], "6");
    assert_eq!(
        lines[1..]
            .iter()
            .map(|l| l[col("rank")])
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let sorted = {
        let mut s = aurocs.clone();
        s.sort_by(|a, b| b.total_cmp(a));
        s
    };
    assert_eq!(aurocs, sorted);
    let html = to_html(&rows);
    assert!(html.contains("id=\"probes\"") && html.contains("codes/l6"));
}

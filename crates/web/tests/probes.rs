//! Probe results on the compare pages: probes written into an atlas with the real
//! `write_probes` appear on `/compare`, ranked by held-out AUROC, and in the full report.

mod common;

use common::get;
use plmscope_interpret::probe::atlas::write_probes;
use plmscope_interpret::probe::{
    run_probe, ProbeData, ProbeOptions, ProbeReport, UnitKind, UnitValues,
};
use plmscope_web::synthetic::{write_synthetic_atlas, SyntheticSize};
use plmscope_web::{spawn_on_loopback, AppState, ServeOptions};

/// A toy probe: unit 2 of 6 carries the label with strength `signal`.
fn report(name: &str, kind: UnitKind, signal: f32) -> ProbeReport {
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
fn the_compare_page_ranks_the_atlases_probes() {
    let dir = tempfile::tempdir().unwrap();
    let atlas = dir.path().join("synthetic.sqlite");
    let size = SyntheticSize {
        features: 50,
        neurons: 10,
        proteins: 40,
        examples: 4,
        enrichment: 2,
    };
    write_synthetic_atlas(&atlas, size).unwrap();
    let reports = [
        report("codes/<l3>", UnitKind::Feature, 0.3),
        report("acts/l3", UnitKind::Neuron, 2.0),
    ];
    assert!(reports[1].auroc > reports[0].auroc);
    write_probes(
        &atlas,
        "tmbed=alpha.fasta",
        "residue",
        &ProbeOptions::default(),
        &reports,
    )
    .unwrap();
    let state = AppState::load(&ServeOptions {
        atlases: vec![atlas],
        ..Default::default()
    })
    .unwrap();
    let addr = spawn_on_loopback(state).unwrap();
    let (status, body) = get(addr, "/compare");
    assert_eq!(status, 200);
    assert!(body.contains("id=probes"), "{body}");
    assert_eq!(body.matches("<tr class=probe>").count(), 2);
    // Best first; the set name is escaped, not markup.
    let neuron = body.find("acts/l3").unwrap();
    let feature = body.find("codes/&lt;l3&gt;").expect("escaped set name");
    assert!(neuron < feature, "ranked by held-out AUROC");
    assert!(!body.contains("codes/<l3>"));
    let (status, full) = get(addr, "/compare/full");
    if status == 200 {
        assert!(
            full.contains("id=\"probes\""),
            "the full report lists them too"
        );
    }
}

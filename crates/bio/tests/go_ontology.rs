//! The real go-basic.obo: stanza counts from the README, and the DAG checked against an
//! independent Python reference. The fixture was made with
//!
//!     python3 scripts/go_ancestors_reference.py ../shared/data/go-basic.obo \
//!         > crates/bio/tests/fixtures/go_ancestors.json
//!
//! (run from the repository root; pure Python, its own OBO parser, is_a + part_of).

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::data;
use plmscope_bio::{
    AnnotationTable, GafReader, GoCsvReader, GoCsvRow, GoDag, GoId, Namespace, OboDocument,
    RelationType, UniProtTsvReader,
};

fn document() -> &'static OboDocument {
    static DOCUMENT: OnceLock<OboDocument> = OnceLock::new();
    DOCUMENT.get_or_init(|| OboDocument::open(data("go-basic.obo")).unwrap())
}

fn dag() -> &'static GoDag {
    static DAG: OnceLock<GoDag> = OnceLock::new();
    DAG.get_or_init(|| GoDag::from_document(document()).unwrap())
}

fn go(text: &str) -> GoId {
    GoId::parse(text).unwrap()
}

#[test]
fn obo_stanza_counts() {
    let document = document();
    assert_eq!(document.format_version.as_deref(), Some("1.2"));
    assert_eq!(
        document.data_version.as_deref(),
        Some("releases/2021-12-15")
    );
    assert_eq!(document.terms.len(), 47_261);
    assert_eq!(
        document.terms.iter().filter(|t| t.is_obsolete).count(),
        3_472
    );
    assert_eq!(
        document
            .terms
            .iter()
            .map(|t| t.alt_ids.len())
            .sum::<usize>(),
        3_496
    );
    assert_eq!(document.skipped_stanzas, 5);
    let relation_count = |relation: RelationType| {
        document
            .terms
            .iter()
            .flat_map(|t| &t.relationships)
            .filter(|r| r.relation == relation)
            .count()
    };
    // `grep -c` of the relationship lines by type.
    assert_eq!(relation_count(RelationType::PartOf), 7_066);
    assert_eq!(relation_count(RelationType::Regulates), 3_209);
    assert_eq!(relation_count(RelationType::PositivelyRegulates), 2_752);
    assert_eq!(relation_count(RelationType::NegativelyRegulates), 2_763);
    let generic = document
        .terms
        .iter()
        .find(|t| t.id == go("GO:0005739"))
        .unwrap();
    assert!(generic.subsets.iter().any(|s| s == "goslim_generic"));
}

#[test]
fn dag_sizes_by_namespace() {
    let dag = dag();
    assert_eq!(dag.len(), 47_261 - 3_472);
    let count = |ns: Namespace| dag.terms().filter(|&t| dag.namespace(t) == ns).count();
    assert_eq!(count(Namespace::BiologicalProcess), 28_429);
    assert_eq!(count(Namespace::MolecularFunction), 11_177);
    assert_eq!(count(Namespace::CellularComponent), 4_183);
    let roots: Vec<GoId> = dag
        .terms()
        .filter(|&t| dag.parents(t).is_empty())
        .map(|t| dag.id(t))
        .collect();
    assert_eq!(
        roots,
        vec![go("GO:0003674"), go("GO:0005575"), go("GO:0008150")]
    );
}

#[test]
fn ancestors_depths_and_distances_match_python_reference() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/go_ancestors.json"
    ))
    .unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dag = dag();
    let terms = reference["terms"].as_object().unwrap();
    assert!(terms.len() >= 8);
    for (id, expected) in terms {
        let term = dag.index(go(id)).unwrap();
        let ancestors: BTreeSet<String> = dag
            .ancestors(term)
            .iter()
            .map(|&a| dag.id(a).to_string())
            .collect();
        let expected_ancestors: BTreeSet<String> = expected["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ancestors, expected_ancestors, "{id}");
        assert_eq!(
            dag.namespace(term).obo_name(),
            expected["namespace"],
            "{id}"
        );
        assert_eq!(
            u64::from(dag.depth(term)),
            expected["depth"].as_u64().unwrap(),
            "{id}"
        );
        assert_eq!(
            u64::from(dag.level(term)),
            expected["level"].as_u64().unwrap(),
            "{id}"
        );
    }
    for pair in reference["pairs"].as_array().unwrap() {
        let a = dag.index(go(pair["a"].as_str().unwrap())).unwrap();
        let b = dag.index(go(pair["b"].as_str().unwrap())).unwrap();
        assert_eq!(
            dag.shortest_path_length(a, b).map(u64::from),
            pair["shortest_path"].as_u64(),
            "{pair}"
        );
        assert_eq!(
            dag.shortest_path_length(b, a),
            dag.shortest_path_length(a, b)
        );
        assert_eq!(
            dag.lowest_common_ancestor_depth(a, b).map(u64::from),
            pair["lca_depth"].as_u64(),
            "{pair}"
        );
    }
}

#[test]
fn propagation_reports_unknown_obsolete_and_alt_ids_of_real_annotations() {
    let dag = dag();
    // Yeast CSV (2024) against the 2021 ontology: 40 newer ids, 2 obsolete ones.
    let yeast: AnnotationTable = GoCsvReader::open(data("yeast_s288c/UP000002311_559292_go.csv"))
        .unwrap()
        .map(|row| row.map(GoCsvRow::into_annotation))
        .collect::<Result<_, _>>()
        .unwrap();
    let (propagated, report) = dag.propagate(yeast.go_sets());
    assert_eq!(propagated.len(), 6060);
    assert_eq!(report.annotations, 49_599);
    assert_eq!(
        (report.unknown.len(), report.obsolete_dropped.len()),
        (40, 2)
    );
    // The true-path rule: every set is closed under parents and holds its direct terms.
    for (protein, annotation) in propagated.iter().zip(yeast.iter()) {
        assert_eq!(protein.accession, annotation.accession);
        assert!(protein.terms.windows(2).all(|w| w[0] < w[1]));
        for &term in &protein.terms {
            assert!(dag
                .parents(term)
                .iter()
                .all(|p| protein.terms.binary_search(p).is_ok()));
        }
        for id in &annotation.go {
            if let Some(term) = dag.index(*id) {
                assert!(protein.terms.binary_search(&term).is_ok());
            }
        }
    }

    // EcoCyc GAF (2017): 27 obsolete ids and 97 alt ids.
    let gaf = GafReader::open(data("ecoli_k12/gene_association.ecocyc")).unwrap();
    let mut table = AnnotationTable::new();
    for record in gaf {
        let record = record.unwrap();
        table.entry(&record.accession).go.insert(record.go);
    }
    let (_, report) = dag.propagate(table.go_sets());
    assert_eq!(
        (report.obsolete_dropped.len(), report.alt_ids_mapped.len()),
        (27, 97)
    );
    assert!(report
        .alt_ids_mapped
        .iter()
        .all(|(alt, primary)| dag.index(*alt) == dag.index(*primary)));

    // Ecoli_metadata.txt (2020): 10 obsolete ids and 14 alt ids.
    let metadata: AnnotationTable = UniProtTsvReader::open(data("ecoli_k12/Ecoli_metadata.txt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (_, report) = dag.propagate(metadata.go_sets());
    assert_eq!(
        (report.obsolete_dropped.len(), report.alt_ids_mapped.len()),
        (10, 14)
    );
}

//! Gzip inputs read like plain ones, and propagation on a hand-built DAG.

mod common;

use std::fs::File;
use std::io::Write;

use common::data;
use flate2::write::GzEncoder;
use flate2::Compression;
use plmscope_bio::{
    FastaReader, FastaRecord, GoDag, GoId, Namespace, OboDocument, Resolution, TmbedReader,
    TmbedRecord,
};

fn gzip_copy(source: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    // No .gz suffix: detection must come from the content.
    let compressed = dir.join(source.file_name().unwrap());
    let mut encoder = GzEncoder::new(File::create(&compressed).unwrap(), Compression::fast());
    encoder.write_all(&std::fs::read(source).unwrap()).unwrap();
    encoder.finish().unwrap();
    assert_ne!(
        std::fs::read(&compressed).unwrap(),
        std::fs::read(source).unwrap()
    );
    compressed
}

#[test]
fn gzip_fasta_and_tmbed_round_trip_detected_by_magic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let source = data("bindembed21/development_set/all.fasta");
    let plain: Vec<FastaRecord> = FastaReader::open(&source)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unzipped: Vec<FastaRecord> = FastaReader::open(gzip_copy(&source, dir.path()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plain.len(), 1314);
    assert_eq!(unzipped, plain);

    let source = data("tmbed/beta.fasta");
    let plain: Vec<TmbedRecord> = TmbedReader::open(&source)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unzipped: Vec<TmbedRecord> = TmbedReader::open(gzip_copy(&source, dir.path()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plain.len(), 65);
    assert_eq!(unzipped, plain);
}

/// BP: 1 <- 2, 1 <- 3, 4 is_a 2 and part_of 3, 5 is_a 1 and regulates 4, 7 is_a 3 (alt 17),
/// 6 obsolete (replaced by 4). MF: root 10.
const SMALL_OBO: &str = "format-version: 1.2
data-version: test

[Term]
id: GO:0000001
name: root process
namespace: biological_process

[Term]
id: GO:0000002
name: two
namespace: biological_process
is_a: GO:0000001 ! root process

[Term]
id: GO:0000003
name: three
namespace: biological_process
is_a: GO:0000001

[Term]
id: GO:0000004
name: four
namespace: biological_process
is_a: GO:0000002
relationship: part_of GO:0000003 ! three

[Term]
id: GO:0000005
name: five
namespace: biological_process
is_a: GO:0000001
relationship: regulates GO:0000004

[Term]
id: GO:0000006
name: obsolete six
namespace: biological_process
is_obsolete: true
replaced_by: GO:0000004
consider: CL:0000000

[Term]
id: GO:0000007
name: seven
namespace: biological_process
alt_id: GO:0000017
is_a: GO:0000003

[Term]
id: GO:0000010
name: function root
namespace: molecular_function

[Typedef]
id: part_of
name: part of
";

fn small_dag(gzip: bool) -> GoDag {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.obo");
    if gzip {
        let mut encoder = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        encoder.write_all(SMALL_OBO.as_bytes()).unwrap();
        encoder.finish().unwrap();
    } else {
        std::fs::write(&path, SMALL_OBO).unwrap();
    }
    GoDag::open(&path).unwrap()
}

fn ids(dag: &GoDag, terms: &[plmscope_bio::TermIndex]) -> Vec<u32> {
    terms.iter().map(|&t| dag.id(t).0).collect()
}

#[test]
fn small_dag_structure_and_gzip_obo() {
    let dag = small_dag(true);
    assert_eq!(dag.len(), 7);
    assert_eq!(dag.obsolete_count(), 1);
    assert_eq!(dag.alt_id_count(), 1);
    let four = dag.index(GoId(4)).unwrap();
    assert_eq!(ids(&dag, &dag.ancestors(four)), vec![1, 2, 3, 4]);
    assert_eq!((dag.depth(four), dag.level(four)), (2, 2));
    // regulates is not followed.
    let five = dag.index(GoId(5)).unwrap();
    assert_eq!(ids(&dag, &dag.ancestors(five)), vec![1, 5]);
    let seven = dag.index(GoId(17)).unwrap();
    assert_eq!(dag.id(seven), GoId(7));
    assert_eq!(dag.name(seven), "seven");
    assert_eq!(dag.shortest_path_length(four, seven), Some(2));
    assert_eq!(dag.shortest_path_length(four, five), Some(3));
    assert_eq!(
        ids(&dag, &dag.lowest_common_ancestors(four, seven)),
        vec![3]
    );
    assert_eq!(dag.lowest_common_ancestor_depth(four, seven), Some(1));
    let mf_root = dag.index(GoId(10)).unwrap();
    assert_eq!(dag.namespace(mf_root), Namespace::MolecularFunction);
    assert_eq!(dag.shortest_path_length(four, mf_root), None);
    assert_eq!(dag.lowest_common_ancestor_depth(four, mf_root), None);
    assert!(
        matches!(dag.resolve(GoId(6)), Resolution::Obsolete { replaced_by, consider }
        if replaced_by == [GoId(4)] && consider == ["CL:0000000"])
    );
    assert_eq!(dag.resolve(GoId(9999)), Resolution::Unknown);
    assert_eq!(dag.data_version(), Some("test"));
    // Same DAG from plain text.
    assert_eq!(
        ids(&dag, &dag.ancestors(four)),
        ids(&small_dag(false), &small_dag(false).ancestors(four))
    );
    assert_eq!(
        OboDocument::read(SMALL_OBO.as_bytes(), "inline")
            .unwrap()
            .skipped_stanzas,
        1
    );
}

#[test]
fn small_dag_propagation_and_report() {
    let dag = small_dag(false);
    let proteins = [
        ("P1", vec![GoId(4)]),
        ("P2", vec![GoId(5)]),
        ("P3", vec![GoId(6), GoId(17)]),
        ("P4", vec![GoId(9999)]),
        ("P5", vec![GoId(4), GoId(10)]),
    ];
    let (propagated, report) = dag.propagate(proteins.iter().map(|(a, ids)| (*a, ids)));
    let sets: Vec<(String, Vec<u32>)> = propagated
        .iter()
        .map(|p| (p.accession.clone(), ids(&dag, &p.terms)))
        .collect();
    assert_eq!(
        sets,
        vec![
            ("P1".to_string(), vec![1, 2, 3, 4]),
            ("P2".to_string(), vec![1, 5]),
            ("P3".to_string(), vec![1, 3, 7]),
            ("P4".to_string(), vec![]),
            ("P5".to_string(), vec![1, 2, 3, 4, 10]),
        ]
    );
    assert_eq!(report.annotations, 7);
    assert_eq!(
        report.unknown.into_iter().collect::<Vec<_>>(),
        vec![(GoId(9999), 1)]
    );
    assert_eq!(
        report.obsolete_dropped.into_iter().collect::<Vec<_>>(),
        vec![(GoId(6), 1)]
    );
    assert_eq!(report.replaced_by.get(&GoId(6)), Some(&vec![GoId(4)]));
    assert_eq!(
        report.alt_ids_mapped.into_iter().collect::<Vec<_>>(),
        vec![(GoId(17), GoId(7))]
    );
    assert_eq!(report.proteins_without_terms, 1);
}

//! The annotation tables in shared/data parse with the counts their README states.

mod common;

use std::collections::BTreeSet;

use common::data;
use plmscope_bio::{
    AnnotationTable, GafReader, GoCsvReader, GoCsvRow, GoId, Namespace, PfamClansReader,
    PfamFamily, UniProtTsvReader,
};

fn go_csv(relative: &str) -> Vec<GoCsvRow> {
    GoCsvReader::open(data(relative))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pairs_and_distinct(rows: &[GoCsvRow]) -> (usize, usize, usize) {
    let na = rows.iter().filter(|r| r.go.is_empty()).count();
    let pairs = rows.iter().map(|r| r.go.len()).sum();
    let distinct: BTreeSet<GoId> = rows.iter().flat_map(|r| r.go.iter().copied()).collect();
    (na, pairs, distinct.len())
}

#[test]
fn yeast_and_ecoli_go_csv() {
    let yeast = go_csv("yeast_s288c/UP000002311_559292_go.csv");
    assert_eq!(yeast.len(), 6060);
    assert_eq!(pairs_and_distinct(&yeast), (318, 49_599, 5_795));
    let ecoli = go_csv("ecoli_k12/UP000000625_83333_go.csv");
    assert_eq!(ecoli.len(), 4401);
    // The README says 1 NA row, 22,801 pairs and 3,969 ids: that count took each of the 445
    // empty `GO ID` cells as one pair with the id "". Without them (as Python's csv module
    // confirms): 1 NA + 445 empty rows, 22,801 - 445 pairs, 3,969 - 1 ids.
    assert_eq!(pairs_and_distinct(&ecoli), (446, 22_356, 3_968));
    // Rows are keyed like the FASTA: the table has one entry per accession.
    let table: AnnotationTable = yeast.into_iter().map(GoCsvRow::into_annotation).collect();
    assert_eq!(table.len(), 6060);
    assert!(table.get("P04819").unwrap().go.contains(&GoId(3910)));
}

#[test]
fn ecoli_metadata_pfam_and_go_bp() {
    let reader = UniProtTsvReader::open_requiring(
        data("ecoli_k12/Ecoli_metadata.txt"),
        &[
            "Cross-reference (Pfam)",
            "Gene ontology (biological process)",
        ],
    )
    .unwrap();
    let table: AnnotationTable = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(table.len(), 4391);
    let with_pfam = table.iter().filter(|p| !p.pfam.is_empty()).count();
    let families: BTreeSet<&String> = table.iter().flat_map(|p| &p.pfam).collect();
    assert_eq!((with_pfam, families.len()), (3953, 2682));
    let with_go = table.iter().filter(|p| !p.go.is_empty()).count();
    let go: BTreeSet<&GoId> = table.iter().flat_map(|p| &p.go).collect();
    assert_eq!((with_go, go.len()), (3255, 1670));
    let argc = table.get("P11446").unwrap();
    assert_eq!(
        argc.pfam.iter().map(String::as_str).collect::<Vec<_>>(),
        ["PF01118", "PF02774"]
    );
    assert!(argc.go.contains(&GoId(6526)));

    // Pfam clans name all but 5 of these families.
    let clans: Vec<PfamFamily> = PfamClansReader::open(data("pfam/Pfam-A.clans.tsv"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(clans.len(), 19_632);
    let known: BTreeSet<&str> = clans.iter().map(|f| f.accession.as_str()).collect();
    assert_eq!(
        families
            .iter()
            .filter(|f| !known.contains(f.as_str()))
            .count(),
        5
    );
    assert_eq!(clans[0].clan.as_deref(), Some("CL0192"));
    assert_eq!(clans[0].short_name, "7tm_1");
}

#[test]
fn ecocyc_gaf_counts() {
    let mut reader = GafReader::open(data("ecoli_k12/gene_association.ecocyc")).unwrap();
    let records: Vec<_> = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    let summary = reader.summary().clone();
    assert_eq!(summary.version.as_deref(), Some("2.0"));
    assert_eq!(summary.annotation_lines, 23_506);
    assert_eq!(records.len() + summary.not_excluded, 23_506);
    // awk -F'\t' '!/^!/ && $4 ~ /NOT/' gene_association.ecocyc | wc -l
    assert_eq!(summary.not_excluded, 12);
    let accessions: BTreeSet<&str> = records.iter().map(|r| r.accession.as_str()).collect();
    assert!(
        accessions.len() <= 3593 && accessions.len() > 3500,
        "{}",
        accessions.len()
    );
    let aspect = |a: Namespace| records.iter().filter(|r| r.aspect == a).count();
    // The README counts include any NOT lines; kept lines can only be fewer.
    assert!(aspect(Namespace::MolecularFunction) <= 9620);
    assert!(aspect(Namespace::BiologicalProcess) <= 8082);
    assert!(aspect(Namespace::CellularComponent) <= 5804);

    let mut experimental = GafReader::open(data("ecoli_k12/gene_association.ecocyc"))
        .unwrap()
        .with_evidence(["IDA"]);
    let ida = experimental
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert!(ida.iter().all(|r| r.evidence == "IDA"));
    let counted = experimental.summary();
    assert_eq!(
        ida.len() + counted.evidence_excluded + counted.not_excluded,
        23_506
    );
    assert!(ida.len() <= 9766 && ida.len() > 9000);
}

#[test]
fn ecoli_sources_merge_by_accession() {
    let mut table: AnnotationTable = GoCsvReader::open(data("ecoli_k12/UP000000625_83333_go.csv"))
        .unwrap()
        .map(|row| row.map(GoCsvRow::into_annotation))
        .collect::<Result<_, _>>()
        .unwrap();
    let go_only = table.get("P11446").unwrap().go.clone();
    let metadata: AnnotationTable = UniProtTsvReader::open(data("ecoli_k12/Ecoli_metadata.txt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let metadata_go = metadata.get("P11446").unwrap().go.clone();
    table.merge(metadata);
    // 4,401 + 4,391 accessions, 4,389 of them shared (checked with Python's csv module; the
    // README's 4,388 is the overlap of the two E. coli FASTAs).
    assert_eq!(table.len(), 4401 + 4391 - 4389);
    let argc = table.get("P11446").unwrap();
    assert!(argc.pfam.contains("PF01118"));
    assert!(go_only.is_subset(&argc.go) && metadata_go.is_subset(&argc.go));
    // Merging loses nothing: the 3,953 Pfam-bearing rows keep their families.
    assert_eq!(table.iter().filter(|p| !p.pfam.is_empty()).count(), 3953);
}

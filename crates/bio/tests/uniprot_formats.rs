//! UniProt TSV and flat file: the real 6-row TSV example, and the same entry written as a flat
//! file giving the same annotation.

mod common;

use common::data;
use plmscope_bio::{
    EndCertainty, FeatureKind, ProteinAnnotation, UniProtDatReader, UniProtTsvReader,
};

fn sample_rows() -> Vec<ProteinAnnotation> {
    UniProtTsvReader::open_requiring(
        data("uniprot_tsv_example/sample_uniprot.tsv"),
        &["Sequence"],
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn sample_tsv_rows_and_features() {
    let rows = sample_rows();
    assert_eq!(rows.len(), 6);
    assert!(rows
        .iter()
        .all(|r| r.organism.as_deref() == Some("Homo sapiens (Human)")));
    let heme = &rows[0].features;
    assert_eq!(heme.len(), 1);
    assert_eq!(heme[0].kind, FeatureKind::BindingSite);
    assert_eq!(heme[0].residues(), vec![461]);
    assert_eq!(heme[0].qualifier("ligand"), Some("heme"));
    assert_eq!(heme[0].qualifier("ligand_part"), Some("Fe"));
    assert_eq!(heme[0].qualifier("note"), Some("axial binding residue"));

    let kinase = &rows[2];
    assert_eq!(kinase.accession, "A0A0B4J2F2");
    assert_eq!(kinase.sequence.as_ref().map(String::len), Some(783));
    let kinds: Vec<(&FeatureKind, Vec<u32>)> = kinase
        .features
        .iter()
        .map(|f| (&f.kind, f.residues()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (&FeatureKind::ActiveSite, vec![149]),
            (&FeatureKind::BindingSite, (33..=41).collect()),
            (&FeatureKind::BindingSite, vec![56]),
        ]
    );
    assert_eq!(
        kinase.features[0].qualifier("note"),
        Some("Proton acceptor")
    );
    assert_eq!(
        kinase.features[1].qualifier("evidence"),
        Some("ECO:0000255|PROSITE-ProRule:PRU00159")
    );
    // The sequence holds the residues the features name.
    let sequence = kinase.sequence.as_ref().unwrap();
    assert_eq!(&sequence[148..149], "D"); // catalytic Asp of the kinase HRD motif

    let disulfide = &rows[4].features[0];
    assert_eq!(disulfide.kind, FeatureKind::DisulfideBond);
    assert_eq!(disulfide.residues(), vec![43, 111]);
    assert_eq!(&rows[4].sequence.as_ref().unwrap()[42..43], "C");
    assert_eq!(&rows[4].sequence.as_ref().unwrap()[110..111], "C");
    assert!(rows[1].features.is_empty());
}

/// The flat-file form of an entry, with features in the current (2022+) FT syntax.
fn flat_file(entry: &ProteinAnnotation) -> String {
    let sequence = entry.sequence.as_ref().unwrap();
    let mut text = String::from(
        "ID   SIK1B_HUMAN             Reviewed;         783 AA.\n\
         AC   A0A0B4J2F2; Q000X1;\n\
         AC   Q000X2;\n\
         DE   RecName: Full=Putative serine/threonine-protein kinase SIK1B {ECO:0000305};\n\
         DE            EC=2.7.11.1;\n\
         OS   Homo sapiens\n\
         OS   (Human).\n\
         DR   GO; GO:0005524; F:ATP binding; IEA:UniProtKB-KW.\n\
         DR   InterPro; IPR000719; Prot_kinase_dom.\n\
         DR   Pfam; PF00069; Pkinase; 1.\n\
         FT   BINDING         33..41\n\
         FT                   /ligand=\"ATP\"\n\
         FT                   /ligand_id=\"ChEBI:CHEBI:30616\"\n\
         FT                   /evidence=\"ECO:0000255|PROSITE-ProRule:PRU00159\"\n\
         FT   BINDING         56\n\
         FT                   /ligand=\"ATP\"\n\
         FT                   /ligand_id=\"ChEBI:CHEBI:30616\"\n\
         FT                   /evidence=\"ECO:0000255|PROSITE-ProRule:PRU00159\"\n\
         FT   ACT_SITE        149\n\
         FT                   /note=\"Proton\n\
         FT                   acceptor\"\n\
         FT                   /evidence=\"ECO:0000255|PROSITE-ProRule:PRU00159\"\n\
         FT   DOMAIN          <20..>271\n\
         FT                   /note=\"Protein kinase\"\n",
    );
    text.push_str(&format!(
        "SQ   SEQUENCE   {} AA;  85000 MW;  0000000000000000 CRC64;\n",
        sequence.len()
    ));
    for line in sequence.as_bytes().chunks(60) {
        let blocks: Vec<&str> = line
            .chunks(10)
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect();
        text.push_str(&format!("     {}\n", blocks.join(" ")));
    }
    text.push_str("//\n");
    text
}

#[test]
fn flat_file_gives_the_same_annotation_as_tsv() {
    let tsv = sample_rows().swap_remove(2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entry.dat");
    std::fs::write(&path, flat_file(&tsv).repeat(2)).unwrap();
    let entries: Vec<ProteinAnnotation> = UniProtDatReader::open(&path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(entries.len(), 2);
    let dat = &entries[0];
    assert_eq!(dat.accession, tsv.accession);
    assert_eq!(dat.entry_name.as_deref(), Some("SIK1B_HUMAN"));
    assert_eq!(
        dat.protein_name.as_deref(),
        Some("Putative serine/threonine-protein kinase SIK1B")
    );
    assert_eq!(dat.organism, tsv.organism);
    assert_eq!(dat.sequence, tsv.sequence);
    assert_eq!(
        dat.go.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        ["GO:0005524"]
    );
    assert!(dat.pfam.contains("PF00069") && dat.interpro.contains("IPR000719"));
    // The flat file lists the same three features (in another order) plus a domain.
    for feature in &tsv.features {
        assert!(
            dat.features.contains(feature),
            "{feature:?} missing from {:?}",
            dat.features
        );
    }
    let domain = dat
        .features
        .iter()
        .find(|f| f.kind == FeatureKind::Domain)
        .unwrap();
    assert_eq!(
        (domain.start.certainty, domain.end.certainty),
        (EndCertainty::Before, EndCertainty::After)
    );
    assert_eq!(domain.qualifier("note"), Some("Protein kinase"));
    assert_eq!(dat.features.len(), 4);
}

#[test]
fn truncated_flat_file_is_an_error_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.dat");
    std::fs::write(
        &path,
        "ID   X_HUMAN   Reviewed;   5 AA.\nAC   P12345;\nSQ   SEQUENCE   5 AA;\n     MKVLA\n",
    )
    .unwrap();
    let message = UniProtDatReader::open(&path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("cut.dat:4") && message.contains("line 1") && message.contains("'//'"),
        "{message}"
    );
}

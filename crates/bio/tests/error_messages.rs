//! Broken inputs written to temporary files: each error names the file, the line and the fault.

use std::fs;
use std::path::{Path, PathBuf};

use plmscope_bio::{BioError, FastaReader, GafReader, OboDocument, UniProtTsvReader};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn stanza(id: &str, extra: &str) -> String {
    format!("[Term]\nid: {id}\nname: n{id}\nnamespace: biological_process\n{extra}\n")
}

#[test]
fn missing_tsv_column_names_file_column_and_found_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "export.tsv", "Accession\tSequence\nP1\tMK\n");
    let error = UniProtTsvReader::open(&path).err().unwrap();
    assert!(
        matches!(&error, BioError::MissingColumn { column, found, .. }
        if column == "Entry" && found == &["Accession", "Sequence"])
    );
    let message = error.to_string();
    assert!(
        message.contains("export.tsv")
            && message.contains("'Entry'")
            && message.contains("Sequence"),
        "{message}"
    );

    let path = write(dir.path(), "entry_only.tsv", "Entry\tSequence\nP1\tMK\n");
    let error = UniProtTsvReader::open_requiring(&path, &["Cross-reference (Pfam)"])
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("'Cross-reference (Pfam)'"),
        "{error}"
    );
}

#[test]
fn obo_cycle_names_terms_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "format-version: 1.2\n\n{}{}{}{}",
        stanza("GO:0000001", ""),
        stanza("GO:0000002", "is_a: GO:0000004 ! n4"),
        stanza("GO:0000003", "relationship: part_of GO:0000002 ! n2"),
        stanza("GO:0000004", "is_a: GO:0000003\nis_a: GO:0000001"),
    );
    let path = write(dir.path(), "cycle.obo", &text);
    let error = OboDocument::open(&path).unwrap_err();
    let BioError::Cycle { terms, line, .. } = &error else {
        panic!("{error}")
    };
    let mut sorted = terms.clone();
    sorted.sort();
    assert_eq!(sorted, ["GO:0000002", "GO:0000003", "GO:0000004"]);
    // The line is the is_a/part_of line that closes the cycle, from the first named term.
    let line_text = text.lines().nth(line - 1).unwrap();
    assert!(
        line_text.starts_with("is_a:") || line_text.starts_with("relationship: part_of"),
        "{line_text}"
    );
    assert!(error.to_string().contains("cycle.obo:"), "{error}");

    // A regulates loop is not part of the DAG and is allowed.
    let text = format!(
        "{}{}",
        stanza("GO:0000001", "relationship: regulates GO:0000002"),
        stanza("GO:0000002", "relationship: regulates GO:0000001"),
    );
    assert!(OboDocument::open(write(dir.path(), "regulates.obo", &text)).is_ok());
}

#[test]
fn obo_dangling_parent_names_term_parent_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}{}",
        stanza("GO:0000001", ""),
        stanza("GO:0000002", "is_a: GO:0000001\nis_a: GO:0009999 ! gone")
    );
    let path = write(dir.path(), "dangling.obo", &text);
    let message = OboDocument::open(&path).unwrap_err().to_string();
    assert!(message.contains("dangling.obo:11"), "{message}");
    assert!(
        message.contains("GO:0000002") && message.contains("GO:0009999"),
        "{message}"
    );
}

#[test]
fn short_gaf_line_names_line_and_column_count() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        "UniProtKB\tP1\ts\t\tGO:0000001\tPMID:1\tIDA\t\tF\t\t\tprotein\ttaxon:1\t20200101\tX\t\t";
    let text = format!("!gaf-version: 2.2\n{good}\nUniProtKB\tP2\ts\t\tGO:0000001\tPMID:1\tIDA\n");
    let path = write(dir.path(), "short.gaf", &text);
    let results: Vec<_> = GafReader::open(&path).unwrap().collect();
    assert!(results[0].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert!(
        matches!(
            error,
            BioError::ShortGafLine {
                line: 3,
                found: 7,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("short.gaf:3"));
}

#[test]
fn empty_fasta_record_names_line_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "empty.fasta",
        ">sp|P1|A_B one\nMKV\n>sp|P2|C_D two\n\n>sp|P3|E_F\nMK\n",
    );
    let results: Vec<_> = FastaReader::open(&path).unwrap().collect();
    let error = results[1].as_ref().unwrap_err();
    assert!(
        matches!(error, BioError::EmptyFastaRecord { line: 3, id, .. } if id == "P2"),
        "{error}"
    );
    assert!(error.to_string().contains("empty.fasta:3") && error.to_string().contains("'P2'"));
    assert_eq!(results[2].as_ref().unwrap().id, "P3");
}

#[test]
fn missing_file_names_the_path() {
    let message = FastaReader::open("/nonexistent/proteins.fasta")
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("/nonexistent/proteins.fasta"), "{message}");
}

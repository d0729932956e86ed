//! `proteins.tsv`: one line per protein, the index a reader uses to find a protein's rows.

use std::path::Path;

use crate::StoreError;

/// Header line of `proteins.tsv`.
pub const PROTEINS_TSV_HEADER: &str = "index\tid\tlength\tshard\tfirst_row\trows";

/// One protein of a finished set and where its rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProteinRecord {
    /// Global protein index (input order).
    pub index: usize,
    /// First word of the FASTA header.
    pub id: String,
    /// Residues embedded.
    pub length: usize,
    /// Shard that holds the protein.
    pub shard: usize,
    /// First row within the shard.
    pub first_row: usize,
    /// Rows (length at residue level, 1 at protein level).
    pub rows: usize,
    /// First row within the whole set.
    pub global_first_row: usize,
}

/// Writes the table atomically.
pub(crate) fn write_protein_table(
    path: &Path,
    records: &[ProteinRecord],
) -> Result<(), StoreError> {
    crate::fsio::write_atomic(path, |w| {
        writeln!(w, "{PROTEINS_TSV_HEADER}")?;
        for r in records {
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}\t{}",
                r.index, r.id, r.length, r.shard, r.first_row, r.rows
            )?;
        }
        Ok(())
    })
    .map(|_| ())
}

/// Parses the table; checks that indices run 0, 1, 2... and fills `global_first_row`.
/// Agreement with the manifest's shards is checked by the caller.
pub(crate) fn read_protein_table(path: &Path) -> Result<Vec<ProteinRecord>, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
    let bad = |line: usize, message: String| StoreError::ProteinTable {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines();
    if lines.next() != Some(PROTEINS_TSV_HEADER) {
        return Err(bad(
            1,
            format!("expected the header {PROTEINS_TSV_HEADER:?}"),
        ));
    }
    let mut records: Vec<ProteinRecord> = Vec::new();
    let mut global_row = 0;
    for (offset, line) in lines.enumerate() {
        let line_no = offset + 2;
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 6 {
            return Err(bad(line_no, format!("{} fields, expected 6", fields.len())));
        }
        let number = |i: usize, name: &str| -> Result<usize, StoreError> {
            fields[i]
                .parse()
                .map_err(|_| bad(line_no, format!("{name} {:?} is not a number", fields[i])))
        };
        let record = ProteinRecord {
            index: number(0, "index")?,
            id: fields[1].to_string(),
            length: number(2, "length")?,
            shard: number(3, "shard")?,
            first_row: number(4, "first_row")?,
            rows: number(5, "rows")?,
            global_first_row: global_row,
        };
        if record.index != records.len() {
            return Err(bad(
                line_no,
                format!(
                    "index {} out of order, expected {}",
                    record.index,
                    records.len()
                ),
            ));
        }
        global_row += record.rows;
        records.push(record);
    }
    Ok(records)
}

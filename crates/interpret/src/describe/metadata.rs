//! What a prompt says about a protein: name, gene, organism, families, GO terms by namespace and
//! optionally the sequence. `analyze` stores accessions, organisms and family ids in `proteins`;
//! names, genes and GO terms go into `protein_info`, written from UniProt FASTA headers
//! ([`protein_info_from_fasta`]) and from annotation tables ([`protein_info_from_annotations`]).

use std::path::Path;

use plmscope_bio::{AnnotationTable, FastaReader, GoDag, Namespace, Resolution};
use rusqlite::{params, Connection};

use super::error::{DescribeError, DescribeResult};
use super::store::open_atlas;

/// The fields of a UniProt FASTA header:
/// `sp|P12345|NAME_YEAST Protein name OS=Organism OX=559292 GN=GENE PE=1 SV=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniprotHeader {
    pub accession: String,
    pub entry_name: String,
    pub name: String,
    pub organism: Option<String>,
    pub gene: Option<String>,
}

/// Parses a UniProt header (with or without the leading `>`); `None` for other headers.
pub fn parse_uniprot_header(header: &str) -> Option<UniprotHeader> {
    let header = header.trim().trim_start_matches('>');
    let (ids, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let mut fields = ids.split('|');
    let (db, accession, entry_name) = (fields.next()?, fields.next()?, fields.next()?);
    if !matches!(db, "sp" | "tr") || accession.is_empty() {
        return None;
    }
    // Tags are ` XX=` with two capitals; the protein name is everything before the first one.
    let tag_starts: Vec<usize> = rest
        .match_indices('=')
        .filter_map(|(i, _)| {
            let start = i.checked_sub(2)?;
            let tag = rest.get(start..i)?;
            let at_word = start == 0 || rest[..start].ends_with(' ');
            (at_word && tag.chars().all(|c| c.is_ascii_uppercase())).then_some(start)
        })
        .collect();
    let name_end = tag_starts.first().copied().unwrap_or(rest.len());
    let tag = |key: &str| -> Option<String> {
        let position = tag_starts
            .iter()
            .position(|&s| rest.get(s..s + 3) == Some(&format!("{key}=")[..]))?;
        let start = tag_starts[position] + 3;
        let end = tag_starts.get(position + 1).copied().unwrap_or(rest.len());
        Some(rest[start..end].trim().to_string()).filter(|v| !v.is_empty())
    };
    Some(UniprotHeader {
        accession: accession.to_string(),
        entry_name: entry_name.to_string(),
        name: rest[..name_end].trim().to_string(),
        organism: tag("OS"),
        gene: tag("GN"),
    })
}

/// A row of `protein_info`; `None` and empty lists leave what the atlas already has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProteinInfo {
    pub accession: String,
    pub name: Option<String>,
    pub gene: Option<String>,
    pub organism: Option<String>,
    pub go_bp: Vec<String>,
    pub go_mf: Vec<String>,
    pub go_cc: Vec<String>,
    pub sequence: Option<String>,
}

/// Names, genes and organisms from a UniProt FASTA file (sequences too with `with_sequence`).
/// Records whose header is not UniProt's keep only their accession.
pub fn protein_info_from_fasta(
    path: &Path,
    with_sequence: bool,
) -> DescribeResult<Vec<ProteinInfo>> {
    let reader = FastaReader::open(path).map_err(|e| {
        DescribeError::input(
            format!("{}: {e}", path.display()),
            "pass a readable FASTA file",
        )
    })?;
    let mut rows = Vec::new();
    for record in reader {
        let record = record.map_err(|e| {
            DescribeError::input(format!("{}: {e}", path.display()), "fix the FASTA file")
        })?;
        let header = parse_uniprot_header(&record.header);
        rows.push(ProteinInfo {
            accession: record.id,
            name: header
                .as_ref()
                .map(|h| h.name.clone())
                .filter(|n| !n.is_empty()),
            gene: header.as_ref().and_then(|h| h.gene.clone()),
            organism: header.and_then(|h| h.organism),
            sequence: with_sequence.then_some(record.sequence),
            ..ProteinInfo::default()
        });
    }
    Ok(rows)
}

/// Names, organisms, sequences and GO term names by namespace from an annotation table (the
/// directly annotated terms, not their propagated ancestors: the specific terms say more).
pub fn protein_info_from_annotations(
    table: &AnnotationTable,
    dag: Option<&GoDag>,
) -> Vec<ProteinInfo> {
    table
        .iter()
        .map(|a| {
            let mut info = ProteinInfo {
                accession: a.accession.clone(),
                name: a.protein_name.clone(),
                organism: a.organism.clone(),
                sequence: a.sequence.clone(),
                ..ProteinInfo::default()
            };
            if let Some(dag) = dag {
                for &id in &a.go {
                    let term = match dag.resolve(id) {
                        Resolution::Term(t) | Resolution::AltId(t) => t,
                        _ => continue,
                    };
                    let list = match dag.namespace(term) {
                        Namespace::BiologicalProcess => &mut info.go_bp,
                        Namespace::MolecularFunction => &mut info.go_mf,
                        Namespace::CellularComponent => &mut info.go_cc,
                    };
                    list.push(dag.name(term).to_string());
                }
            }
            info
        })
        .collect()
}

/// Merges rows into the atlas's `protein_info` in one transaction; returns the rows written.
pub fn write_protein_info(atlas: &Path, rows: &[ProteinInfo]) -> DescribeResult<usize> {
    let mut connection = open_atlas(atlas)?;
    let action = "writing protein_info";
    let transaction = connection
        .transaction()
        .map_err(DescribeError::sqlite(atlas, action))?;
    {
        let mut statement = transaction
            .prepare(
                "INSERT INTO protein_info (accession, name, gene, organism, go_bp, go_mf, go_cc, \
                 sequence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (accession) DO \
                 UPDATE SET name = COALESCE(excluded.name, name), \
                 gene = COALESCE(excluded.gene, gene), \
                 organism = COALESCE(excluded.organism, organism), \
                 go_bp = COALESCE(excluded.go_bp, go_bp), go_mf = COALESCE(excluded.go_mf, go_mf), \
                 go_cc = COALESCE(excluded.go_cc, go_cc), \
                 sequence = COALESCE(excluded.sequence, sequence)",
            )
            .map_err(DescribeError::sqlite(atlas, action))?;
        let list = |terms: &[String]| (!terms.is_empty()).then(|| terms.join("; "));
        for r in rows {
            statement
                .execute(params![
                    r.accession,
                    r.name,
                    r.gene,
                    r.organism,
                    list(&r.go_bp),
                    list(&r.go_mf),
                    list(&r.go_cc),
                    r.sequence
                ])
                .map_err(DescribeError::sqlite(atlas, action))?;
        }
    }
    transaction
        .commit()
        .map_err(DescribeError::sqlite(atlas, action))?;
    Ok(rows.len())
}

/// Everything a prompt shows about one protein.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProteinMeta {
    pub accession: String,
    pub name: Option<String>,
    pub gene: Option<String>,
    pub organism: Option<String>,
    pub families: Option<String>,
    pub go_bp: Option<String>,
    pub go_mf: Option<String>,
    pub go_cc: Option<String>,
    pub sequence: Option<String>,
}

/// Metadata of every atlas protein, indexed by `proteins.protein`.
pub fn load_protein_meta(connection: &Connection, path: &Path) -> DescribeResult<Vec<ProteinMeta>> {
    let action = "reading protein metadata";
    let mut statement = connection
        .prepare(
            "SELECT p.protein, p.accession, i.name, i.gene, COALESCE(i.organism, p.organism), \
             p.families, i.go_bp, i.go_mf, i.go_cc, i.sequence FROM proteins p \
             LEFT JOIN protein_info i ON i.accession = p.accession ORDER BY p.protein",
        )
        .map_err(DescribeError::sqlite(path, action))?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                ProteinMeta {
                    accession: row.get(1)?,
                    name: row.get(2)?,
                    gene: row.get(3)?,
                    organism: row.get(4)?,
                    families: row.get(5)?,
                    go_bp: row.get(6)?,
                    go_mf: row.get(7)?,
                    go_cc: row.get(8)?,
                    sequence: row.get(9)?,
                },
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(path, action))?;
    let mut meta = vec![ProteinMeta::default(); rows.len()];
    for (protein, m) in rows {
        let slot = meta.get_mut(protein as usize).ok_or_else(|| {
            DescribeError::input(
                format!(
                    "{}: protein ids are not 0..number of proteins",
                    path.display()
                ),
                "use an atlas written by plmscope analyze",
            )
        })?;
        *slot = m;
    }
    Ok(meta)
}

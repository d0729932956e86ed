//! Identifier types: GO term ids, GO namespaces (aspects) and UniProt accessions.

use std::fmt;
use std::str::FromStr;

/// A GO term id such as `GO:0008150`, stored as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoId(pub u32);

impl GoId {
    /// Parses `GO:` followed by exactly seven digits.
    pub fn parse(text: &str) -> Option<GoId> {
        let digits = text.strip_prefix("GO:")?;
        if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(GoId)
    }
}

impl fmt::Display for GoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GO:{:07}", self.0)
    }
}

/// Error of [`GoId::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a GO id (expected GO: followed by seven digits, e.g. GO:0008150)")]
pub struct NotAGoId(pub String);

impl FromStr for GoId {
    type Err = NotAGoId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        GoId::parse(text).ok_or_else(|| NotAGoId(text.to_string()))
    }
}

/// The three GO aspects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    BiologicalProcess,
    MolecularFunction,
    CellularComponent,
}

impl Namespace {
    /// From an OBO `namespace:` value (`biological_process` ...).
    pub fn from_obo(text: &str) -> Option<Namespace> {
        match text {
            "biological_process" => Some(Namespace::BiologicalProcess),
            "molecular_function" => Some(Namespace::MolecularFunction),
            "cellular_component" => Some(Namespace::CellularComponent),
            _ => None,
        }
    }

    /// From a GAF aspect letter (`P`, `F`, `C`).
    pub fn from_aspect(text: &str) -> Option<Namespace> {
        match text {
            "P" => Some(Namespace::BiologicalProcess),
            "F" => Some(Namespace::MolecularFunction),
            "C" => Some(Namespace::CellularComponent),
            _ => None,
        }
    }

    /// Short label: `BP`, `MF` or `CC`.
    pub fn short(self) -> &'static str {
        match self {
            Namespace::BiologicalProcess => "BP",
            Namespace::MolecularFunction => "MF",
            Namespace::CellularComponent => "CC",
        }
    }

    /// The OBO spelling (`biological_process` ...).
    pub fn obo_name(self) -> &'static str {
        match self {
            Namespace::BiologicalProcess => "biological_process",
            Namespace::MolecularFunction => "molecular_function",
            Namespace::CellularComponent => "cellular_component",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// True when `text` has the shape of a UniProtKB accession (6 or 10 characters, as in
/// UniProt's documented pattern), without an isoform suffix.
pub fn is_uniprot_accession(text: &str) -> bool {
    let b = text.as_bytes();
    let upper_or_digit = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    match b.len() {
        6 if matches!(b[0], b'O' | b'P' | b'Q') => {
            b[1].is_ascii_digit()
                && b[2..5].iter().all(|&c| upper_or_digit(c))
                && b[5].is_ascii_digit()
        }
        6 | 10 => {
            // [A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2}
            let first_ok = b[0].is_ascii_uppercase() && !matches!(b[0], b'O' | b'P' | b'Q');
            first_ok
                && b[1].is_ascii_digit()
                && b[2..].chunks(4).all(|block| {
                    block[0].is_ascii_uppercase()
                        && upper_or_digit(block[1])
                        && upper_or_digit(block[2])
                        && block[3].is_ascii_digit()
                })
        }
        _ => false,
    }
}

/// The UniProt accession named in a FASTA header (with or without the leading `>`), if any.
///
/// Handles `sp|P12345|NAME desc`, `tr|...`, TMbed `pdbid_chain|P12345|ENTRY`, SignalP-style
/// `P12345|KINGDOM|TYPE|partition` and bare `P12345 ...`: the first `|`-separated field of the
/// first word that has the shape of an accession.
pub fn uniprot_accession(header: &str) -> Option<&str> {
    let header = header.strip_prefix('>').unwrap_or(header);
    let first_word = header.split_whitespace().next()?;
    first_word
        .split('|')
        .find(|field| is_uniprot_accession(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_id_round_trip_and_rejects() {
        let id = GoId::parse("GO:0008150").unwrap();
        assert_eq!(id, GoId(8150));
        assert_eq!(id.to_string(), "GO:0008150");
        assert!(GoId::parse("GO:008150").is_none());
        assert!(GoId::parse("go:0008150").is_none());
        assert!(GoId::parse("GO:00081a0").is_none());
    }

    #[test]
    fn accessions_from_headers() {
        assert_eq!(
            uniprot_accession(">sp|P04819|DNLI1_YEAST DNA ligase"),
            Some("P04819")
        );
        assert_eq!(
            uniprot_accession("tr|A0A0B4J2F2|X_HUMAN"),
            Some("A0A0B4J2F2")
        );
        assert_eq!(
            uniprot_accession("1afo_A|P02724|GLPA_HUMAN"),
            Some("P02724")
        );
        assert_eq!(uniprot_accession("Q9BEC7|EUKARYA|NO_SP|1"), Some("Q9BEC7"));
        assert_eq!(uniprot_accession("Q5LL55"), Some("Q5LL55"));
        assert_eq!(uniprot_accession("contig_12 something"), None);
        assert!(!is_uniprot_accession("P0481")); // too short
        assert!(!is_uniprot_accession("EUKARYA"));
    }
}

//! Residue-level features as UniProt writes them (`BINDING 33..41; /ligand="ATP"; ...`), shared
//! by the TSV and flat-file readers and produced by the TMbed and bindEmbed21 readers.

use std::fmt;

/// UniProt feature types; the key is the flat-file key (`BINDING`, `ACT_SITE`...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureKind {
    ActiveSite,
    BindingSite,
    Site,
    Transmembrane,
    Intramembrane,
    TopologicalDomain,
    Domain,
    Region,
    Motif,
    Repeat,
    ZincFinger,
    SignalPeptide,
    TransitPeptide,
    DnaBinding,
    DisulfideBond,
    CrossLink,
    ModifiedResidue,
    Glycosylation,
    Lipidation,
    BetaStrand,
    Helix,
    Turn,
    CoiledCoil,
    CompositionalBias,
    Chain,
    Propeptide,
    /// Any other key, kept as written.
    Other(String),
}

/// (flat-file key, TSV column name, kind) for the kinds with a fixed name.
const KINDS: &[(&str, &str, FeatureKind)] = &[
    ("ACT_SITE", "Active site", FeatureKind::ActiveSite),
    ("BINDING", "Binding site", FeatureKind::BindingSite),
    ("SITE", "Site", FeatureKind::Site),
    ("TRANSMEM", "Transmembrane", FeatureKind::Transmembrane),
    ("INTRAMEM", "Intramembrane", FeatureKind::Intramembrane),
    (
        "TOPO_DOM",
        "Topological domain",
        FeatureKind::TopologicalDomain,
    ),
    ("DOMAIN", "Domain [FT]", FeatureKind::Domain),
    ("REGION", "Region", FeatureKind::Region),
    ("MOTIF", "Motif", FeatureKind::Motif),
    ("REPEAT", "Repeat", FeatureKind::Repeat),
    ("ZN_FING", "Zinc finger", FeatureKind::ZincFinger),
    ("SIGNAL", "Signal peptide", FeatureKind::SignalPeptide),
    ("TRANSIT", "Transit peptide", FeatureKind::TransitPeptide),
    ("DNA_BIND", "DNA binding", FeatureKind::DnaBinding),
    ("DISULFID", "Disulfide bond", FeatureKind::DisulfideBond),
    ("CROSSLNK", "Cross-link", FeatureKind::CrossLink),
    ("MOD_RES", "Modified residue", FeatureKind::ModifiedResidue),
    ("CARBOHYD", "Glycosylation", FeatureKind::Glycosylation),
    ("LIPID", "Lipidation", FeatureKind::Lipidation),
    ("STRAND", "Beta strand", FeatureKind::BetaStrand),
    ("HELIX", "Helix", FeatureKind::Helix),
    ("TURN", "Turn", FeatureKind::Turn),
    ("COILED", "Coiled coil", FeatureKind::CoiledCoil),
    (
        "COMPBIAS",
        "Compositional bias",
        FeatureKind::CompositionalBias,
    ),
    ("CHAIN", "Chain", FeatureKind::Chain),
    ("PROPEP", "Propeptide", FeatureKind::Propeptide),
];

/// TSV column names of residue features that differ from [`FeatureKind::column_name`]
/// (older UniProt exports).
const COLUMN_ALIASES: &[(&str, FeatureKind)] = &[
    ("Domain", FeatureKind::Domain),
    ("Metal binding", FeatureKind::BindingSite),
    ("Nucleotide binding", FeatureKind::BindingSite),
    ("Calcium binding", FeatureKind::BindingSite),
];

impl FeatureKind {
    /// From a flat-file key such as `BINDING`.
    pub fn from_key(key: &str) -> FeatureKind {
        match key {
            // Retired keys (before 2022) became BINDING sites.
            "METAL" | "NP_BIND" | "CA_BIND" => FeatureKind::BindingSite,
            _ => KINDS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, kind)| kind.clone())
                .unwrap_or_else(|| FeatureKind::Other(key.to_string())),
        }
    }

    /// The flat-file key.
    pub fn key(&self) -> &str {
        match self {
            FeatureKind::Other(key) => key,
            _ => KINDS
                .iter()
                .find(|(_, _, kind)| kind == self)
                .map(|(key, _, _)| *key)
                .unwrap_or("?"),
        }
    }

    /// The kind whose residues a UniProt TSV column lists, if the column is a feature column.
    pub fn from_column_name(column: &str) -> Option<FeatureKind> {
        KINDS
            .iter()
            .find(|(_, name, _)| *name == column)
            .map(|(_, _, kind)| kind.clone())
            .or_else(|| {
                COLUMN_ALIASES
                    .iter()
                    .find(|(name, _)| *name == column)
                    .map(|(_, kind)| kind.clone())
            })
    }

    /// Bonds name two residues (`DISULFID 12..40`), not a range.
    pub fn is_bond(&self) -> bool {
        matches!(self, FeatureKind::DisulfideBond | FeatureKind::CrossLink)
    }
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How sure an end position is: `<` and `>` say the feature extends beyond it, `?` that it is
/// unknown or uncertain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndCertainty {
    Exact,
    Before,
    After,
    Uncertain,
}

/// Largest residue position accepted. The longest known proteins are under 40,000 residues;
/// the bound keeps [`ResidueFeature::residues`] from allocating a vector sized by a corrupt
/// number (`BINDING 1..4000000000` would be 16 GB).
pub const MAX_POSITION: u32 = 1_000_000;

/// One end of a feature: a 1-based position (absent for a bare `?`) and its certainty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FeatureEnd {
    pub position: Option<u32>,
    pub certainty: EndCertainty,
}

impl FeatureEnd {
    pub fn exact(position: u32) -> FeatureEnd {
        FeatureEnd {
            position: Some(position),
            certainty: EndCertainty::Exact,
        }
    }

    /// Parses `33`, `<1`, `>50`, `?` or `?33`; positions run from 1 to [`MAX_POSITION`].
    pub fn parse(text: &str) -> Option<FeatureEnd> {
        let (certainty, digits) = match text.as_bytes().first()? {
            b'<' => (EndCertainty::Before, &text[1..]),
            b'>' => (EndCertainty::After, &text[1..]),
            b'?' => (EndCertainty::Uncertain, &text[1..]),
            _ => (EndCertainty::Exact, text),
        };
        let position = if digits.is_empty() && certainty == EndCertainty::Uncertain {
            None
        } else {
            Some(
                digits
                    .parse()
                    .ok()
                    .filter(|&p: &u32| (1..=MAX_POSITION).contains(&p))?,
            )
        };
        Some(FeatureEnd {
            position,
            certainty,
        })
    }
}

/// A residue feature with 1-based inclusive ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResidueFeature {
    pub kind: FeatureKind,
    pub start: FeatureEnd,
    pub end: FeatureEnd,
    /// `(name, value)` pairs in file order, quotes removed: `ligand`, `note`, `evidence`...
    pub qualifiers: Vec<(String, String)>,
}

impl ResidueFeature {
    /// First value of a qualifier.
    pub fn qualifier(&self, name: &str) -> Option<&str> {
        self.qualifiers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The 1-based residues the feature covers: both partners for a bond, the whole range
    /// otherwise; unknown ends contribute nothing.
    pub fn residues(&self) -> Vec<u32> {
        match (self.start.position, self.end.position) {
            (Some(start), Some(end)) if self.kind.is_bond() => {
                if start == end {
                    vec![start]
                } else {
                    vec![start, end]
                }
            }
            (Some(start), Some(end)) => (start..=end).collect(),
            (Some(only), None) | (None, Some(only)) if self.kind.is_bond() => vec![only],
            _ => Vec::new(),
        }
    }
}

/// Why a feature text could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureSyntaxError(pub String);

/// Parses a location: `33`, `33..41`, `<1..>50`, `?..41`. Returns `Ok(None)` for locations on
/// another sequence (`P12345-2:10..20`), which say nothing about this one.
pub fn parse_location(text: &str) -> Result<Option<(FeatureEnd, FeatureEnd)>, FeatureSyntaxError> {
    if text.contains(':') {
        return Ok(None);
    }
    let bad = || {
        FeatureSyntaxError(format!(
            "bad feature location '{text}' (positions run from 1 to {MAX_POSITION})"
        ))
    };
    let (start, end) = match text.split_once("..") {
        Some((start, end)) => (start, end),
        None => (text, text),
    };
    let start = FeatureEnd::parse(start.trim()).ok_or_else(bad)?;
    let end = FeatureEnd::parse(end.trim()).ok_or_else(bad)?;
    Ok(Some((start, end)))
}

/// Splits on `separator` outside double quotes.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == separator && !in_quotes {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Parses `/name="value"` (or `/name=value`) into `(name, value)`.
pub fn parse_qualifier(text: &str) -> Option<(String, String)> {
    let (name, value) = text.strip_prefix('/')?.split_once('=')?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((name.trim().to_string(), value.to_string()))
}

/// Parses one TSV feature cell such as
/// `BINDING 33..41; /ligand="ATP"; /evidence="..."; BINDING 56; /ligand="ATP"`.
pub fn parse_feature_cell(text: &str) -> Result<Vec<ResidueFeature>, FeatureSyntaxError> {
    let mut features = Vec::new();
    // A feature on another sequence is skipped together with its qualifiers.
    let mut skipping = false;
    for part in split_outside_quotes(text, ';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if part.starts_with('/') {
            let qualifier = parse_qualifier(part)
                .ok_or_else(|| FeatureSyntaxError(format!("bad qualifier '{part}'")))?;
            match features.last_mut() {
                _ if skipping => {}
                Some(ResidueFeature { qualifiers, .. }) => qualifiers.push(qualifier),
                None => {
                    return Err(FeatureSyntaxError(format!(
                        "qualifier '{part}' comes before any feature"
                    )))
                }
            }
            continue;
        }
        let (key, location) = part
            .split_once(char::is_whitespace)
            .ok_or_else(|| FeatureSyntaxError(format!("feature '{part}' has no location")))?;
        match parse_location(location.trim())? {
            Some((start, end)) => {
                skipping = false;
                features.push(ResidueFeature {
                    kind: FeatureKind::from_key(key),
                    start,
                    end,
                    qualifiers: Vec::new(),
                });
            }
            None => skipping = true,
        }
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binding_cell_with_quoted_semicolons() {
        let cell = r#"BINDING 33..41; /ligand="ATP"; /note="a; b"; BINDING 56; /ligand="ATP""#;
        let features = parse_feature_cell(cell).unwrap();
        assert_eq!(features.len(), 2);
        assert_eq!(features[0].residues(), (33..=41).collect::<Vec<_>>());
        assert_eq!(features[0].qualifier("note"), Some("a; b"));
        assert_eq!(features[1].residues(), vec![56]);
    }

    #[test]
    fn uncertain_ends_and_bonds() {
        let features =
            parse_feature_cell("SIGNAL 1..?; DISULFID 12..40; DOMAIN <1..>50; CHAIN ?20..30")
                .unwrap();
        assert_eq!(features[0].end.position, None);
        assert!(features[0].residues().is_empty());
        assert_eq!(features[1].residues(), vec![12, 40]);
        assert_eq!(features[2].start.certainty, EndCertainty::Before);
        assert_eq!(features[2].end.position, Some(50));
        assert_eq!(
            features[3].start,
            FeatureEnd {
                position: Some(20),
                certainty: EndCertainty::Uncertain
            }
        );
    }

    #[test]
    fn other_isoform_locations_are_skipped_with_their_qualifiers() {
        let features =
            parse_feature_cell("DISULFID P1-2:5..9; /note=\"x\"; DISULFID 3..7").unwrap();
        assert_eq!(features.len(), 1);
        assert!(features[0].qualifiers.is_empty());
        assert!(parse_feature_cell("BINDING abc").is_err());
    }

    /// Caught by tests/mutation.rs's "huge number": `residues()` would collect 4e9 positions.
    #[test]
    fn positions_beyond_any_protein_are_rejected() {
        let error = parse_feature_cell("BINDING 1..4000000000").unwrap_err();
        assert!(error.0.contains("1 to 1000000"), "{}", error.0);
        let edge = parse_feature_cell("BINDING 999999..1000000").unwrap();
        assert_eq!(edge[0].residues().len(), 2);
    }
}

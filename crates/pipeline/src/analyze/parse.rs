//! Text forms of the analyze settings, shared by the command line and the study file: foreground
//! rules, GO namespaces, the multiple-testing correction and residue label sources.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use plmscope_bio::Namespace;
use plmscope_interpret::enrichment::CorrectionMethod;
use plmscope_interpret::pipeline::{ForegroundRule, StoreTests};

/// GO namespaces from `BP`, `MF`, `CC` (or `P`/`F`/`C`, or the full names), duplicates dropped,
/// order kept.
pub fn parse_namespaces<S: AsRef<str>>(names: &[S]) -> Result<Vec<Namespace>> {
    let mut out = Vec::new();
    for name in names {
        let name = name.as_ref();
        let ns = match name.trim().to_ascii_uppercase().as_str() {
            "BP" | "P" | "BIOLOGICAL_PROCESS" => Namespace::BiologicalProcess,
            "MF" | "F" | "MOLECULAR_FUNCTION" => Namespace::MolecularFunction,
            "CC" | "C" | "CELLULAR_COMPONENT" => Namespace::CellularComponent,
            _ => bail!("--namespace {name}: expected BP, MF or CC (comma-separated)"),
        };
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    Ok(out)
}

/// A foreground rule: `topk`, `above:T`, `top:N`, `quantile:Q`, and for neurons (`neurons`
/// true) also `match`.
pub fn parse_rule(text: &str, neurons: bool) -> Result<ForegroundRule> {
    let expected = "expected topk, above:T, top:N or quantile:Q (neurons also: match)";
    let bad = |why: &str| anyhow!("foreground rule '{text}': {why}; {expected}");
    let (name, value) = text.split_once(':').unwrap_or((text, ""));
    let rule = match (name.trim(), value.trim()) {
        ("topk", "") => ForegroundRule::TopKMember,
        ("match", "") if neurons => ForegroundRule::MatchFeatures,
        ("match", "") => return Err(bad("match is a neuron rule")),
        ("above", t) => ForegroundRule::Above(
            t.parse::<f32>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| bad("T must be a finite number"))?,
        ),
        ("top", n) => ForegroundRule::TopProteins(
            n.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("N must be a positive integer"))?,
        ),
        ("quantile", q) => ForegroundRule::AboveQuantile(
            q.parse::<f64>()
                .ok()
                .filter(|q| *q > 0.0 && *q < 1.0)
                .ok_or_else(|| bad("Q must lie strictly between 0 and 1"))?,
        ),
        _ => return Err(bad("unknown rule")),
    };
    Ok(rule)
}

/// `bh` (Benjamini-Hochberg) or `bonferroni`.
pub fn parse_correction(text: &str) -> Result<CorrectionMethod> {
    match text.trim().to_ascii_lowercase().as_str() {
        "bh" => Ok(CorrectionMethod::BenjaminiHochberg),
        "bonferroni" => Ok(CorrectionMethod::Bonferroni),
        _ => bail!("correction '{text}': expected bh or bonferroni"),
    }
}

/// Which enrichment tests are stored: `nominal` (p < 0.05), `significant` (q < alpha) or `all`.
pub fn parse_store_tests(text: &str) -> Result<StoreTests> {
    match text.trim().to_ascii_lowercase().as_str() {
        "nominal" => Ok(StoreTests::Nominal),
        "significant" => Ok(StoreTests::Significant),
        "all" => Ok(StoreTests::All),
        _ => bail!("store tests '{text}': expected nominal, significant or all"),
    }
}

/// Ligand classes of bindEmbed21's binding residue files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LigandClass {
    Metal,
    Nuclear,
    Small,
}

impl LigandClass {
    /// The name bindEmbed21 uses, also the concept's suffix (`binding:metal`).
    pub fn name(self) -> &'static str {
        match self {
            LigandClass::Metal => "metal",
            LigandClass::Nuclear => "nuclear",
            LigandClass::Small => "small",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "metal" => Some(LigandClass::Metal),
            "nuclear" => Some(LigandClass::Nuclear),
            "small" => Some(LigandClass::Small),
            _ => None,
        }
    }
}

/// What a residue label file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelKind {
    /// TMbed 3-line labels: transmembrane helices, strands, signal peptides.
    Tmbed,
    /// bindEmbed21 binding residues of one ligand class.
    Binding(LigandClass),
    /// Residue feature columns of a UniProt TSV or flat file.
    UniProt,
}

/// One residue label file for concept scores, written `KIND=FILE` (`tmbed=alpha.fasta`,
/// `metal=...`, `binding=binding_residues_2.5_metal.txt`, `uniprot=features.tsv`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSource {
    pub kind: LabelKind,
    pub path: PathBuf,
}

impl FromStr for LabelSource {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let usage = "expected KIND=FILE with KIND tmbed, metal, nuclear, small, binding or uniprot";
        let (kind, file) = text
            .split_once('=')
            .ok_or_else(|| anyhow!("--residue-labels {text}: {usage}"))?;
        let path = PathBuf::from(file);
        let kind = match kind.trim() {
            "tmbed" => LabelKind::Tmbed,
            "binding" => {
                // bindEmbed21 names its files binding_residues_<cutoff>_<class>.txt.
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                let class = stem
                    .as_deref()
                    .and_then(|s| s.rsplit('_').next())
                    .and_then(LigandClass::from_name)
                    .ok_or_else(|| {
                        anyhow!(
                            "--residue-labels {text}: no ligand class (metal, nuclear, small) \
                             at the end of the file name; write metal={file} etc."
                        )
                    })?;
                LabelKind::Binding(class)
            }
            "uniprot" => LabelKind::UniProt,
            other => match LigandClass::from_name(other) {
                Some(class) => LabelKind::Binding(class),
                None => bail!("--residue-labels {text}: unknown kind '{other}'; {usage}"),
            },
        };
        Ok(LabelSource { kind, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreground_rules_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_rule("topk", false).unwrap(),
            ForegroundRule::TopKMember
        );
        assert_eq!(
            parse_rule("above:0.5", false).unwrap(),
            ForegroundRule::Above(0.5)
        );
        assert_eq!(
            parse_rule("top:30", true).unwrap(),
            ForegroundRule::TopProteins(30)
        );
        assert_eq!(
            parse_rule("quantile:0.99", false).unwrap(),
            ForegroundRule::AboveQuantile(0.99)
        );
        assert_eq!(
            parse_rule("match", true).unwrap(),
            ForegroundRule::MatchFeatures
        );
        for bad in ["match", "above:nan", "top:0", "quantile:1", "top", "best:3"] {
            assert!(parse_rule(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_kinds_take_the_ligand_class_from_kind_or_file_name() {
        let source = |t: &str| t.parse::<LabelSource>();
        let binding = source("binding=dev/binding_residues_2.5_nuclear.txt").unwrap();
        assert_eq!(binding.kind, LabelKind::Binding(LigandClass::Nuclear));
        assert_eq!(
            source("small=x.txt").unwrap().kind,
            LabelKind::Binding(LigandClass::Small)
        );
        assert_eq!(source("tmbed=a.fasta").unwrap().kind, LabelKind::Tmbed);
        assert_eq!(
            source("uniprot=u.tsv").unwrap().path,
            PathBuf::from("u.tsv")
        );
        assert!(source("binding=labels.txt").is_err());
        assert!(source("tmbed").is_err());
        assert!(source("pfam=x.txt").is_err());
    }

    #[test]
    fn namespaces_and_corrections_parse() {
        assert_eq!(
            parse_namespaces(&["bp", "F", "BP"]).unwrap(),
            [Namespace::BiologicalProcess, Namespace::MolecularFunction]
        );
        assert!(parse_namespaces(&["XX"]).is_err());
        assert_eq!(
            parse_correction("BH").unwrap(),
            CorrectionMethod::BenjaminiHochberg
        );
        assert_eq!(
            parse_correction("bonferroni").unwrap(),
            CorrectionMethod::Bonferroni
        );
        assert!(parse_correction("holm").is_err());
        assert_eq!(parse_store_tests("All").unwrap(), StoreTests::All);
        assert_eq!(
            parse_store_tests("significant").unwrap(),
            StoreTests::Significant
        );
        assert!(parse_store_tests("some").is_err());
    }
}

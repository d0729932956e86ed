//! What `describe` prompts need, written into the atlas at analyze time: every unit's
//! per-protein activations (residue-level units mean-pooled per protein, as the seed paper
//! does) and protein names, genes, organisms and GO term names (`protein_info`), from the
//! annotation files and from UniProt FASTA headers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_bio::{uniprot_accession, AnnotationTable, FastaReader, GoDag};
use plmscope_interpret::activations::Activations;
use plmscope_interpret::atlas::UnitKind;
use plmscope_interpret::describe::delphi::{write_residue_windows, WindowOptions};
use plmscope_interpret::describe::{
    protein_info_from_annotations, protein_info_from_fasta, write_protein_activations,
    write_protein_info, ProteinInfo,
};

use super::units::Proteins;
use super::AnalyzeRequest;

/// The name the atlas is finished under before it is moved to `out`.
pub(crate) fn staging_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".staging");
    PathBuf::from(name)
}

/// Writes the describe tables into the (staging) atlas at `atlas`. Features are units
/// `0..n_features`, neurons follow them, as the analysis numbers them.
pub(crate) fn write(
    atlas: &Path,
    proteins: &Proteins,
    features: Option<Activations>,
    neurons: Option<Activations>,
    annotations: &AnnotationTable,
    dag: Option<&GoDag>,
    request: &AnalyzeRequest,
) -> Result<()> {
    let (fasta, residue_windows) = (&request.fasta[..], request.residue_windows);
    let n = u32::try_from(proteins.len()).context("more than 2^32 proteins")?;
    let mut offset = 0;
    if let Some(features) = &features {
        write_protein_activations(atlas, UnitKind::Feature, 0, features, n)
            .context("writing the features' per-protein activations")?;
        offset = features.n_units();
    }
    if let Some(neurons) = &neurons {
        write_protein_activations(atlas, UnitKind::Neuron, offset, neurons, n)
            .context("writing the neurons' per-protein activations")?;
    }
    if residue_windows {
        write_windows(atlas, proteins, &features, &neurons, fasta)?;
    }
    let wanted: BTreeSet<&str> = proteins.accessions.iter().map(String::as_str).collect();
    let mut rows: Vec<ProteinInfo> = protein_info_from_annotations(annotations, dag)
        .into_iter()
        .filter(|r| wanted.contains(r.accession.as_str()))
        .collect();
    for path in fasta {
        for mut row in protein_info_from_fasta(path, false)
            .with_context(|| format!("reading protein names from {}", path.display()))?
        {
            // The FASTA reader keys a record by its first word (`sp|P12345|NAME_ECOLI`); the
            // atlas keys proteins by accession.
            if let Some(accession) = uniprot_accession(&row.accession) {
                row.accession = accession.to_string();
            }
            if wanted.contains(row.accession.as_str()) {
                rows.push(row);
            }
        }
    }
    write_protein_info(atlas, &rows).context("writing protein names for describe")?;
    Ok(())
}

/// delphi's residue windows of the residue-level units, with sequences from the FASTA files.
fn write_windows(
    atlas: &Path,
    proteins: &Proteins,
    features: &Option<Activations>,
    neurons: &Option<Activations>,
    fasta: &[PathBuf],
) -> Result<()> {
    let residue_level =
        |a: &Option<Activations>| a.as_ref().is_some_and(|a| a.level() == "residue");
    if !residue_level(features) && !residue_level(neurons) {
        return Ok(());
    }
    let mut by_accession: BTreeMap<String, String> = BTreeMap::new();
    for path in fasta {
        let reader = FastaReader::open(path)
            .with_context(|| format!("reading sequences from {}", path.display()))?;
        for record in reader {
            let record = record.with_context(|| format!("reading {}", path.display()))?;
            let accession = uniprot_accession(&record.id)
                .unwrap_or(&record.id)
                .to_string();
            by_accession.entry(accession).or_insert(record.sequence);
        }
    }
    let mut sequences = Vec::with_capacity(proteins.len());
    for (accession, length) in proteins.accessions.iter().zip(&proteins.lengths) {
        match by_accession.get(accession) {
            Some(s) if s.len() >= *length as usize => sequences.push(s.as_str()),
            _ => bail!(
                "residue windows need every protein's sequence: {accession} is not in {} (or is shorter than embedded); pass the FASTA the activations were embedded from (--fasta)",
                if fasta.is_empty() {
                    "any --fasta file".to_string()
                } else {
                    fasta
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }
    }
    let options = WindowOptions::default();
    let mut offset = 0;
    if let Some(f) = features {
        if f.level() == "residue" {
            write_residue_windows(atlas, UnitKind::Feature, 0, f, &sequences, &options)
                .context("writing the features' residue windows")?;
        }
        offset = f.n_units();
    }
    if let Some(n) = neurons {
        if n.level() == "residue" {
            write_residue_windows(atlas, UnitKind::Neuron, offset, n, &sequences, &options)
                .context("writing the neurons' residue windows")?;
        }
    }
    Ok(())
}

//! `manifest.json` of an activation set and the layout of one `shard-NNNNN.safetensors`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::convert::{write_f32_as, write_u32};
use crate::st::{map_file, write_safetensors, ParsedHeader, TensorSpec};
use crate::{Level, ModelRef, SetHeader, Site, StorageDtype, StoreError};

/// `format` value of an activation set's manifest.
pub const ACTIVATIONS_FORMAT: &str = "plmscope.activations";
/// Manifest version this crate writes and reads.
pub const ACTIVATIONS_VERSION: u32 = 1;
/// Manifest file name inside the set directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Protein table file name inside the set directory.
pub const PROTEINS_FILE: &str = "proteins.tsv";
/// Shard files start with this.
pub(crate) const SHARD_PREFIX: &str = "shard-";
/// `__metadata__` key under which a shard records its proteins (ids and lengths), so a resumed
/// run can rebuild `proteins.tsv` without the input FASTA.
const PROTEINS_METADATA_KEY: &str = "proteins";

/// File name of shard `index`.
pub fn shard_file_name(index: usize) -> String {
    format!("{SHARD_PREFIX}{index:05}.safetensors")
}

/// One protein as the embedder hands it to the writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProteinEntry {
    /// First word of the FASTA header.
    pub id: String,
    /// Residues embedded (rows at residue level; after any truncation).
    pub length: usize,
}

/// A shard as listed in a finished manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// File name inside the set directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: usize,
    /// Proteins in the shard.
    pub proteins: usize,
    /// Global index of the shard's first protein.
    pub first_protein: usize,
    /// sha256 (hex) of the whole file.
    pub sha256: String,
}

/// The parsed `manifest.json` of an activation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationManifest {
    /// Always [`ACTIVATIONS_FORMAT`].
    pub format: String,
    /// Always [`ACTIVATIONS_VERSION`] for now.
    pub version: u32,
    /// The model.
    pub model: ModelRef,
    /// Layer.
    pub layer: usize,
    /// Capture site.
    pub site: Site,
    /// Residue or protein rows.
    pub level: Level,
    /// Row width.
    pub d_model: usize,
    /// Storage dtype.
    pub dtype: StorageDtype,
    /// Proteins per shard.
    pub proteins_per_shard: usize,
    /// Proteins in the set.
    pub total_proteins: usize,
    /// Every shard, in order; empty until the set is complete.
    pub shards: Vec<ShardRecord>,
    /// False until every shard and `proteins.tsv` are in place.
    pub complete: bool,
    /// Run notes.
    pub extra: serde_json::Value,
}

impl ActivationManifest {
    pub(crate) fn new(header: &SetHeader, shards: Vec<ShardRecord>, complete: bool) -> Self {
        ActivationManifest {
            format: ACTIVATIONS_FORMAT.to_string(),
            version: ACTIVATIONS_VERSION,
            model: header.model.clone(),
            layer: header.layer,
            site: header.site,
            level: header.level,
            d_model: header.d_model,
            dtype: header.dtype,
            proteins_per_shard: header.proteins_per_shard,
            total_proteins: header.total_proteins,
            shards,
            complete,
            extra: crate::header::canonical_json(&header.extra),
        }
    }

    /// The header this manifest describes.
    pub fn header(&self) -> SetHeader {
        SetHeader {
            model: self.model.clone(),
            layer: self.layer,
            site: self.site,
            level: self.level,
            d_model: self.d_model,
            dtype: self.dtype,
            proteins_per_shard: self.proteins_per_shard,
            total_proteins: self.total_proteins,
            extra: self.extra.clone(),
        }
    }

    /// Reads `dir/manifest.json` and checks its format and version.
    pub(crate) fn read(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(MANIFEST_FILE);
        let manifest: ActivationManifest = crate::fsio::read_json(&path)?;
        if manifest.format != ACTIVATIONS_FORMAT || manifest.version != ACTIVATIONS_VERSION {
            return Err(StoreError::Manifest {
                path,
                message: format!(
                    "format {:?} version {} is not {ACTIVATIONS_FORMAT:?} version {ACTIVATIONS_VERSION}",
                    manifest.format, manifest.version
                ),
            });
        }
        if manifest.proteins_per_shard == 0 || manifest.d_model == 0 {
            return Err(StoreError::Manifest {
                path,
                message: "proteins_per_shard and d_model must be positive".to_string(),
            });
        }
        Ok(manifest)
    }
}

/// Rows a shard with these proteins holds.
pub(crate) fn shard_rows(level: Level, proteins: &[ProteinEntry]) -> usize {
    match level {
        Level::Residue => proteins.iter().map(|p| p.length).sum(),
        Level::Protein => proteins.len(),
    }
}

/// Writes one shard atomically; returns its sha256. Inputs are validated by the caller.
pub(crate) fn write_shard_file(
    path: &Path,
    header: &SetHeader,
    first_protein: usize,
    proteins: &[ProteinEntry],
    activations: &[f32],
) -> Result<String, StoreError> {
    let rows = shard_rows(header.level, proteins);
    let dtype = header.dtype;
    let mut tensors = vec![TensorSpec {
        name: "activations",
        dtype: header.dtype.safetensors_dtype(),
        shape: vec![rows, header.d_model],
        emit: Box::new(move |w| write_f32_as(dtype, activations, w)),
    }];
    if header.level == Level::Residue {
        // Global protein index and 0-based residue position of every row, protein-major.
        let mut protein_column = Vec::with_capacity(rows);
        let mut position_column = Vec::with_capacity(rows);
        for (offset, protein) in proteins.iter().enumerate() {
            let index = u32::try_from(first_protein + offset).map_err(|_| {
                StoreError::InvalidInput("protein index does not fit in u32".to_string())
            })?;
            let length = u32::try_from(protein.length).map_err(|_| {
                StoreError::InvalidInput(format!("protein {} is too long", protein.id))
            })?;
            protein_column.extend(std::iter::repeat_n(index, protein.length));
            position_column.extend(0..length);
        }
        tensors.push(TensorSpec {
            name: "protein",
            dtype: safetensors::Dtype::U32,
            shape: vec![rows],
            emit: Box::new(move |w| write_u32(&protein_column, w)),
        });
        tensors.push(TensorSpec {
            name: "position",
            dtype: safetensors::Dtype::U32,
            shape: vec![rows],
            emit: Box::new(move |w| write_u32(&position_column, w)),
        });
    }
    let proteins_json =
        serde_json::to_string(proteins).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
    write_safetensors(
        path,
        tensors,
        Some((PROTEINS_METADATA_KEY.to_string(), proteins_json)),
    )
}

/// Checks that an existing shard file is whole and fits the header; returns its proteins.
/// Only the header is read (plus the file length), so resuming a large set stays cheap.
pub(crate) fn inspect_shard_file(
    path: &Path,
    header: &SetHeader,
    shard: usize,
) -> Result<Vec<ProteinEntry>, StoreError> {
    let map = map_file(path)?;
    let parsed = ParsedHeader::parse(path, &map)?;
    let proteins: Vec<ProteinEntry> = parsed
        .metadata_entry(PROTEINS_METADATA_KEY)
        .ok_or_else(|| StoreError::shard(path, "no protein list in __metadata__"))
        .and_then(|text| {
            serde_json::from_str(text)
                .map_err(|e| StoreError::shard(path, format!("protein list: {e}")))
        })?;
    let expected = header.shard_proteins(shard).len();
    if proteins.len() != expected {
        return Err(StoreError::shard(
            path,
            format!("holds {} proteins, expected {expected}", proteins.len()),
        ));
    }
    let rows = shard_rows(header.level, &proteins);
    parsed.tensor(
        path,
        "activations",
        header.dtype.safetensors_dtype(),
        &[rows, header.d_model],
    )?;
    if header.level == Level::Residue {
        parsed.tensor(path, "protein", safetensors::Dtype::U32, &[rows])?;
        parsed.tensor(path, "position", safetensors::Dtype::U32, &[rows])?;
    }
    Ok(proteins)
}

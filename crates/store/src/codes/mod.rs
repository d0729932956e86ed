//! Code sets: a dictionary's sparse codes for every row of an activation set, stored as CSR
//! (`row_ptr` u64 `[rows + 1]`, `feature` u32 `[nnz]`, `value` f32 `[nnz]`) in
//! `codes-NNNNN.safetensors`, one shard per activation shard so rows line up.

mod reader;
mod writer;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use reader::CodeSet;
pub use writer::CodeSetWriter;

use crate::{ActivationSet, Level, ModelRef, Site, StoreError};

/// `format` value of a code set's manifest.
pub const CODES_FORMAT: &str = "plmscope.codes";
/// Manifest version this crate writes and reads.
pub const CODES_VERSION: u32 = 1;
/// Code shard files start with this.
pub(crate) const CODES_PREFIX: &str = "codes-";

/// File name of code shard `index`.
pub fn codes_file_name(index: usize) -> String {
    format!("{CODES_PREFIX}{index:05}.safetensors")
}

/// The activation set a code set was encoded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationSourceRef {
    /// The model.
    pub model: ModelRef,
    /// Layer.
    pub layer: usize,
    /// Capture site.
    pub site: Site,
    /// Residue or protein rows.
    pub level: Level,
    /// Row width of the activations.
    pub d_model: usize,
    /// Proteins in the activation set.
    pub total_proteins: usize,
    /// Rows in the activation set (and in the code set).
    pub rows: usize,
}

/// The dictionary that produced the codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictionaryRef {
    /// Where it was loaded from (path or hub id).
    pub id: String,
    /// `topk`, `batchtopk`, `relu`, `jumprelu`.
    pub architecture: String,
    /// Number of features; every stored feature index is below it.
    pub d_sae: usize,
    /// sha256 of the weights file.
    pub weights_sha256: String,
}

/// Everything that identifies a code set, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeSetHeader {
    /// The activations encoded.
    pub source: ActivationSourceRef,
    /// The dictionary.
    pub dictionary: DictionaryRef,
    /// Rows of each shard (those of the activation set's shards).
    pub shard_rows: Vec<usize>,
    /// Free-form notes; `finish` merges its notes in.
    pub extra: serde_json::Value,
}

impl CodeSetHeader {
    /// The header of a code set that encodes `set` with `dictionary`, shard for shard.
    pub fn for_activation_set(
        set: &ActivationSet,
        dictionary: DictionaryRef,
        extra: serde_json::Value,
    ) -> Self {
        let header = set.header();
        CodeSetHeader {
            source: ActivationSourceRef {
                model: header.model.clone(),
                layer: header.layer,
                site: header.site,
                level: header.level,
                d_model: header.d_model,
                total_proteins: header.total_proteins,
                rows: set.rows(),
            },
            dictionary,
            shard_rows: set.manifest().shards.iter().map(|s| s.rows).collect(),
            extra,
        }
    }
}

/// A code shard as listed in a finished manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeShardRecord {
    /// File name inside the set directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: usize,
    /// Non-zero entries in the shard.
    pub nnz: usize,
    /// sha256 (hex) of the whole file.
    pub sha256: String,
}

/// The parsed `manifest.json` of a code set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeManifest {
    /// Always [`CODES_FORMAT`].
    pub format: String,
    /// Always [`CODES_VERSION`] for now.
    pub version: u32,
    /// The activations encoded.
    pub source: ActivationSourceRef,
    /// The dictionary.
    pub dictionary: DictionaryRef,
    /// Rows of each shard.
    pub shard_rows: Vec<usize>,
    /// Every shard, in order; empty until the set is complete.
    pub shards: Vec<CodeShardRecord>,
    /// False until every shard is in place.
    pub complete: bool,
    /// Run notes.
    pub extra: serde_json::Value,
}

impl CodeManifest {
    pub(crate) fn read(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(crate::MANIFEST_FILE);
        let manifest: CodeManifest = crate::fsio::read_json(&path)?;
        if manifest.format != CODES_FORMAT || manifest.version != CODES_VERSION {
            return Err(StoreError::Manifest {
                path,
                message: format!(
                    "format {:?} version {} is not {CODES_FORMAT:?} version {CODES_VERSION}",
                    manifest.format, manifest.version
                ),
            });
        }
        Ok(manifest)
    }

    /// The header this manifest describes.
    pub fn header(&self) -> CodeSetHeader {
        CodeSetHeader {
            source: self.source.clone(),
            dictionary: self.dictionary.clone(),
            shard_rows: self.shard_rows.clone(),
            extra: self.extra.clone(),
        }
    }
}

/// Sparse rows in CSR form, the one owned CSR type: what an encoder and the SAE trainer produce
/// (`plmscope_sae::SparseCodes` wraps it) and what one code shard holds.
/// `plmscope_interpret::foreground::SparseCodes` is a borrowed view of this same layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsrRows {
    /// `row_ptr[r]..row_ptr[r + 1]` are row `r`'s entries; starts at 0, `rows + 1` long.
    pub row_ptr: Vec<u64>,
    /// Feature index of each entry.
    pub feature: Vec<u32>,
    /// Value of each entry.
    pub value: Vec<f32>,
}

impl CsrRows {
    /// No rows yet.
    pub fn new() -> Self {
        CsrRows {
            row_ptr: vec![0],
            feature: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Appends one row given as parallel slices (panics when their lengths differ).
    pub fn push_row(&mut self, features: &[u32], values: &[f32]) {
        assert_eq!(
            features.len(),
            values.len(),
            "features and values differ in length"
        );
        if self.row_ptr.is_empty() {
            self.row_ptr.push(0);
        }
        self.feature.extend_from_slice(features);
        self.value.extend_from_slice(values);
        self.row_ptr.push(self.feature.len() as u64);
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// Row `r`'s (features, values); panics when `r >= rows()`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
        (&self.feature[a..b], &self.value[a..b])
    }

    /// Entries held.
    pub fn nnz(&self) -> usize {
        self.feature.len()
    }

    /// The row of every entry, in entry order (the row indices of the COO form).
    pub fn entry_rows(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.nnz());
        for (r, w) in self.row_ptr.windows(2).enumerate() {
            out.extend(std::iter::repeat_n(r as u32, (w[1] - w[0]) as usize));
        }
        out
    }

    /// Checks the CSR invariants and that every feature is below `d_sae`.
    pub fn validate(&self, d_sae: usize) -> Result<(), String> {
        if self.row_ptr.first() != Some(&0) {
            return Err("row_ptr must start with 0".into());
        }
        if self.feature.len() != self.value.len() {
            return Err(format!(
                "{} features but {} values",
                self.feature.len(),
                self.value.len()
            ));
        }
        if self.row_ptr.windows(2).any(|w| w[0] > w[1]) {
            return Err("row_ptr decreases".into());
        }
        if self.row_ptr.last() != Some(&(self.feature.len() as u64)) {
            return Err(format!(
                "row_ptr ends at {:?}, expected nnz {}",
                self.row_ptr.last(),
                self.feature.len()
            ));
        }
        if let Some(f) = self.feature.iter().find(|&&f| f as usize >= d_sae) {
            return Err(format!("feature {f} is not below d_sae {d_sae}"));
        }
        Ok(())
    }
}

//! Embeddings made elsewhere → an activation set: fair-esm `extract.py` folders, HDF5 files with
//! one dataset per protein, NumPy `.npy` (one `[n, d]` array + an ids file, or a folder of one
//! `[L, d]` / `[d]` array per protein).
//!
//! A per-residue input gives a residue-level set, or a protein-level one by the mean over
//! residues (fair-esm's own `mean_representations` when the file has them, so values equal
//! what extract.py wrote; otherwise the mean accumulated in f64). A per-protein vector gives a
//! protein-level set only; its length comes from the residue data or, failing that, `--fasta`.
//! Proteins are ordered by file or dataset name (by the ids file for one `.npy` array); ids are
//! the FASTA record ids of fair-esm labels (UniProt accession or first word), and dataset or
//! file names otherwise.

mod fair_esm;
pub mod hdf5;
pub mod npy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plmscope_store::{
    ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, Site, StorageDtype,
};

use crate::error::{ExchangeError, Result};

/// Which tool wrote the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// fair-esm `scripts/extract.py` output folder.
    FairEsm,
    /// HDF5 with one dataset per protein.
    Hdf5,
    /// NumPy `.npy`: one `[n, d]` array with `ids`, or a folder of per-protein arrays.
    Npy,
}

impl std::str::FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fair-esm" => Ok(ImportFormat::FairEsm),
            "hdf5" | "h5" => Ok(ImportFormat::Hdf5),
            "npy" => Ok(ImportFormat::Npy),
            other => Err(format!(
                "unknown format {other:?}; expected fair-esm, hdf5 or npy"
            )),
        }
    }
}

/// What to import and how to record it. With the `cli` feature it is also `plmscope import`'s
/// arguments (the field docs are their help).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ImportRequest {
    /// fair-esm, hdf5 or npy.
    #[cfg_attr(feature = "cli", arg(long))]
    pub format: ImportFormat,
    /// The folder or file to read.
    pub input: PathBuf,
    /// residue (per-residue inputs only) or protein (per-protein vectors, or the residue mean).
    #[cfg_attr(feature = "cli", arg(long, default_value = "residue"))]
    pub level: Level,
    /// fair-esm: the layer to take when the files hold several; recorded in the manifest.
    #[cfg_attr(feature = "cli", arg(long))]
    pub layer: Option<usize>,
    /// One protein id per line, in row order, for a single `[n, d]` .npy array.
    #[cfg_attr(feature = "cli", arg(long))]
    pub ids: Option<PathBuf>,
    /// FASTA with the sequences, for the lengths of proteins given only as one vector.
    #[cfg_attr(feature = "cli", arg(long))]
    pub fasta: Option<PathBuf>,
    /// The model that made the embeddings, recorded in the manifest.
    #[cfg_attr(feature = "cli", arg(long, default_value = "imported"))]
    pub model: String,
    /// The site recorded in the manifest (resid_post: a layer's hidden state).
    #[cfg_attr(feature = "cli", arg(long, default_value = "resid_post"))]
    pub site: Site,
    /// Storage dtype: f32, f16 or bf16.
    #[cfg_attr(feature = "cli", arg(long, default_value = "f32"))]
    pub dtype: StorageDtype,
    /// Proteins per shard file.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub proteins_per_shard: usize,
    /// The activation set to write (resumed when it exists with the same settings).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub proteins: usize,
    pub rows: usize,
    pub d_model: usize,
    pub layer: usize,
}

/// One protein's embedding as read.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub id: String,
    pub d: usize,
    /// Residue count when known.
    pub length: Option<usize>,
    /// `[length, d]` row-major, when the input has per-residue values.
    pub residues: Option<Vec<f32>>,
    /// `[d]`, when the input has a per-protein vector.
    pub mean: Option<Vec<f32>>,
}

/// Where each protein's embedding is read from.
enum Source {
    FairEsm(Vec<PathBuf>),
    Hdf5(hdf5::Hdf5File, Vec<(String, u64)>),
    NpyRows {
        ids: Vec<String>,
        d: usize,
        values: Vec<f32>,
    },
    NpyFiles(Vec<PathBuf>),
}

impl Source {
    fn open(request: &ImportRequest) -> Result<Source> {
        let input = &request.input;
        match request.format {
            ImportFormat::FairEsm => Ok(Source::FairEsm(fair_esm::list(input)?)),
            ImportFormat::Hdf5 => {
                let file = hdf5::Hdf5File::open(input)?;
                let datasets = file.datasets()?;
                if datasets.is_empty() {
                    return Err(ExchangeError::format(input, "holds no datasets"));
                }
                Ok(Source::Hdf5(file, datasets))
            }
            ImportFormat::Npy if input.is_dir() => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                    .map_err(ExchangeError::io(input, "listing"))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "npy"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(ExchangeError::format(input, "holds no .npy files"));
                }
                Ok(Source::NpyFiles(files))
            }
            ImportFormat::Npy => {
                let ids_path = request.ids.as_ref().ok_or_else(|| {
                    ExchangeError::Invalid(format!(
                        "{} is one array; pass --ids with one protein id per line, in row order \
                         (or give a folder of one .npy per protein)",
                        input.display()
                    ))
                })?;
                let text = std::fs::read_to_string(ids_path)
                    .map_err(ExchangeError::io(ids_path, "reading"))?;
                let ids: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                let array = npy::read_npy(input)?;
                if array.shape.len() != 2 || array.shape[0] != ids.len() {
                    return Err(ExchangeError::format(
                        input,
                        format!(
                            "shape {:?} does not match {} ids in {} (expected [n, d])",
                            array.shape,
                            ids.len(),
                            ids_path.display()
                        ),
                    ));
                }
                Ok(Source::NpyRows {
                    ids,
                    d: array.shape[1],
                    values: array.values,
                })
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::FairEsm(files) | Source::NpyFiles(files) => files.len(),
            Source::Hdf5(_, datasets) => datasets.len(),
            Source::NpyRows { ids, .. } => ids.len(),
        }
    }

    /// Protein `i` and the layer it was read at (fair-esm only).
    fn load(&self, i: usize, layer: Option<usize>) -> Result<(Embedding, Option<usize>)> {
        let from_array =
            |id: String, shape: &[usize], values: Vec<f32>, path: &Path| -> Result<Embedding> {
                match *shape {
                    [rows, d] => Ok(Embedding {
                        id,
                        d,
                        length: Some(rows),
                        residues: Some(values),
                        mean: None,
                    }),
                    [d] => Ok(Embedding {
                        id,
                        d,
                        length: None,
                        residues: None,
                        mean: Some(values),
                    }),
                    _ => Err(ExchangeError::format(
                        path,
                        format!("{id}: shape {shape:?}, expected [L, d] or [d]"),
                    )),
                }
            };
        match self {
            Source::FairEsm(files) => fair_esm::load(&files[i], layer).map(|(e, l)| (e, Some(l))),
            Source::Hdf5(file, datasets) => {
                let (name, address) = &datasets[i];
                let data = file.read(name, *address)?;
                let path = PathBuf::from(name);
                from_array(name.clone(), &data.shape, data.values, &path).map(|e| (e, None))
            }
            Source::NpyRows { ids, d, values } => Ok((
                Embedding {
                    id: ids[i].clone(),
                    d: *d,
                    length: None,
                    residues: None,
                    mean: Some(values[i * d..(i + 1) * d].to_vec()),
                },
                None,
            )),
            Source::NpyFiles(files) => {
                let path = &files[i];
                let array = npy::read_npy(path)?;
                let id = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                from_array(id, &array.shape, array.values, path).map(|e| (e, None))
            }
        }
    }
}

/// Lengths by id from a FASTA file.
fn fasta_lengths(path: &Path) -> Result<HashMap<String, usize>> {
    let reader = plmscope_bio::fasta::FastaReader::open(path)
        .map_err(|e| ExchangeError::format(path, e.to_string()))?;
    let mut out = HashMap::new();
    for record in reader {
        let record = record.map_err(|e| ExchangeError::format(path, e.to_string()))?;
        out.insert(record.id, record.sequence.len());
    }
    Ok(out)
}

/// The rows one protein contributes at `level`, and its length.
fn rows_for(
    e: Embedding,
    level: Level,
    lengths: &Option<HashMap<String, usize>>,
) -> Result<(ProteinEntry, Vec<f32>)> {
    let length = match e
        .length
        .or_else(|| lengths.as_ref().and_then(|m| m.get(&e.id).copied()))
    {
        Some(l) => l,
        None if lengths.is_some() => {
            return Err(ExchangeError::Invalid(format!(
                "protein {} is not in the --fasta file",
                e.id
            )))
        }
        None => {
            return Err(ExchangeError::Invalid(format!(
                "protein {} has only a per-protein vector; pass --fasta with the sequences so its \
                 length can be recorded",
                e.id
            )))
        }
    };
    let values = match level {
        Level::Residue => e.residues.ok_or_else(|| {
            ExchangeError::Invalid(format!(
                "protein {} has only a per-protein vector; import it with --level protein",
                e.id
            ))
        })?,
        Level::Protein => match (e.mean, e.residues) {
            (Some(mean), _) => mean,
            (None, Some(residues)) => mean_rows(&residues, e.d),
            (None, None) => unreachable!("an embedding has residues or a mean"),
        },
    };
    Ok((ProteinEntry { id: e.id, length }, values))
}

/// Mean over rows, accumulated in f64.
fn mean_rows(values: &[f32], d: usize) -> Vec<f32> {
    let rows = values.len() / d;
    let mut sum = vec![0f64; d];
    for row in values.chunks_exact(d) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    sum.into_iter().map(|s| (s / rows as f64) as f32).collect()
}

/// Writes the activation set `request.out` from the embeddings (resumable: complete shards of
/// an earlier run with the same header are kept).
pub fn import(request: &ImportRequest) -> Result<ImportSummary> {
    let source = Source::open(request)?;
    let lengths = request.fasta.as_deref().map(fasta_lengths).transpose()?;
    let (first, first_layer) = source.load(0, request.layer)?;
    let d = first.d;
    let layer = first_layer.or(request.layer).unwrap_or(0);
    let fair_esm_layer = first_layer;
    drop(first);
    let header = SetHeader {
        model: ModelRef {
            id: request.model.clone(),
            arch: "imported".into(),
            weights_sha256: String::new(),
        },
        layer,
        site: request.site,
        level: request.level,
        d_model: d,
        dtype: request.dtype,
        proteins_per_shard: request.proteins_per_shard,
        total_proteins: source.len(),
        extra: serde_json::json!({
            "imported_from": {
                "format": format!("{:?}", request.format),
                "input": request.input.display().to_string(),
            }
        }),
    };
    let mut writer = ActivationSetWriter::create_or_resume(&request.out, header.clone())?;
    for shard in writer.missing_shards() {
        let mut proteins = Vec::new();
        let mut values = Vec::new();
        for i in header.shard_proteins(shard) {
            let (e, _) = source.load(i, fair_esm_layer)?;
            if e.d != d {
                return Err(ExchangeError::Invalid(format!(
                    "protein {} has width {}, the first had {d}",
                    e.id, e.d
                )));
            }
            let (entry, rows) = rows_for(e, request.level, &lengths)?;
            proteins.push(entry);
            values.extend_from_slice(&rows);
        }
        writer.write_shard(shard, &proteins, &values)?;
    }
    writer.finish(serde_json::json!({}))?;
    let set = plmscope_store::ActivationSet::open(&request.out)?;
    Ok(ImportSummary {
        proteins: set.proteins().len(),
        rows: set.rows(),
        d_model: d,
        layer,
    })
}

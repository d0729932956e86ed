//! fair-esm `scripts/extract.py` output: a folder of `<label>.pt`, each `torch.save` of
//! `{"label": str, "representations": {layer: [L, d]}, "mean_representations": {layer: [d]},
//! ...}` (`--include per_tok` / `mean`; `bos` and `contacts` are ignored). Read with the
//! repository's safe torch reader (no code in the file runs).

use std::path::{Path, PathBuf};

use plmscope_torchfile::{read_torch_zip, Value};

use super::Embedding;
use crate::error::{ExchangeError, Result};

/// The `.pt` files of an extract.py output folder, sorted by file name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ExchangeError::io(dir, "listing the fair-esm output folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ExchangeError::format(
            dir,
            "holds no .pt files (fair-esm extract.py writes one per protein)",
        ));
    }
    Ok(files)
}

/// Layers present in a file's `representations` and `mean_representations`.
fn layers(root: &Value) -> Vec<usize> {
    let mut out = Vec::new();
    for key in ["representations", "mean_representations"] {
        if let Some(Value::Dict(items)) = root.get(key) {
            for (k, _) in items {
                if let Some(layer) = k.as_i64() {
                    out.push(layer as usize);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Reads one protein's layer `layer` (`None`: the file's only layer); returns it and the layer.
pub fn load(path: &Path, layer: Option<usize>) -> Result<(Embedding, usize)> {
    let bytes = std::fs::read(path).map_err(ExchangeError::io(path, "reading"))?;
    let checkpoint = read_torch_zip(&bytes).map_err(|e| ExchangeError::format(path, e.0))?;
    let root = &checkpoint.root;
    let label = root.get("label").and_then(Value::as_str).ok_or_else(|| {
        ExchangeError::format(
            path,
            "no \"label\" string; is this a fair-esm extract.py file?",
        )
    })?;
    let available = layers(root);
    let layer = match layer {
        Some(l) if available.contains(&l) => l,
        Some(l) => {
            return Err(ExchangeError::format(
                path,
                format!("has no layer {l}; it holds layers {available:?}"),
            ))
        }
        None if available.len() == 1 => available[0],
        None => {
            return Err(ExchangeError::format(
                path,
                format!("holds layers {available:?}; choose one with --layer"),
            ))
        }
    };
    let residues = checkpoint.tensor(&format!("representations.{layer}"));
    let mean = checkpoint.tensor(&format!("mean_representations.{layer}"));
    let residues = match residues {
        Some(t) if t.shape.len() == 2 => Some((t.shape[0], t.shape[1], t.to_f32())),
        Some(t) => {
            return Err(ExchangeError::format(
                path,
                format!(
                    "representations.{layer} has shape {:?}, not [L, d]",
                    t.shape
                ),
            ))
        }
        None => None,
    };
    let mean = match mean {
        Some(t) if t.shape.len() == 1 => Some(t.to_f32()),
        Some(t) => {
            return Err(ExchangeError::format(
                path,
                format!(
                    "mean_representations.{layer} has shape {:?}, not [d]",
                    t.shape
                ),
            ))
        }
        None => None,
    };
    let id = plmscope_bio::fasta::record_id(label).to_string();
    let embedding = match residues {
        Some((rows, d, values)) => Embedding {
            id,
            d,
            length: Some(rows),
            residues: Some(values),
            mean,
        },
        None => {
            let mean = mean.ok_or_else(|| {
                ExchangeError::format(
                    path,
                    format!("layer {layer} holds no readable float tensor"),
                )
            })?;
            Embedding {
                id,
                d: mean.len(),
                length: None,
                residues: None,
                mean: Some(mean),
            }
        }
    };
    Ok((embedding, layer))
}

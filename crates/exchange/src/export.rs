//! One entry point for an export, as `plmscope export` takes it: an atlas (a file) or an
//! activation or code set (a folder), told apart by what the input is.

use std::path::PathBuf;

use crate::error::{ExchangeError, Result};
use crate::parquet::{export_atlas, export_set, SetExport};

/// What to export and where. With the `cli` feature it is also `plmscope export`'s arguments
/// (the field docs are their help).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ExportRequest {
    /// An atlas (`*.sqlite`), an activation set or a code set (a folder).
    pub input: PathBuf,
    /// Folder to write the Parquet files into (created if missing).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub parquet: PathBuf,
    /// For a code set: the activation set it was encoded from (it names the rows' proteins).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub proteins_from: Option<PathBuf>,
}

/// What an export read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exported {
    Atlas,
    Set(SetExport),
}

impl Exported {
    /// `atlas`, `activation set` or `code set`.
    pub fn name(self) -> &'static str {
        match self {
            Exported::Atlas => "atlas",
            Exported::Set(SetExport::Activations) => "activation set",
            Exported::Set(SetExport::Codes) => "code set",
        }
    }
}

/// Exports `req.input` into `req.parquet`: a folder as a set ([`export_set`]), a file as an
/// atlas ([`export_atlas`]). Returns what it read and the files written; refuses
/// `proteins_from` with an atlas and an input that does not exist.
pub fn export(req: &ExportRequest) -> Result<(Exported, Vec<PathBuf>)> {
    let input = &req.input;
    if input.is_dir() {
        let (kind, files) = export_set(input, req.proteins_from.as_deref(), &req.parquet)?;
        Ok((Exported::Set(kind), files))
    } else if input.is_file() {
        if req.proteins_from.is_some() {
            return Err(ExchangeError::Invalid(format!(
                "--proteins-from is for code sets; {} is a file",
                input.display()
            )));
        }
        Ok((Exported::Atlas, export_atlas(input, &req.parquet)?))
    } else {
        Err(ExchangeError::Invalid(format!(
            "{} does not exist (expected an atlas .sqlite file or a set folder)",
            input.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches an export that guesses at a missing input, or takes --proteins-from for an
    /// atlas and silently ignores it.
    #[test]
    fn missing_inputs_and_proteins_from_with_an_atlas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let request = |input: PathBuf, proteins_from: Option<PathBuf>| ExportRequest {
            input,
            parquet: dir.path().join("out"),
            proteins_from,
        };
        let missing = dir.path().join("nothing.sqlite");
        let err = export(&request(missing.clone(), None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} does not exist (expected an atlas .sqlite file or a set folder)",
                missing.display()
            )
        );
        let atlas = dir.path().join("atlas.sqlite");
        std::fs::write(&atlas, b"").unwrap();
        let err = export(&request(atlas.clone(), Some(dir.path().into()))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--proteins-from is for code sets; {} is a file",
                atlas.display()
            )
        );
        assert_eq!(Exported::Set(SetExport::Codes).name(), "code set");
    }
}

//! `plmscope export` and `plmscope import`: the flags of [`plmscope_exchange`], which does the
//! work.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use plmscope_exchange::{export_atlas, export_set, import, ImportFormat, ImportRequest, SetExport};
use plmscope_store::{Level, StorageDtype};

/// Write an atlas's tables, or an activation or code set's values, as Parquet files.
///
/// An atlas (`.sqlite`) gives one `TABLE.parquet` per table, column types from SQLite's
/// declared types. A set gives `proteins.parquet` and `activations.parquet` or `codes.parquet`
/// in long form (protein, position, unit, value; position NULL at protein level). Query them
/// together with DuckDB, Polars or Spark.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// An atlas (`*.sqlite`), an activation set or a code set (a folder).
    input: PathBuf,
    /// Folder to write the Parquet files into (created if missing).
    #[arg(long, value_name = "DIR")]
    parquet: PathBuf,
    /// For a code set: the activation set it was encoded from (it names the rows' proteins).
    #[arg(long, value_name = "DIR")]
    proteins_from: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> Result<()> {
    let written = if args.input.is_dir() {
        let (kind, files) = export_set(&args.input, args.proteins_from.as_deref(), &args.parquet)?;
        let kind = match kind {
            SetExport::Activations => "activation set",
            SetExport::Codes => "code set",
        };
        eprintln!("{}: {kind}", args.input.display());
        files
    } else if args.input.is_file() {
        if args.proteins_from.is_some() {
            bail!(
                "--proteins-from is for code sets; {} is a file",
                args.input.display()
            );
        }
        export_atlas(&args.input, &args.parquet)?
    } else {
        bail!(
            "{} does not exist (expected an atlas .sqlite file or a set folder)",
            args.input.display()
        );
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// Turn embeddings made by another tool into an activation set (then train, encode, analyze).
///
/// fair-esm: the folder `extract.py` wrote (`--include per_tok` and/or `mean`). hdf5: one
/// dataset per protein (bio_embeddings, ProtT5 / Ankh scripts; h5py files). npy: a folder of one
/// array per protein (`[L, d]` or `[d]`, named by id), or one `[n, d]` array with --ids.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// fair-esm, hdf5 or npy.
    #[arg(long)]
    format: ImportFormat,
    /// The folder or file to read.
    input: PathBuf,
    /// residue (per-residue inputs only) or protein (per-protein vectors, or the residue mean).
    #[arg(long, default_value = "residue")]
    level: Level,
    /// fair-esm: the layer to take when the files hold several; recorded in the manifest.
    #[arg(long)]
    layer: Option<usize>,
    /// One protein id per line, in row order, for a single `[n, d]` .npy array.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// FASTA with the sequences, for the lengths of proteins given only as one vector.
    #[arg(long)]
    fasta: Option<PathBuf>,
    /// The model that made the embeddings, recorded in the manifest.
    #[arg(long, default_value = "imported")]
    model: String,
    /// The site recorded in the manifest (resid_post: a layer's hidden state).
    #[arg(long, default_value = "resid_post")]
    site: String,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: StorageDtype,
    /// Proteins per shard file.
    #[arg(long, default_value_t = 1000)]
    proteins_per_shard: usize,
    /// The activation set to write (resumed when it exists with the same settings).
    #[arg(long)]
    out: PathBuf,
}

pub fn import_cmd(args: ImportArgs) -> Result<()> {
    let summary = import(&ImportRequest {
        format: args.format,
        input: args.input,
        ids: args.ids,
        layer: args.layer,
        level: args.level,
        model: args.model,
        site: args.site,
        dtype: args.dtype,
        proteins_per_shard: args.proteins_per_shard,
        fasta: args.fasta,
        out: args.out.clone(),
    })?;
    println!(
        "{}: {} proteins, {} rows of width {} (layer {})",
        args.out.display(),
        summary.proteins,
        summary.rows,
        summary.d_model,
        summary.layer
    );
    Ok(())
}

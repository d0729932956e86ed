//! Activation and code sets → long-form Parquet: `protein, position, unit, value`, plus a
//! `proteins` table to join on.
//!
//! - `proteins.parquet`: `protein` (index, INT32), `id` (string), `length` (residues, INT32),
//!   `first_row` (the protein's first global row, INT64), `rows` (INT32).
//! - `activations.parquet` (activation set: every unit of every row, zeros included) or
//!   `codes.parquet` (code set: the non-zero entries only): `protein` INT32, `position` INT32
//!   (0-based residue; NULL at protein level), `unit` INT32 (dimension or dictionary feature),
//!   `value` FLOAT (the stored value widened to f32, exactly as the store's readers give it).
//!
//! Rows are ordered by protein, position, unit. The set's `manifest.json` is kept in the footer
//! under [`MANIFEST_KEY`], so a Parquet file says which model, layer, site and dictionary it
//! holds.

use std::path::{Path, PathBuf};

use parquet::data_type::ByteArray;
use plmscope_store::{ActivationSet, CodeSet, Level, MANIFEST_FILE};

use super::{ColumnChunk, ColumnKind, Field, TableWriter};
use crate::error::{ExchangeError, Result};

/// Footer key holding the set's `manifest.json`.
pub const MANIFEST_KEY: &str = "plmscope.manifest";

/// Values per row group (about 13 MB of plain data).
const ROW_GROUP_VALUES: usize = 1 << 20;

/// Which kind of set an export read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExport {
    Activations,
    Codes,
}

/// Exports the activation or code set in `set_dir` to `dir` (see the module docs). A code set
/// needs `proteins_from`, the activation set it was encoded from (its rows name the proteins).
pub fn export_set(
    set_dir: &Path,
    proteins_from: Option<&Path>,
    dir: &Path,
) -> Result<(SetExport, Vec<PathBuf>)> {
    let manifest_path = set_dir.join(MANIFEST_FILE);
    let manifest_text = std::fs::read_to_string(&manifest_path).map_err(ExchangeError::io(
        &manifest_path,
        "reading the set's manifest",
    ))?;
    let format = serde_json::from_str::<serde_json::Value>(&manifest_text)
        .ok()
        .and_then(|m| m.get("format").and_then(|f| f.as_str()).map(str::to_string))
        .unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(ExchangeError::io(dir, "creating the export folder"))?;
    let metadata = vec![(MANIFEST_KEY.to_string(), manifest_text)];
    match format.as_str() {
        "plmscope.activations" => {
            let set = ActivationSet::open(set_dir)?;
            let proteins = write_proteins(&set, dir)?;
            let values = write_activations(&set, dir, metadata)?;
            Ok((SetExport::Activations, vec![proteins, values]))
        }
        "plmscope.codes" => {
            let codes = CodeSet::open(set_dir)?;
            let source = proteins_from.ok_or_else(|| {
                ExchangeError::Invalid(format!(
                    "{} is a code set; pass --proteins-from with the activation set it was \
                     encoded from (its rows name the proteins)",
                    set_dir.display()
                ))
            })?;
            let set = ActivationSet::open(source)?;
            codes.check_aligned(&set)?;
            let proteins = write_proteins(&set, dir)?;
            let values = write_codes(&codes, &set, dir, metadata)?;
            Ok((SetExport::Codes, vec![proteins, values]))
        }
        other => Err(ExchangeError::format(
            &manifest_path,
            format!(
                "format {other:?} is neither plmscope.activations nor plmscope.codes \
                 (export an atlas by its .sqlite file)"
            ),
        )),
    }
}

fn value_fields() -> Vec<Field> {
    vec![
        Field::new("protein", ColumnKind::Int32, false),
        Field::new("position", ColumnKind::Int32, true),
        Field::new("unit", ColumnKind::Int32, false),
        Field::new("value", ColumnKind::Float, false),
    ]
}

fn write_proteins(set: &ActivationSet, dir: &Path) -> Result<PathBuf> {
    let fields = vec![
        Field::new("protein", ColumnKind::Int32, false),
        Field::new("id", ColumnKind::Utf8, false),
        Field::new("length", ColumnKind::Int32, false),
        Field::new("first_row", ColumnKind::Int64, false),
        Field::new("rows", ColumnKind::Int32, false),
    ];
    let mut chunks = vec![ColumnChunk::default(); fields.len()];
    for p in set.proteins() {
        chunks[0].ints32.push(p.index as i32);
        chunks[1].bytes.push(ByteArray::from(p.id.as_str()));
        chunks[2].ints32.push(p.length as i32);
        chunks[3].ints64.push(p.global_first_row as i64);
        chunks[4].ints32.push(p.rows as i32);
    }
    let mut writer = TableWriter::create(&dir.join("proteins.parquet"), fields, Vec::new())?;
    writer.write_row_group(&chunks)?;
    writer.finish()
}

/// Long-form chunks being filled, flushed as row groups of about [`ROW_GROUP_VALUES`].
struct LongForm {
    writer: TableWriter,
    chunks: Vec<ColumnChunk>,
    level: Level,
}

impl LongForm {
    fn create(path: &Path, level: Level, metadata: Vec<(String, String)>) -> Result<Self> {
        Ok(LongForm {
            writer: TableWriter::create(path, value_fields(), metadata)?,
            chunks: vec![ColumnChunk::default(); 4],
            level,
        })
    }

    fn push(&mut self, protein: usize, position: usize, unit: u32, value: f32) {
        self.chunks[0].ints32.push(protein as i32);
        match self.level {
            Level::Residue => {
                self.chunks[1].ints32.push(position as i32);
                self.chunks[1].defined.push(1);
            }
            Level::Protein => self.chunks[1].defined.push(0),
        }
        self.chunks[2].ints32.push(unit as i32);
        self.chunks[3].floats.push(value);
    }

    /// Flushes a row group once enough values are buffered (only between proteins, so a
    /// protein never straddles two row groups unless it alone is larger).
    fn maybe_flush(&mut self, force: bool) -> Result<()> {
        let values = self.chunks[3].floats.len();
        if values >= ROW_GROUP_VALUES || (force && values > 0) {
            self.writer.write_row_group(&self.chunks)?;
            self.chunks.iter_mut().for_each(ColumnChunk::clear);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<PathBuf> {
        self.maybe_flush(true)?;
        self.writer.finish()
    }
}

fn write_activations(
    set: &ActivationSet,
    dir: &Path,
    metadata: Vec<(String, String)>,
) -> Result<PathBuf> {
    let d = set.d_model();
    let mut out = LongForm::create(&dir.join("activations.parquet"), set.level(), metadata)?;
    let mut rows = Vec::new();
    for p in set.proteins() {
        set.read_rows(p.global_first_row, p.rows, &mut rows)?;
        for (position, row) in rows.chunks_exact(d).enumerate() {
            for (unit, &value) in row.iter().enumerate() {
                out.push(p.index, position, unit as u32, value);
            }
        }
        out.maybe_flush(false)?;
    }
    out.finish()
}

fn write_codes(
    codes: &CodeSet,
    set: &ActivationSet,
    dir: &Path,
    metadata: Vec<(String, String)>,
) -> Result<PathBuf> {
    let mut out = LongForm::create(&dir.join("codes.parquet"), set.level(), metadata)?;
    for p in set.proteins() {
        for position in 0..p.rows {
            let (features, values) = codes.row(p.global_first_row + position);
            for (&unit, &value) in features.iter().zip(values) {
                out.push(p.index, position, unit, value);
            }
        }
        out.maybe_flush(false)?;
    }
    out.finish()
}

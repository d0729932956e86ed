//! Parquet output: a small table writer over the `parquet` crate's column writers (no Arrow),
//! used by the atlas and set exports. Files are written under a temporary name and renamed, so
//! an interrupted export never leaves a truncated `.parquet` under its final name.
//!
//! Pages are Snappy-compressed (the codec every Parquet reader has; Spark's and DuckDB's
//! default). Integer and text columns are dictionary-encoded, float value columns are not
//! (random floats gain nothing from a dictionary).

mod atlas;
mod set;

pub use atlas::{export_atlas, ATLAS_TABLE_KEY};
pub use set::{export_set, SetExport, MANIFEST_KEY};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, Type};
use plmscope_fsutil::AtomicFile;

use crate::error::{ExchangeError, Result};

/// A column's Parquet type, as this crate writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int32,
    Int64,
    Float,
    Double,
    /// UTF-8 text (`BYTE_ARRAY` with the `STRING` logical type).
    Utf8,
    /// Raw bytes (`BYTE_ARRAY`, no logical type).
    Bytes,
}

/// One column of a table: name, type, and whether it may hold nulls.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: ColumnKind,
    pub nullable: bool,
}

impl Field {
    pub fn new(name: &str, kind: ColumnKind, nullable: bool) -> Self {
        Field {
            name: name.to_string(),
            kind,
            nullable,
        }
    }
}

/// The values of one column for one row group. Nulls are absent from the values and marked by
/// a 0 in `defined` (nullable columns only; `defined` is empty for required ones).
#[derive(Debug, Clone, Default)]
pub struct ColumnChunk {
    pub ints32: Vec<i32>,
    pub ints64: Vec<i64>,
    pub floats: Vec<f32>,
    pub doubles: Vec<f64>,
    pub bytes: Vec<ByteArray>,
    pub defined: Vec<i16>,
}

impl ColumnChunk {
    pub fn clear(&mut self) {
        self.ints32.clear();
        self.ints64.clear();
        self.floats.clear();
        self.doubles.clear();
        self.bytes.clear();
        self.defined.clear();
    }
}

/// Writes one Parquet file, one row group per [`TableWriter::write_row_group`] call.
pub struct TableWriter {
    path: PathBuf,
    fields: Vec<Field>,
    writer: SerializedFileWriter<AtomicFile>,
}

impl TableWriter {
    /// Starts `path` with columns `fields`; `metadata` goes into the footer's key-value pairs.
    pub fn create(
        path: &Path,
        fields: Vec<Field>,
        metadata: Vec<(String, String)>,
    ) -> Result<Self> {
        let parquet_types = fields
            .iter()
            .map(|f| parquet_type(f).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ExchangeError::parquet(path))?;
        let schema = Type::group_type_builder("schema")
            .with_fields(parquet_types)
            .build()
            .map_err(ExchangeError::parquet(path))?;
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("plmscope {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(
                metadata
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
            ));
        for f in &fields {
            if matches!(f.kind, ColumnKind::Float | ColumnKind::Double) {
                properties = properties
                    .set_column_dictionary_enabled(ColumnPath::from(f.name.as_str()), false);
            }
        }
        let file = AtomicFile::create(path)?;
        let writer =
            SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties.build()))
                .map_err(ExchangeError::parquet(path))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            fields,
            writer,
        })
    }

    /// The table's columns.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Writes one row group; `columns` line up with the fields.
    pub fn write_row_group(&mut self, columns: &[ColumnChunk]) -> Result<()> {
        let path = self.path.clone();
        let err = |e| ExchangeError::parquet(&path)(e);
        let mut group = self.writer.next_row_group().map_err(err)?;
        for (field, chunk) in self.fields.iter().zip(columns) {
            let mut column = group
                .next_column()
                .map_err(err)?
                .ok_or_else(|| ExchangeError::Invalid(format!("no column {}", field.name)))?;
            let defined = field.nullable.then_some(chunk.defined.as_slice());
            match field.kind {
                ColumnKind::Int32 => {
                    column
                        .typed::<Int32Type>()
                        .write_batch(&chunk.ints32, defined, None)
                }
                ColumnKind::Int64 => {
                    column
                        .typed::<Int64Type>()
                        .write_batch(&chunk.ints64, defined, None)
                }
                ColumnKind::Float => {
                    column
                        .typed::<FloatType>()
                        .write_batch(&chunk.floats, defined, None)
                }
                ColumnKind::Double => {
                    column
                        .typed::<DoubleType>()
                        .write_batch(&chunk.doubles, defined, None)
                }
                ColumnKind::Utf8 | ColumnKind::Bytes => column
                    .typed::<ByteArrayType>()
                    .write_batch(&chunk.bytes, defined, None),
            }
            .map_err(err)?;
            column.close().map_err(err)?;
        }
        group.close().map_err(err)?;
        Ok(())
    }

    /// Writes the footer and moves the file into place.
    pub fn finish(self) -> Result<PathBuf> {
        let file = self
            .writer
            .into_inner()
            .map_err(ExchangeError::parquet(&self.path))?;
        file.commit()?;
        Ok(self.path)
    }
}

fn parquet_type(field: &Field) -> parquet::errors::Result<Type> {
    let (physical, logical) = match field.kind {
        ColumnKind::Int32 => (PhysicalType::INT32, None),
        ColumnKind::Int64 => (PhysicalType::INT64, None),
        ColumnKind::Float => (PhysicalType::FLOAT, None),
        ColumnKind::Double => (PhysicalType::DOUBLE, None),
        ColumnKind::Utf8 => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        ColumnKind::Bytes => (PhysicalType::BYTE_ARRAY, None),
    };
    let repetition = if field.nullable {
        Repetition::OPTIONAL
    } else {
        Repetition::REQUIRED
    };
    Type::primitive_type_builder(&field.name, physical)
        .with_repetition(repetition)
        .with_logical_type(logical)
        .build()
}

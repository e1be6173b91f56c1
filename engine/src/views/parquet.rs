//! Parquet output of a view, with the `parquet` crate's column writer (no Arrow): one optional
//! column per view column, typed from the column's declared FHIR type: `boolean` as BOOLEAN;
//! `integer`, `positiveInt`, `unsignedInt`, `integer64` as INT64; `decimal` as DOUBLE; every other
//! type, collection columns and complex values as UTF-8 strings (collections and complex values
//! as their JSON text). Rows are buffered and written a row group at a time, so memory stays
//! bounded by [`ROW_GROUP_ROWS`] rows whatever the size of the output; no compression.

use std::io::Write;
use std::sync::Arc;

use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;

use super::definition::ColumnInfo;
use super::rows::Row;
use crate::error::{Error, Result};

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 10_000;

/// The Parquet physical type a column is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Physical {
    Boolean,
    Int64,
    Double,
    Utf8,
}

impl Physical {
    fn of(column: &ColumnInfo) -> Self {
        if column.collection {
            return Self::Utf8;
        }
        match column.fhir_type.as_deref() {
            Some("boolean") => Self::Boolean,
            Some("integer" | "positiveInt" | "unsignedInt" | "integer64") => Self::Int64,
            Some("decimal") => Self::Double,
            _ => Self::Utf8,
        }
    }

    fn schema(self, name: &str) -> String {
        match self {
            Self::Boolean => format!("OPTIONAL BOOLEAN {name};"),
            Self::Int64 => format!("OPTIONAL INT64 {name};"),
            Self::Double => format!("OPTIONAL DOUBLE {name};"),
            Self::Utf8 => format!("OPTIONAL BYTE_ARRAY {name} (UTF8);"),
        }
    }
}

/// A Parquet file being written row group by row group.
pub(crate) struct ParquetRows<W: Write + Send> {
    names: Vec<String>,
    types: Vec<Physical>,
    writer: SerializedFileWriter<W>,
    pending: Vec<Row>,
}

impl<W: Write + Send> ParquetRows<W> {
    pub(crate) fn new(columns: &[ColumnInfo], out: W) -> Result<Self> {
        let types: Vec<Physical> = columns.iter().map(Physical::of).collect();
        // Column names are letters, digits and `_` (checked when the view was parsed).
        let fields: String = columns.iter().zip(&types).map(|(c, t)| t.schema(&c.name)).collect();
        let schema = parse_message_type(&format!("message view {{ {fields} }}")).map_err(parquet_error)?;
        let properties = Arc::new(WriterProperties::builder().set_created_by("fhirgate".into()).build());
        let writer = SerializedFileWriter::new(out, Arc::new(schema), properties).map_err(parquet_error)?;
        let names = columns.iter().map(|c| c.name.clone()).collect();
        Ok(Self { names, types, writer, pending: Vec::new() })
    }

    pub(crate) fn push(&mut self, row: &Row) -> Result<()> {
        self.pending.push(row.clone());
        if self.pending.len() >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<W> {
        self.flush()?;
        self.writer.into_inner().map_err(parquet_error)
    }

    /// Writes the pending rows as one row group.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let mut group = self.writer.next_row_group().map_err(parquet_error)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(parquet_error)? {
            let (Some(kind), Some(name)) = (self.types.get(index), self.names.get(index)) else {
                return Err(Error::Internal("parquet schema and view columns differ".into()));
            };
            let cells = rows.iter().map(|r| r.get(index).unwrap_or(&Value::Null));
            let mut levels = Vec::with_capacity(rows.len());
            let written = match kind {
                Physical::Boolean => {
                    let values = present(cells, &mut levels, |v| v.as_bool(), name)?;
                    column.typed::<BoolType>().write_batch(&values, Some(&levels), None)
                }
                Physical::Int64 => {
                    let values = present(cells, &mut levels, integer, name)?;
                    column.typed::<Int64Type>().write_batch(&values, Some(&levels), None)
                }
                Physical::Double => {
                    let values = present(cells, &mut levels, double, name)?;
                    column.typed::<DoubleType>().write_batch(&values, Some(&levels), None)
                }
                Physical::Utf8 => {
                    let values = present(cells, &mut levels, |v| Some(ByteArray::from(text(v).into_bytes())), name)?;
                    column.typed::<ByteArrayType>().write_batch(&values, Some(&levels), None)
                }
            };
            written.map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
            index += 1;
        }
        group.close().map_err(parquet_error)?;
        Ok(())
    }
}

/// The non-null cells converted by `convert`, and a definition level per cell (0: null).
fn present<'v, T>(
    cells: impl Iterator<Item = &'v Value>,
    levels: &mut Vec<i16>,
    convert: impl Fn(&Value) -> Option<T>,
    name: &str,
) -> Result<Vec<T>> {
    let mut values = Vec::new();
    for cell in cells {
        if cell.is_null() {
            levels.push(0);
            continue;
        }
        let value = convert(cell).ok_or_else(|| {
            Error::unprocessable(format!("the column `{name}` holds `{cell}`, which does not fit its declared type"))
        })?;
        levels.push(1);
        values.push(value);
    }
    Ok(values)
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn double(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().or_else(|| n.to_string().parse().ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> Error {
    Error::Internal(format!("writing parquet: {e}"))
}

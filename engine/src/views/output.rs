//! Writes a view's rows as they come, in one of the SQL on FHIR output formats
//! (`OutputFormatCodes`): `csv` (RFC 4180, a header row unless turned off), `ndjson` (one JSON
//! object per line), `json` (one array of objects) and `parquet` ([`super::parquet`]).
//!
//! Cells: null is an empty CSV field and a JSON `null`; a collection column is a JSON array (in
//! CSV, its JSON text); complex values (a whole `HumanName`) are JSON objects.

use std::io::Write;

use serde_json::{Map, Value};

use super::definition::ColumnInfo;
use super::parquet::ParquetRows;
use super::rows::Row;
use crate::error::{Error, Result};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv { header: bool },
    Ndjson,
    Json,
    Parquet,
}

impl Format {
    /// The format a `_format` value names: a code (`csv`) or a media type (`text/csv`).
    /// `header` applies to CSV.
    pub fn parse(code: &str, header: bool) -> Result<Self> {
        let code = code.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        Ok(match code.as_str() {
            "csv" | "text/csv" => Self::Csv { header },
            "ndjson" | "application/x-ndjson" | "application/ndjson" | "application/fhir+ndjson" => Self::Ndjson,
            "json" | "application/json" => Self::Json,
            "parquet" | "application/vnd.apache.parquet" | "application/parquet" => Self::Parquet,
            _ => {
                return Err(Error::NotAcceptable(format!(
                    "`_format={code}` is not an output format of views: use `csv`, `ndjson`, `json` or `parquet`"
                )));
            }
        })
    }

    /// The media type of the output.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv { .. } => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Json => "application/json",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv { .. } => "csv",
            Self::Ndjson => "ndjson",
            Self::Json => "json",
            Self::Parquet => "parquet",
        }
    }
}

/// Rows being written to `W` in one format.
pub struct Sink<W: Write + Send> {
    columns: Vec<ColumnInfo>,
    kind: Kind<W>,
    rows: u64,
}

enum Kind<W: Write + Send> {
    Text { out: W, format: Format },
    Parquet(Box<ParquetRows<W>>),
}

impl<W: Write + Send> Sink<W> {
    /// Starts writing rows of `columns` to `out` (a CSV header, a JSON array's `[`).
    pub fn new(format: Format, columns: &[ColumnInfo], mut out: W) -> Result<Self> {
        let kind = match format {
            Format::Parquet => Kind::Parquet(Box::new(ParquetRows::new(columns, out)?)),
            Format::Csv { header: true } => {
                let names: Vec<Value> = columns.iter().map(|c| Value::String(c.name.clone())).collect();
                write_csv_line(&mut out, &names)?;
                Kind::Text { out, format }
            }
            Format::Json => {
                out.write_all(b"[").map_err(io)?;
                Kind::Text { out, format }
            }
            _ => Kind::Text { out, format },
        };
        Ok(Self { columns: columns.to_vec(), kind, rows: 0 })
    }

    /// Writes one row.
    pub fn push(&mut self, row: &Row) -> Result<()> {
        match &mut self.kind {
            Kind::Parquet(p) => p.push(row)?,
            Kind::Text { out, format } => match format {
                Format::Csv { .. } => write_csv_line(out, row)?,
                Format::Ndjson | Format::Json => {
                    if *format == Format::Json && self.rows > 0 {
                        out.write_all(b",").map_err(io)?;
                    }
                    let object: Map<String, Value> =
                        self.columns.iter().map(|c| c.name.clone()).zip(row.iter().cloned()).collect();
                    serde_json::to_writer(&mut *out, &object).map_err(|e| Error::Internal(e.to_string()))?;
                    if *format == Format::Ndjson {
                        out.write_all(b"\n").map_err(io)?;
                    }
                }
                Format::Parquet => {}
            },
        }
        self.rows += 1;
        Ok(())
    }

    /// How many rows were written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the output (a JSON array's `]`, Parquet's footer) and gives the writer back.
    pub fn finish(self) -> Result<W> {
        match self.kind {
            Kind::Parquet(p) => p.finish(),
            Kind::Text { mut out, format } => {
                if format == Format::Json {
                    out.write_all(b"]").map_err(io)?;
                }
                out.flush().map_err(io)?;
                Ok(out)
            }
        }
    }
}

/// One CSV record (RFC 4180: fields with `,`, `"`, CR or LF quoted, quotes doubled; CRLF).
fn write_csv_line(out: &mut impl Write, cells: &[Value]) -> Result<()> {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let text = match cell {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Bool(_) | Value::Number(_) => cell.to_string(),
            Value::Array(_) | Value::Object(_) => cell.to_string(),
        };
        if text.contains([',', '"', '\r', '\n']) || text.starts_with(' ') || text.ends_with(' ') {
            line.push('"');
            line.push_str(&text.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&text);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(io)
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(format!("writing view rows: {e}"))
}

//! Flat views for analytics: SQL on FHIR v2 ViewDefinitions (<https://sql-on-fhir.org/ig/>).
//!
//! A ViewDefinition names a resource type, optional `where` filters and nested `select`s of
//! columns (FHIRPath), with `forEach`/`forEachOrNull`/`repeat` iteration and `unionAll`. This
//! module checks one ([`View::parse`]), runs it on a resource ([`View::rows`]) and writes rows as
//! CSV, NDJSON, JSON or Parquet ([`output`], [`parquet`]). Where the resources come from, and who
//! may see them, is not its business: the `$viewdefinition-run` operation feeds it the pages a
//! search by the same client would show (`interaction::viewrun`), the command line a whole store.
//!
//! The FHIRPath is the engine's own, with its work budget, plus the functions SQL on FHIR adds
//! (`getResourceKey`, `getReferenceKey`); the official test suite runs in
//! `engine/tests/sql_on_fhir.rs`.

mod definition;
pub mod output;
pub mod parquet;
mod rows;

pub use definition::{ColumnInfo, View};
pub use rows::{MAX_ROWS, Row};
#[cfg(test)]
mod tests;

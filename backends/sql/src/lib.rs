//! What fhirgate's relational stores (SQLite, PostgreSQL) share: everything above the database
//! driver.
//!
//! [`SqlStore`] implements the engine's [`Store`](fhirgate_engine::storage::Store) for both:
//! reads, history and search are written once against a
//! [`Driver`], which any sqlx connection of either database is; the steps of a write that do
//! not depend on how a store serialises writers are in [`write`]. A store crate keeps only what
//! really differs, as a [`Backend`]: opening its pool(s), its migrations (column types), and
//! how its writes stay atomic and commit-ordered (SQLite: one writer in `BEGIN IMMEDIATE`;
//! PostgreSQL: row locks, advisory locks, retries).
//!
//! Both stores keep the same search schema: `search_current` (one row per current, non-deleted
//! resource) and one table per search parameter type (`search_string`, `search_token`,
//! `search_reference`, `search_date`, `search_number`, `search_quantity`, `search_uri`,
//! `search_composite`) holding the index entries of the current version only. This crate turns
//! the engine's index entries into rows of those tables ([`rows`]) and the engine's
//! backend-neutral [`SearchQuery`](fhirgate_engine::search::query::SearchQuery) into one SQL
//! statement ([`translate`]).
//!
//! The two dialects differ in how parameters are written (`?1` / `$1`) and in SQLite's page
//! statements that name the index to walk (`INDEXED BY`, [`translate`]); column types are chosen
//! per store in its migrations so that the same comparisons mean the same thing (text compared
//! byte-wise, numbers as doubles).

mod bind;
mod driver;
mod error;
mod history;
mod instant;
mod jobs;
mod read;
mod reindex;
pub mod rows;
mod search;
mod store;
pub mod translate;
pub mod versions;
pub mod write;

pub use bind::{Bind, Dialect, Sql, arguments};
pub use driver::{Dialected, Driver, KeyedRow, MatchRow, ONE_OFF_TEXT, VersionRow};
pub use error::Error;
pub use instant::{version_from_sql, version_to_sql};
pub use read::COLUMNS;
pub use store::{Backend, ReadConnection, SqlStore, usage};
pub use translate::SortKind;

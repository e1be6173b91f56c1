//! The SQL that fhirgate's relational stores (SQLite, PostgreSQL) share.
//!
//! Both stores keep the same search schema: `search_current` (one row per current, non-deleted
//! resource) and one table per search parameter type (`search_string`, `search_token`,
//! `search_reference`, `search_date`, `search_number`, `search_quantity`, `search_uri`,
//! `search_composite`) holding the index entries of the current version only. This crate turns
//! the engine's index entries into rows of those tables ([`rows`]) and the engine's
//! backend-neutral [`SearchQuery`](fhirgate_engine::search::query::SearchQuery) into one SQL
//! statement ([`translate`]); the stores only bind and run what it builds.
//!
//! The two dialects differ only in how parameters are written (`?1` / `$1`); column types are
//! chosen per store in its migrations so that the same comparisons mean the same thing
//! (text compared byte-wise, numbers as doubles).

mod bind;
pub mod rows;
pub mod translate;
pub mod versions;

pub use bind::{Bind, Dialect, Sql, arguments};

//! Search (search.html): for now, extracting the index values stores keep for each version.

pub mod custom;
pub mod index;
pub mod query;
mod reindex;

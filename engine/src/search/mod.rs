//! Search (search.html): for now, extracting the index values stores keep for each version.

pub mod index;
pub mod query;

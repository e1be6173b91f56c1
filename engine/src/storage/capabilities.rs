//! What a store can do where stores differ, for the CapabilityStatement
//! (`interaction/capabilities.rs`).

use crate::definitions::SearchParamType;

/// The abilities a store reports through [`Store::capabilities`](super::Store::capabilities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The search parameter types the store can search by; parameters of other types are listed
    /// as unsupported (and a search by them is an error, never ignored).
    pub search_types: Vec<SearchParamType>,
    /// The most resources one atomic batch (a transaction Bundle) may write; `None` when the
    /// store sets no limit of its own.
    pub max_batch_writes: Option<usize>,
}

impl Default for Capabilities {
    /// Every type but `special` (which needs logic of its own per parameter), no batch limit.
    fn default() -> Self {
        use SearchParamType::{Composite, Date, Number, Quantity, Reference, String, Token, Uri};
        Self {
            search_types: vec![Number, Date, String, Token, Reference, Composite, Quantity, Uri],
            max_batch_writes: None,
        }
    }
}

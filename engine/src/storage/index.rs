//! Search index entries: typed values the engine extracts from a resource for one search
//! parameter. Stores persist them with the version and (once search lands) query them.

use serde::{Deserialize, Serialize};

/// One extracted value for one search parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The search parameter's code, e.g. `family`.
    pub param: String,
    pub value: IndexValue,
}

/// A typed search index value (see search.html "Search Parameter Types").
///
/// Externally tagged (`{"number": {...}}`): an internally tagged enum buffers its content, and
/// buffered numbers do not survive serde_json's `arbitrary_precision`, which we need to keep
/// FHIR decimals exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexValue {
    /// Normalised (case- and accent-folded) text.
    String {
        value: String,
    },
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    Reference {
        reference: String,
    },
    /// An inclusive range of instants, as RFC 3339 text.
    Date {
        start: String,
        end: String,
    },
    Number {
        value: f64,
    },
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Uri {
        value: String,
    },
}

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
/// FHIR decimals exact. Decimals are kept as their exact text (`"100"`, `"1.50"`), with the
/// implicit-precision range of search.html as `low`/`high` (`100` ⇒ `99.5`..`100.5`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexValue {
    /// Normalised (case- and accent-folded) text, and the text as written for `:exact`.
    String {
        value: String,
        exact: String,
    },
    /// A code with its system; `text` (normalised `Coding.display` or `CodeableConcept.text`)
    /// serves `:text`. An entry may hold only `text`.
    Token {
        system: Option<String>,
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// An `Identifier` value with its `Identifier.type` coding, for `:of-type`.
    OfType {
        type_system: Option<String>,
        type_code: Option<String>,
        value: String,
    },
    /// `Reference.reference` or a canonical: a local reference as relative `Type/id` (with
    /// `resource_type` and `id` split out), anything else (absolute URL, `#contained`) as written.
    Reference {
        reference: String,
        resource_type: Option<String>,
        id: Option<String>,
    },
    /// `Reference.identifier`, for `:identifier`.
    ReferenceIdentifier {
        system: Option<String>,
        value: Option<String>,
    },
    /// An inclusive range of instants, as RFC 3339 UTC text with milliseconds
    /// (`2020-01-01T00:00:00.000Z`), so that text order is time order.
    Date {
        start: String,
        end: String,
    },
    /// Exact decimal text and its implicit-precision range `[low, high)`.
    Number {
        value: String,
        low: String,
        high: String,
    },
    Quantity {
        value: String,
        low: String,
        high: String,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    Uri {
        value: String,
    },
    /// One combination of a composite parameter's component values, in component order.
    Composite {
        components: Vec<IndexValue>,
    },
}

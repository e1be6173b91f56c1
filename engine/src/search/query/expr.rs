//! The backend-neutral search expression: what a search asks for, already validated against the
//! definitions and with every value parsed to the same typed form the index holds. Stores
//! translate this tree; they never see the query string.

use super::prefix::Prefix;
use super::result::ResultParams;
use crate::definitions::SearchParamType;

/// A parsed search: every clause must hold (AND), then the result parameters apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// `None` for a system-wide search (`GET [base]?...`).
    pub resource_type: Option<String>,
    pub clauses: Vec<Clause>,
    pub result: ResultParams,
    /// A compartment search (`GET Patient/123/Observation`): only resources in that compartment.
    pub compartment: Option<Compartment>,
    /// A continuation: only resources after this `(type, id)` in the search's order. The engine
    /// sets it to read a large result set a chunk at a time, and to continue a page link.
    pub after: Option<(String, String)>,
    /// With `_sort` and `after`: the sort key values of the `after` match, one per `_sort` key
    /// as [`crate::storage::Store::search_keyed`] reported them (`None` where it had none). The
    /// continuation is then after `(values..., type, id)` in the sort order, so it holds however
    /// the `after` match itself changed since. Empty otherwise.
    pub after_sort: Vec<Option<SortValue>>,
}

/// One `_sort` key's value on a match, as a store orders by it: the smallest (ascending) or
/// largest (descending) value of the parameter on the resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum SortValue {
    /// Strings, uris, token codes, references, dates (as their indexed text), ids.
    Text(String),
    /// `_lastUpdated` (the store's integer instant).
    Integer(i64),
    /// Numbers and quantities.
    Number(f64),
}

impl PartialEq for SortValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => a == b,
            (Self::Integer(a), Self::Integer(b)) => a == b,
            // Bit equality: a key carried in a link compares equal to the value it came from.
            (Self::Number(a), Self::Number(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for SortValue {}

/// A compartment (compartmentdefinition.html): resources whose `params` refer to the
/// compartment's owner. A compartment owner also belongs to its own compartment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compartment {
    /// The owner's type and id (`Patient`, `123`).
    pub resource_type: String,
    pub id: String,
    /// The reference parameters that put a resource of each searched type in the compartment.
    pub params: Vec<(String, Vec<String>)>,
}

/// One query parameter: at least one of its alternatives (the comma-separated values) must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The search parameter code (`name`, `subject`, `_id`, `_has`...).
    pub param: String,
    /// The modifier as written (`exact`, `Patient`, `missing`...).
    pub modifier: Option<String>,
    pub alternatives: Vec<Predicate>,
    /// The key (relative to its chain) and value as written, for the `self` link.
    pub written: (String, String),
}

/// How a `string` value matches (search.html "string").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    /// The default: the normalised field starts with the normalised value.
    StartsWith,
    /// `:exact`: equal, case and accents included (the value is not normalised).
    Exact,
    /// `:contains`: the normalised value occurs anywhere in the normalised field.
    Contains,
}

/// The system part of a token value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system, or none.
    Any,
    /// `|code`: the value has no system.
    None,
    /// `system|code` or `system|`.
    Is(String),
}

/// A token value in one of its four forms; `code` is `None` for `system|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub system: TokenSystem,
    pub code: Option<String>,
}

/// How a `uri` value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMatch {
    Exact,
    /// `:above`: the stored uri is the value or one of its parents.
    Above,
    /// `:below`: the stored uri starts with the value.
    Below,
}

/// A token modifier answered by terminology (search.html "Modifiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConceptMatch {
    /// `:in`: the code is in the value set whose url is the value.
    In,
    /// `:not-in`: no code of the resource is in the value set.
    NotIn,
    /// `:above`: the code subsumes `system|code` (is it or one of its ancestors).
    Above,
    /// `:below`: the code is subsumed by `system|code` (is it or one of its descendants).
    Below,
}

impl ConceptMatch {
    /// The modifier as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::NotIn => "not-in",
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

/// What a reference value points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceTarget {
    /// `id` or `Type/id` (`:Type` fills in the type); `types` empty means any of the
    /// parameter's targets.
    Local { types: Vec<String>, id: String },
    /// An absolute URL, matched as written.
    Url(String),
}

/// One value of one parameter, typed by the parameter's type and modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `:missing=true|false`, on any type.
    Missing(bool),
    String {
        mode: StringMatch,
        value: String,
    },
    /// A token; `not` for `:not` (no value of the resource matches).
    Token {
        not: bool,
        token: Token,
    },
    /// `:text`: the normalised display / text starts with the normalised value.
    TokenText(String),
    /// `:of-type` on identifiers: `type-system|type-code|value`.
    OfType {
        type_system: String,
        type_code: String,
        value: String,
    },
    Reference(ReferenceTarget),
    /// `:identifier` on references: matches `Reference.identifier`.
    ReferenceIdentifier(Token),
    /// An inclusive range of instants at millisecond precision, as `index::date` stores them.
    Date {
        prefix: Prefix,
        start: String,
        end: String,
    },
    /// The exact decimal text and its implicit-precision range `[low, high)`.
    Number {
        prefix: Prefix,
        value: String,
        low: String,
        high: String,
    },
    /// A number with an optional unit system and code (`5.4|http://unitsofmeasure.org|mg`).
    Quantity {
        prefix: Prefix,
        value: String,
        low: String,
        high: String,
        system: Option<String>,
        code: Option<String>,
    },
    Uri {
        mode: UriMatch,
        value: String,
    },
    /// The `$`-separated values of a composite, one per component, in the components' order;
    /// `components` are the component parameters' codes.
    Composite {
        components: Vec<String>,
        values: Vec<Predicate>,
    },
    /// `param[:Type].next`: resources whose reference points to one matching `next`.
    Chain(Chain),
    /// `_has:Type:param:next`: resources referred to by a `Type` whose `param` points here and
    /// which matches `next`.
    Has(Has),
    /// `:in`, `:not-in`, `:above` or `:below` on a token as written: the engine resolves it
    /// against the loaded terminology into a [`Predicate::TokenSet`] before a store sees it
    /// (a remote target gets it as written). Stores answer an unresolved one with an error.
    Concepts {
        modifier: ConceptMatch,
        value: String,
    },
    /// The resource has a token among `tokens` (`not`: none of its tokens is among them); an
    /// empty list matches nothing (`not`: everything).
    TokenSet {
        not: bool,
        tokens: Vec<Token>,
    },
    /// A value the parser understood but this server does not implement (`:in`, `:above` on a
    /// token...). Stores must answer it with an error, never ignore it.
    Unsupported(String),
}

impl Predicate {
    /// The parameter type whose index values a plain value predicate (string, reference, date,
    /// number, quantity, uri) is compared with; `None` for every other predicate, which stores
    /// translate on their own terms.
    pub fn value_type(&self) -> Option<SearchParamType> {
        Some(match self {
            Self::String { .. } => SearchParamType::String,
            Self::Reference(_) => SearchParamType::Reference,
            Self::Date { .. } => SearchParamType::Date,
            Self::Number { .. } => SearchParamType::Number,
            Self::Quantity { .. } => SearchParamType::Quantity,
            Self::Uri { .. } => SearchParamType::Uri,
            _ => return None,
        })
    }
}

/// A chained parameter (search.html "Chained parameters").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The resource types the reference may point to that have the next parameter: the one
    /// written as `:Type`, or every fitting target of the reference parameter.
    pub target_types: Vec<String>,
    /// The condition on the referenced resource; its alternatives are the comma values.
    pub next: Box<Clause>,
}

/// A reverse chain (search.html "_has").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Has {
    /// The referring resource type.
    pub resource_type: String,
    /// Its reference parameter that points at the searched resource.
    pub reference_param: String,
    /// The condition on the referring resource (itself possibly a `_has` or a chain).
    pub next: Box<Clause>,
}

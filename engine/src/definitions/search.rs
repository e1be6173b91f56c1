//! Search parameters as defined by the R4 spec (`SearchParameter` resources of the package).
//! See <https://hl7.org/fhir/R4/searchparameter.html>.

/// `SearchParameter.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl SearchParamType {
    /// Parses a `SearchParameter.type` code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }

    /// The `SearchParameter.type` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Date => "date",
            Self::String => "string",
            Self::Token => "token",
            Self::Reference => "reference",
            Self::Composite => "composite",
            Self::Quantity => "quantity",
            Self::Uri => "uri",
            Self::Special => "special",
        }
    }
}

/// One part of a composite search parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParamComponent {
    /// The canonical URL of the component's own search parameter.
    pub definition: String,
    /// FHIRPath expression, relative to the composite's expression.
    pub expression: String,
}

/// A search parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParam {
    /// Canonical URL, e.g. `http://hl7.org/fhir/SearchParameter/Patient-birthdate`.
    pub url: String,
    /// The name used in URLs, e.g. `birthdate`.
    pub code: String,
    /// The resource types it applies to (may be `Resource` or `DomainResource`).
    pub base: Vec<String>,
    pub kind: SearchParamType,
    /// FHIRPath expression extracting the values; `None` for special parameters such as `_text`.
    pub expression: Option<String>,
    /// For references, the resource types they may point to.
    pub target: Vec<String>,
    pub multiple_or: Option<bool>,
    pub multiple_and: Option<bool>,
    pub modifier: Vec<String>,
    pub comparator: Vec<String>,
    pub component: Vec<SearchParamComponent>,
}

impl SearchParam {
    /// The part of [`expression`](Self::expression) that applies to `resource_type`: parameters
    /// shared by several types have one union branch per type (`AllergyIntolerance.patient |
    /// CarePlan.subject.where(resolve() is Patient) | ...`). Branches on `Resource` or
    /// `DomainResource`, and relative ones, apply to every type. `None` when nothing applies.
    pub fn expression_for(&self, resource_type: &str) -> Option<String> {
        let expression = self.expression.as_deref()?;
        let kept: Vec<&str> = union_branches(expression)
            .filter(|branch| {
                let head = branch.trim_start_matches('(');
                let end = head.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(head.len());
                let head = &head[..end];
                !head.starts_with(|c: char| c.is_ascii_uppercase())
                    || head == resource_type
                    || head == "Resource"
                    || head == "DomainResource"
            })
            .collect();
        (!kept.is_empty()).then(|| kept.join(" | "))
    }
}

/// The top-level `|` branches of a FHIRPath expression (not inside parentheses or strings).
fn union_branches(expression: &str) -> impl Iterator<Item = &str> {
    let mut branches = Vec::new();
    let (mut depth, mut quoted, mut start) = (0_i32, false, 0);
    for (i, c) in expression.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '|' if !quoted && depth == 0 => {
                branches.push(expression[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    branches.push(expression[start..].trim());
    branches.into_iter().filter(|b| !b.is_empty())
}

//! The attributes every resource entity has (`Fhir::Resource` and each generated type), declared
//! once: the schema generator writes them from [`COMMON`] and the request builder fills them from
//! the same entries. To add one, add an entry: its name, Cedar type, documentation and value.

use cedar_policy::RestrictedExpression;

use crate::action::Target;
use crate::consent::Verdict;
use crate::request::RequestContext;
use crate::resource::ResourceFacts;

/// What a common attribute's value is made from.
pub(crate) struct CommonInput<'a> {
    pub target: &'a Target,
    /// The resource's data; `None` at type level.
    pub facts: Option<&'a ResourceFacts>,
    pub context: &'a RequestContext,
    /// What the Consents of the resource's patients say ([`crate::consent`]).
    pub consent: Verdict,
}

/// One attribute every resource entity has.
pub(crate) struct Common {
    pub name: &'static str,
    /// Its type in Cedar schema syntax.
    pub cedar_type: &'static str,
    /// Comment lines written above it in the schema.
    pub doc: &'static [&'static str],
    pub value: fn(&CommonInput<'_>) -> RestrictedExpression,
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

fn strings<'a>(values: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(values.into_iter().map(|v| RestrictedExpression::new_string(v.clone())))
}

/// A set of the facts, empty at type level.
fn facts_set(
    input: &CommonInput<'_>,
    pick: fn(&ResourceFacts) -> &std::collections::BTreeSet<String>,
) -> RestrictedExpression {
    strings(input.facts.map(pick).into_iter().flatten())
}

/// The common attributes, in schema order.
pub(crate) const COMMON: &[Common] = &[
    Common {
        name: "type",
        cedar_type: "String",
        doc: &["The resource type (\"\" for system-level requests)."],
        value: |i| string(&i.target.resource_type),
    },
    Common {
        name: "id",
        cedar_type: "String",
        doc: &["\"\" for type- and system-level requests."],
        value: |i| string(&i.target.id),
    },
    Common {
        name: "hasData",
        cedar_type: "Bool",
        doc: &["Whether the resource's data is known (false at type level: data attributes empty or absent)."],
        value: |i| RestrictedExpression::new_bool(i.facts.is_some()),
    },
    Common {
        name: "patients",
        cedar_type: "Set<String>",
        doc: &["Ids of the patients whose compartment holds the resource (a Patient is in its own)."],
        value: |i| facts_set(i, |f| &f.patients),
    },
    Common {
        name: "security",
        cedar_type: "Set<String>",
        doc: &["meta.security as `code` and `system|code`."],
        value: |i| facts_set(i, |f| &f.security),
    },
    Common {
        name: "tags",
        cedar_type: "Set<String>",
        doc: &["meta.tag as `code` and `system|code`."],
        value: |i| facts_set(i, |f| &f.tags),
    },
    Common {
        name: "categories",
        cedar_type: "Set<String>",
        doc: &["`category` codes (Observation, Condition, ...) as `code` and `system|code`."],
        value: |i| facts_set(i, |f| &f.categories),
    },
    Common {
        name: "tenant",
        cedar_type: "String",
        doc: &["The code of the meta.tag with system `urn:fhirgate:tenant` (\"\" when none)."],
        value: |i| string(i.facts.map_or("", |f| f.tenant.as_str())),
    },
    Common {
        name: "store",
        cedar_type: "String",
        doc: &[
            "The store serving the request: the id of the gateway target (`default` without",
            "`[[targets]]`), as `context.target`.",
        ],
        value: |i| string(&i.context.store),
    },
    Common {
        name: "consent",
        cedar_type: "String",
        doc: &[
            "What the Consents of the resource's patients say about this request (policies/README.md,",
            "\"Patient consent\"): \"deny\", \"permit\" or \"none\" (\"none\" at the type level).",
        ],
        value: |i| string(i.consent.as_str()),
    },
];

/// Whether `name` is a common attribute.
pub(crate) fn is_common(name: &str) -> bool {
    COMMON.iter().any(|c| c.name == name)
}

//! One Cedar entity type per R4 resource type, with one attribute per search parameter, made
//! once from the compiled-in R4 definitions.
//!
//! Naming: the entity type is the resource type (`Fhir::Observation`), except where it would
//! clash with a type of the schema's own (`Group`, the groups claim: the FHIR `Group` resource
//! is `Fhir::GroupResource`). An attribute is named as the search parameter's code
//! (`code`, `subject`, `_lastUpdated`); codes that are not Cedar identifiers (`value-quantity`)
//! or are Cedar keywords (`context`) are quoted in the schema and read as
//! `resource["value-quantity"]`. A code equal to a common attribute (`type`) gets `Param`
//! appended (`typeParam`). Composite and special parameters, and those without an expression
//! (`_text`, `_content`), have no attribute.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::EntityTypeName;
use fhirgate_engine::definitions::{Definitions, SearchParamType};

use super::common::is_common;

/// Names of the schema's hand-written entity types, which a resource type cannot take.
const TAKEN: [&str; 6] = ["Role", "Group", "User", "Application", "Resource", "Action"];

/// Cedar keywords and variables, quoted when they name an attribute.
const KEYWORDS: [&str; 17] = [
    "true",
    "false",
    "if",
    "then",
    "else",
    "in",
    "is",
    "like",
    "has",
    "principal",
    "action",
    "resource",
    "context",
    "permit",
    "forbid",
    "when",
    "unless",
];

/// The shape of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `Set<String>`, empty when the resource has no value (tokens, references, strings, uris).
    Strings,
    /// `{start: Long, end: Long}` (Unix seconds), absent without a value (dates).
    Range,
    /// `{min: decimal, max: decimal}`, absent without a value (numbers).
    Numbers,
    /// `{min: decimal, max: decimal, units: Set<String>}`, absent without a value (quantities).
    Quantities,
}

impl Shape {
    fn of(kind: SearchParamType) -> Option<Self> {
        match kind {
            SearchParamType::Token | SearchParamType::Reference | SearchParamType::String | SearchParamType::Uri => {
                Some(Self::Strings)
            }
            SearchParamType::Date => Some(Self::Range),
            SearchParamType::Number => Some(Self::Numbers),
            SearchParamType::Quantity => Some(Self::Quantities),
            SearchParamType::Composite | SearchParamType::Special => None,
        }
    }

    /// The Cedar type, with `?` for optional attributes.
    pub(crate) fn cedar(self) -> (&'static str, &'static str) {
        match self {
            Self::Strings => ("", "Set<String>"),
            Self::Range => ("?", "DateRange"),
            Self::Numbers => ("?", "NumberRange"),
            Self::Quantities => ("?", "QuantityRange"),
        }
    }
}

/// One search parameter as an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamAttr {
    /// The search parameter's code.
    pub code: String,
    /// The attribute's name.
    pub name: String,
    pub shape: Shape,
}

/// A resource type's entity type.
#[derive(Debug, Clone)]
pub(crate) struct ResourceEntity {
    /// Name within the `Fhir` namespace.
    pub name: String,
    pub type_name: EntityTypeName,
    pub params: Vec<ParamAttr>,
}

/// Resource type → its entity type, for every concrete R4 resource type.
static ENTITIES: LazyLock<BTreeMap<String, ResourceEntity>> = LazyLock::new(|| {
    let defs = Definitions::r4();
    defs.resource_types()
        .filter_map(|resource_type| {
            let name = if TAKEN.contains(&resource_type) {
                format!("{resource_type}Resource")
            } else {
                resource_type.to_owned()
            };
            let type_name = EntityTypeName::from_str(&format!("Fhir::{name}")).ok()?;
            let params = defs
                .search_params(resource_type)
                // Parameters without an expression (`_text`, `_content`, `_query`) index nothing.
                // Custom SearchParameters are not attributes: the schema does not change with
                // what is stored, and a policy naming one fails to load (closed).
                .filter(|p| defs.is_r4_param(p) && p.expression_for(resource_type).is_some())
                .filter_map(|p| {
                    Some(ParamAttr { code: p.code.clone(), name: attribute_name(&p.code), shape: Shape::of(p.kind)? })
                })
                .collect();
            Some((resource_type.to_owned(), ResourceEntity { name, type_name, params }))
        })
        .collect()
});

/// The attribute name of a search parameter code.
pub(crate) fn attribute_name(code: &str) -> String {
    if is_common(code) { format!("{code}Param") } else { code.to_owned() }
}

/// Whether `name` must be quoted in a schema (and read as `resource["name"]` in a policy).
pub(crate) fn needs_quotes(name: &str) -> bool {
    let mut chars = name.chars();
    let starts = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    !starts || !chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) || KEYWORDS.contains(&name)
}

/// The entity type of a resource type, `None` for names that are no R4 resource type.
pub(crate) fn entity(resource_type: &str) -> Option<&'static ResourceEntity> {
    ENTITIES.get(resource_type)
}

/// Every generated entity type, by resource type.
pub(crate) fn entities() -> impl Iterator<Item = (&'static str, &'static ResourceEntity)> {
    ENTITIES.iter().map(|(t, e)| (t.as_str(), e))
}

/// Whether some resource type has an attribute `name` from a search parameter.
pub(crate) fn is_param_attribute(name: &str) -> bool {
    static NAMES: LazyLock<std::collections::BTreeSet<String>> =
        LazyLock::new(|| ENTITIES.values().flat_map(|e| e.params.iter().map(|p| p.name.clone())).collect());
    NAMES.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_type_has_an_entity_with_distinct_attributes() {
        let observation = entity("Observation").map(|e| (e.name.as_str(), e.params.len()));
        assert!(matches!(observation, Some(("Observation", n)) if n > 20), "{observation:?}");
        assert_eq!(entity("Group").map(|e| e.name.as_str()), Some("GroupResource"));
        assert!(entity("NotAType").is_none());
        for (resource_type, e) in entities() {
            let mut names: Vec<&str> = e.params.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            let count = names.len();
            names.dedup();
            assert_eq!(names.len(), count, "{resource_type}: two parameters share an attribute name");
            assert!(names.iter().all(|n| !is_common(n)), "{resource_type}: a parameter hides a common attribute");
        }
        let encounter = entity("Encounter").map(|e| e.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
        assert!(
            encounter.is_some_and(|n| n.contains(&"typeParam".to_owned()) && n.contains(&"_lastUpdated".to_owned()))
        );
        assert!(needs_quotes("value-quantity") && needs_quotes("context") && !needs_quotes("_lastUpdated"));
    }
}

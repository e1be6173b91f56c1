//! What a resource's data tells a policy: the patients whose compartment holds it (from the R4
//! Patient CompartmentDefinition and the spec's search parameters), `meta.security`, `meta.tag`,
//! `category` and the tenant tag.

use std::collections::BTreeSet;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::index::extract;
use fhirgate_engine::storage::IndexValue;
use serde_json::Value;

/// The meta.tag system whose code names the tenant owning a resource.
pub const TENANT_TAG_SYSTEM: &str = "urn:fhirgate:tenant";

/// The data-level attributes of a `Fhir::Resource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFacts {
    pub patients: BTreeSet<String>,
    pub security: BTreeSet<String>,
    pub tags: BTreeSet<String>,
    pub categories: BTreeSet<String>,
    pub tenant: String,
}

impl ResourceFacts {
    /// Reads the facts of a FHIR resource in JSON.
    pub fn of(resource: &Value) -> Self {
        let mut facts = Self::default();
        let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        if resource_type == "Patient" {
            if let Some(id) = resource.get("id").and_then(Value::as_str) {
                facts.patients.insert(id.to_string());
            }
        }
        facts.patients.extend(patients_of(resource, resource_type));
        let meta = resource.get("meta");
        facts.security = codings(meta.and_then(|m| m.get("security")));
        facts.tags = codings(meta.and_then(|m| m.get("tag")));
        if let Some(Value::Array(tags)) = meta.and_then(|m| m.get("tag")) {
            if let Some(code) = tags
                .iter()
                .find(|t| t.get("system").and_then(Value::as_str) == Some(TENANT_TAG_SYSTEM))
                .and_then(|t| t.get("code"))
                .and_then(Value::as_str)
            {
                facts.tenant = code.to_string();
            }
        }
        let categories = match resource.get("category") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
            None => Vec::new(),
        };
        for concept in categories {
            facts.categories.extend(codings(concept.get("coding")));
        }
        facts
    }
}

/// `code` and `system|code` of each Coding in an array.
fn codings(value: Option<&Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(Value::Array(items)) = value else { return out };
    for coding in items {
        let Some(code) = coding.get("code").and_then(Value::as_str) else { continue };
        out.insert(code.to_string());
        if let Some(system) = coding.get("system").and_then(Value::as_str) {
            out.insert(format!("{system}|{code}"));
        }
    }
    out
}

/// The patients a resource references through the parameters of the Patient compartment.
fn patients_of(resource: &Value, resource_type: &str) -> BTreeSet<String> {
    let defs = Definitions::r4();
    let Some(compartment) = defs.compartment("Patient") else { return BTreeSet::new() };
    let params = compartment.params(resource_type);
    if params.is_empty() {
        return BTreeSet::new();
    }
    let mut out = BTreeSet::new();
    for entry in extract(defs, resource) {
        if !params.contains(&entry.param) {
            continue;
        }
        if let IndexValue::Reference { resource_type: Some(t), id: Some(id), .. } = entry.value {
            if t == "Patient" {
                out.insert(id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn observation_facts() {
        let facts = ResourceFacts::of(&json!({
            "resourceType": "Observation", "id": "o", "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
                     "tag": [{"system": "urn:fhirgate:tenant", "code": "t1"}]}
        }));
        assert!(facts.patients.contains("p1"), "{facts:?}");
        assert!(facts.security.contains("R"));
        assert!(facts.categories.contains("laboratory"));
        assert_eq!(facts.tenant, "t1");
        let patient = ResourceFacts::of(&json!({"resourceType": "Patient", "id": "p2"}));
        assert_eq!(patient.patients.iter().collect::<Vec<_>>(), ["p2"]);
    }
}

//! What a resource's data tells a policy: the patients whose compartment holds it (from the R4
//! Patient CompartmentDefinition and the spec's search parameters), `meta.security`, `meta.tag`,
//! `category` and the tenant tag; and the search-parameter attributes a policy set reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::fhirpath::{Env, Expr, evaluate, parse};
use serde_json::Value;

use crate::attributes::values::AttrValue;

/// The meta.tag system whose code names the tenant owning a resource.
pub const TENANT_TAG_SYSTEM: &str = "urn:fhirgate:tenant";

/// The data-level attributes of a `Fhir::Resource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFacts {
    pub patients: BTreeSet<String>,
    pub security: BTreeSet<String>,
    pub tags: BTreeSet<String>,
    pub categories: BTreeSet<String>,
    /// The resource's `status` code, for granular SMART scopes (`?status=final`); not a Cedar
    /// attribute.
    pub statuses: BTreeSet<String>,
    pub tenant: String,
    /// The search-parameter attributes the policy set reads, by attribute name
    /// ([`crate::PolicyEngine::with_data`] fills them); `None` when they were not extracted,
    /// which fails a decision that needs them.
    pub params: Option<BTreeMap<String, AttrValue>>,
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
        if let Some(status) = resource.get("status").and_then(Value::as_str) {
            facts.statuses.insert(status.to_string());
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

/// Parsed expressions of the Patient compartment's parameters, per resource type, parsed once.
type Compiled = Mutex<HashMap<String, Arc<Vec<Expr>>>>;

fn compartment_expressions(resource_type: &str) -> Arc<Vec<Expr>> {
    static CACHE: OnceLock<Compiled> = OnceLock::new();
    let cache = CACHE.get_or_init(Compiled::default);
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(resource_type).cloned()) {
        return found;
    }
    let defs = Definitions::r4();
    let codes = defs.compartment("Patient").map(|c| c.params(resource_type).to_vec()).unwrap_or_default();
    let exprs: Vec<Expr> = codes
        .iter()
        .filter_map(|code| defs.search_param(resource_type, code))
        .filter_map(|param| param.expression_for(resource_type))
        .filter_map(|text| parse(&text).ok())
        .collect();
    let exprs = Arc::new(exprs);
    if let Ok(mut c) = cache.lock() {
        c.insert(resource_type.to_string(), exprs.clone());
    }
    exprs
}

/// The patients a resource references through the parameters of the Patient compartment
/// (only those: cheaper than extracting every search parameter). Only relative references
/// (`Patient/123`, optionally with `/_history/n`) count: an absolute URL may name another server.
fn patients_of(resource: &Value, resource_type: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let env = Env::new();
    for expr in compartment_expressions(resource_type).iter() {
        let Ok(items) = evaluate(expr, resource, &env) else { continue };
        for item in items {
            let Some(json) = item.to_json() else { continue };
            let Some(reference) = json.get("reference").and_then(Value::as_str) else { continue };
            let segments: Vec<&str> = reference.split('/').collect();
            if let ["Patient", id] | ["Patient", id, "_history", _] = segments.as_slice() {
                if !id.is_empty() {
                    out.insert((*id).to_string());
                }
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
        let elsewhere = ResourceFacts::of(&json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "https://other.example/fhir/Patient/p1"}}));
        assert!(elsewhere.patients.is_empty(), "absolute references name other servers");
        let encounter = ResourceFacts::of(&json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": "Patient/p3/_history/2"}}));
        assert!(encounter.patients.contains("p3"), "{encounter:?}");
        let org = ResourceFacts::of(&json!({"resourceType": "Organization", "name": "x"}));
        assert!(org.patients.is_empty());
    }
}

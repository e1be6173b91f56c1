//! capabilities: `GET /metadata`, a CapabilityStatement generated from what this server really
//! does. See <https://hl7.org/fhir/R4/http.html#capabilities>.

use serde_json::{Value, json};

use super::{Engine, Request, Response};
use crate::definitions::{Definitions, SearchParamType};
use crate::error::Result;
use crate::resource::format_instant;
use crate::storage::Capabilities;

/// The type-level and instance-level interactions every resource type supports.
const RESOURCE_INTERACTIONS: [&str; 9] =
    ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"];

/// The system-level interactions supported.
const SYSTEM_INTERACTIONS: [&str; 4] = ["transaction", "batch", "history-system", "search-system"];

/// The extension that lists a search parameter of the specification this server does not
/// support, with the reason (`code: reason`), so that no client mistakes it for a supported one.
const UNSUPPORTED_PARAM: &str = "https://fhirgate.dev/fhir/StructureDefinition/unsupported-search-param";

/// What the search implementation leaves out, for `rest.documentation`.
const SEARCH_LIMITS: &str = "Search: every parameter listed per resource works with the modifiers and prefixes of \
search.html. `:in` and `:not-in` on tokens take the url of a value set this server can expand (the R4 package's, \
configured packages' and stored ones; at most 1,000 codes), `:above` and `:below` a `system|code` of a loaded \
hierarchical code system; anything else is a 400, never ignored. Parameters of type `special` (`near`, `_text`, `_content`, \
`_list`, `_query`, `_filter`...) are not supported and are listed per resource in the extension \
`https://fhirgate.dev/fhir/StructureDefinition/unsupported-search-param`.";

pub(super) fn handle(engine: &Engine, request: &Request) -> Result<Response> {
    let interactions = |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({ "code": c })).collect() };
    let defs = Definitions::r4();
    let store = engine.store.capabilities();
    let resources: Vec<Value> = defs
        .resource_types()
        .map(|t| {
            let mut resource = json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions(&RESOURCE_INTERACTIONS),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": engine.config.update_create,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": "multiple",
            });
            search_capabilities(defs, &store, t, &mut resource);
            if let Some(operation) = super::everything::declared(t) {
                declare_operation(&mut resource, operation);
            }
            for operation in super::terminology::declared(t) {
                declare_operation(&mut resource, operation);
            }
            declare_operation(&mut resource, super::validate::declared());
            if let Some(profile) = engine.config.profiles.required(t) {
                resource["supportedProfile"] = json!([profile]);
            }
            resource
        })
        .collect();
    // In the element order of the specification (XML renders in this order): `security` before `resource`.
    let mut rest = json!({"mode": "server", "documentation": documentation(engine.store.kind(), &store)});
    if let Some(security) = &engine.config.rest_security {
        rest["security"] = security.clone();
    }
    rest["resource"] = Value::Array(resources);
    rest["interaction"] = Value::Array(interactions(&SYSTEM_INTERACTIONS));
    crate::export::declare(engine, &mut rest);
    if engine.config.export.is_some() {
        // `$import` keeps its error reports in the bulk output location.
        declare_operation(&mut rest, crate::bulk::import::declared());
    }
    declare_operation(&mut rest, super::viewrun::capability());
    let statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(engine.now()),
        "publisher": "fhirgate",
        "kind": "instance",
        "software": { "name": "fhirgate", "version": engine.config.software_version },
        "implementation": {
            "description": format!("fhirgate FHIR R4 server ({} store)", engine.store.kind()),
            "url": request.base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/fhir+xml", "xml"],
        // FHIRPath Patch as XML is read as the Parameters it is (converted to JSON first).
        "patchFormat": crate::patch::CONTENT_TYPES.iter().chain(&["application/fhir+xml"]).collect::<Vec<_>>(),
        "rest": [rest],
    });
    Ok(Response::json(200, statement))
}

/// `rest.documentation`: what search leaves out, and the store's own limits.
fn documentation(kind: &str, store: &Capabilities) -> String {
    match store.max_batch_writes {
        Some(n) => format!(
            "{SEARCH_LIMITS} Transactions: this {kind} store writes a transaction as one atomic batch of at most {n} \
             resources; a larger one is refused with a not-supported OperationOutcome (send a batch instead)."
        ),
        None => SEARCH_LIMITS.to_owned(),
    }
}

/// `searchParam`, `searchInclude`, `searchRevInclude` and the unsupported parameters of one type.
fn search_capabilities(defs: &Definitions, store: &Capabilities, resource_type: &str, resource: &mut Value) {
    let mut params = Vec::new();
    let mut unsupported = Vec::new();
    let mut includes = vec![json!("*")];
    for param in defs.search_params(resource_type) {
        if !store.search_types.contains(&param.kind) {
            let reason = match param.kind {
                SearchParamType::Special => "special parameters need logic of their own, not built",
                _ => "this store cannot search parameters of this type",
            };
            unsupported.push(json!({ "url": UNSUPPORTED_PARAM, "valueString": format!("{}: {reason}", param.code) }));
            continue;
        }
        if param.kind == SearchParamType::Reference {
            includes.push(json!(format!("{resource_type}:{}", param.code)));
        }
        params.push(json!({ "name": param.code, "definition": param.url, "type": param.kind.code() }));
    }
    let mut revincludes: Vec<Value> = Vec::new();
    for source in defs.resource_types() {
        for param in defs.search_params(source) {
            if param.kind == SearchParamType::Reference && param.target.iter().any(|t| t == resource_type) {
                revincludes.push(json!(format!("{source}:{}", param.code)));
            }
        }
    }
    resource["searchParam"] = Value::Array(params);
    resource["searchInclude"] = Value::Array(includes);
    resource["searchRevInclude"] = Value::Array(revincludes);
    if !unsupported.is_empty() {
        resource["extension"] = Value::Array(unsupported);
    }
}

/// Adds `operation` to the `operation` list of a `rest` or `rest.resource` entry.
pub(crate) fn declare_operation(entry: &mut Value, operation: Value) {
    match entry.get_mut("operation").and_then(Value::as_array_mut) {
        Some(list) => list.push(operation),
        None => entry["operation"] = Value::Array(vec![operation]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameter names listed as supported, and the reasons given for the unsupported ones.
    fn listed(store: &Capabilities, resource_type: &str) -> (Vec<String>, Vec<String>) {
        let mut resource = json!({});
        search_capabilities(Definitions::r4(), store, resource_type, &mut resource);
        let strings = |v: &Value, key: &str| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(|p| p[key].as_str().map(str::to_owned)).collect()
        };
        (strings(&resource["searchParam"], "name"), strings(&resource["extension"], "valueString"))
    }

    #[test]
    fn search_parameters_are_listed_as_the_store_can_search_them() {
        let (params, unsupported) = listed(&Capabilities::default(), "Location");
        assert!(params.iter().any(|p| p == "address-city"), "{params:?}");
        assert!(!params.iter().any(|p| p == "near"), "special parameters are not claimed");
        assert!(unsupported.iter().any(|u| u.starts_with("near: special")), "{unsupported:?}");

        let (params, _) = listed(&Capabilities::default(), "Observation");
        assert!(params.iter().any(|p| p == "code-value-quantity"), "{params:?}");
        let without_composites = Capabilities {
            search_types: Capabilities::default()
                .search_types
                .into_iter()
                .filter(|t| *t != SearchParamType::Composite)
                .collect(),
            ..Capabilities::default()
        };
        let (params, unsupported) = listed(&without_composites, "Observation");
        assert!(!params.iter().any(|p| p == "code-value-quantity"), "{params:?}");
        assert!(params.iter().any(|p| p == "code"), "{params:?}");
        assert!(
            unsupported.iter().any(|u| u == "code-value-quantity: this store cannot search parameters of this type"),
            "{unsupported:?}"
        );
    }

    #[test]
    fn a_store_limit_on_transactions_is_documented() {
        assert_eq!(documentation("sqlite", &Capabilities::default()), SEARCH_LIMITS);
        let limited = Capabilities { max_batch_writes: Some(49), ..Capabilities::default() };
        let text = documentation("cosmos", &limited);
        assert!(text.starts_with(SEARCH_LIMITS), "{text}");
        assert!(text.contains("this cosmos store writes a transaction as one atomic batch of at most 49"), "{text}");
    }
}

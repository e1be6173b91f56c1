//! capabilities: `GET /metadata`, a CapabilityStatement generated from what this server really
//! does. See <https://hl7.org/fhir/R4/http.html#capabilities>.

use serde_json::{Value, json};

use super::{Engine, Request, Response};
use crate::definitions::Definitions;
use crate::error::Result;
use crate::resource::format_instant;

/// The type-level and instance-level interactions every resource type supports.
const RESOURCE_INTERACTIONS: [&str; 7] =
    ["read", "vread", "update", "delete", "history-instance", "history-type", "create"];

/// The system-level interactions supported.
const SYSTEM_INTERACTIONS: [&str; 1] = ["history-system"];

pub(super) fn handle(engine: &Engine, request: &Request) -> Result<Response> {
    let interactions = |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({ "code": c })).collect() };
    let resources: Vec<Value> = Definitions::r4()
        .resource_types()
        .map(|t| {
            json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions(&RESOURCE_INTERACTIONS),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": engine.config.update_create,
                "conditionalCreate": false,
                "conditionalRead": "full-support",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
            })
        })
        .collect();
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
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": interactions(&SYSTEM_INTERACTIONS),
        }],
    });
    Ok(Response::json(200, statement))
}

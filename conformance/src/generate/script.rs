//! The TestScript of one resource type, as JSON, in the format it asks for (JSON or XML: the
//! requests' `contentType` and `accept`, the answers of read and history checked to be in it):
//! setup stores each fixture under its own id
//! (delete, then update-as-create); the tests read, vread, update, read the history, search per
//! parameter (the fixture found by a value of its own, not found by another), create
//! conditionally (`If-None-Exist`) and update conditionally, create, and delete. A contained
//! CapabilityStatement names what the script needs, so a server that does not claim it skips it
//! (or `--from-capabilities` leaves it out).

use serde_json::{Value, json};

use super::values::Probe;
use crate::script::Format;

/// A fixture of the script.
#[derive(Debug, Clone)]
pub(super) struct Fixture {
    /// The fixture's id in the script (`f0`, `f1`…).
    pub key: String,
    /// The id the resource is stored under.
    pub id: String,
    /// The fixture file, relative to the script.
    pub file: String,
    /// The official example it was made from.
    pub example: String,
}

/// One generated search.
#[derive(Debug, Clone)]
pub(super) struct Search {
    pub code: String,
    /// Index into the fixtures.
    pub fixture: usize,
    pub probe: Probe,
}

const OPERATION_CODES: &str = "http://terminology.hl7.org/CodeSystem/testscript-operation-codes";

/// The script of `resource_type`, with its first fixture as the one CRUD runs on.
pub(super) fn script(resource_type: &str, fixtures: &[Fixture], searches: &[Search], format: Format) -> Value {
    let mime = match format {
        Format::Json => "json",
        Format::Xml => "xml",
    };
    let lower = resource_type.to_lowercase();
    let main = &fixtures[0];
    let id = main.id.as_str();
    let op = |code: &str, description: String, extra: Value| -> Value {
        let mut operation = json!({
            "type": {"system": OPERATION_CODES, "code": code},
            "resource": resource_type,
            "description": description,
            "accept": mime,
            "encodeRequestUrl": true,
        });
        if let (Some(target), Value::Object(extra)) = (operation.as_object_mut(), extra) {
            target.extend(extra);
        }
        json!({"operation": operation})
    };
    let status = |codes: &str, description: &str| {
        let operator = if codes.contains(',') { "in" } else { "equals" };
        json!({"assert": {"description": description, "direction": "response", "operator": operator,
            "responseCode": codes, "warningOnly": false}})
    };
    let expression = |expression: String, description: String| {
        json!({"assert": {"description": description, "direction": "response", "expression": expression,
            "warningOnly": false}})
    };
    let in_format = json!({"assert": {"description": format!("answered in {mime}"), "direction": "response",
        "contentType": format.mime(), "warningOnly": false}});
    let is_type = |t: &str| json!({"assert": {"description": format!("a {t}"), "direction": "response", "resource": t, "warningOnly": false}});

    let has = |id: &str| format!("Bundle.entry.where(resource.id = '{id}').exists()");
    let lacks = |id: &str| format!("Bundle.entry.where(resource.id = '{id}').empty()");

    let mut setup = Vec::new();
    for f in fixtures {
        setup.push(op(
            "delete",
            format!("remove `{resource_type}/{}` left by an earlier run", f.id),
            json!({"params": format!("/{}", f.id)}),
        ));
        setup.push(status("200,204,404,410", "deleted or not there"));
        setup.push(op(
            "updateCreate",
            format!("store fixture `{}` (from `{}`) as `{resource_type}/{}`", f.key, f.example, f.id),
            json!({"params": format!("/{}", f.id), "sourceId": f.key, "contentType": mime}),
        ));
        setup.push(status("200,201", "stored"));
    }

    let mut tests = vec![
        test(
            "read",
            format!("read `{resource_type}/{id}`"),
            vec![
                op("read", format!("read `{resource_type}/{id}`"), json!({"params": format!("/{id}")})),
                status("200", "200"),
                in_format.clone(),
                is_type(resource_type),
                expression(format!("id = '{id}'"), format!("the id is `{id}`")),
            ],
        ),
        test(
            "vread",
            "read the current version by its version id".into(),
            vec![
                op(
                    "read",
                    format!("read `{resource_type}/{id}`"),
                    json!({"params": format!("/{id}"), "responseId": "current"}),
                ),
                status("200", "200"),
                op("vread", "read that version".into(), json!({"params": format!("/{id}/_history/${{versionId}}")})),
                status("200", "200"),
                expression("meta.versionId = '${versionId}'".into(), "the version asked for".into()),
            ],
        ),
        test(
            "update",
            format!("update `{resource_type}/{id}` with its fixture"),
            vec![
                op(
                    "update",
                    format!("update `{resource_type}/{id}`"),
                    json!({"params": format!("/{id}"), "sourceId": main.key, "contentType": mime}),
                ),
                status("200", "200"),
            ],
        ),
        test(
            "history",
            format!("the history of `{resource_type}/{id}`"),
            vec![
                op(
                    "history",
                    format!("history of `{resource_type}/{id}`"),
                    json!({"params": format!("/{id}/_history")}),
                ),
                status("200", "200"),
                in_format,
                is_type("Bundle"),
                expression("Bundle.type = 'history'".into(), "a history bundle".into()),
                // An update with the same content may keep the version (fhirgate does): one or more.
                expression(has(id), format!("versions of `{resource_type}/{id}`")),
            ],
        ),
    ];
    for search in searches {
        let f = &fixtures[search.fixture];
        let name = format!("{}{}", search.code, search.probe.modifier);
        let matching = search.probe.matching.iter().map(|v| format!("{name}={v}")).collect::<Vec<_>>().join("&");
        tests.push(test(
            &format!("search-{}", search.code),
            format!("`{}`: a value of fixture `{}` finds it, another does not", search.code, f.key),
            vec![
                op(
                    "search",
                    format!("search by `{}` of the fixture", search.code),
                    json!({"params": format!("?_id={}&{matching}", f.id)}),
                ),
                status("200", "200"),
                expression(has(&f.id), format!("`{resource_type}/{}` found", f.id)),
                op(
                    "search",
                    format!("search by another `{}`", search.code),
                    json!({"params": format!("?_id={}&{name}={}", f.id, search.probe.missing)}),
                ),
                status("200", "200"),
                expression(lacks(&f.id), format!("`{resource_type}/{}` not found", f.id)),
            ],
        ));
    }
    tests.push(test(
        "conditional-create",
        "a create whose `If-None-Exist` matches the fixture creates nothing".into(),
        vec![
            op(
                "create",
                "create if none exists".into(),
                json!({"sourceId": main.key, "contentType": mime,
            "requestHeader": [{"field": "If-None-Exist", "value": format!("_id={id}")}]}),
            ),
            status("200", "200: it exists"),
        ],
    ));
    tests.push(test(
        "conditional-update",
        "an update by search criteria matching the fixture updates it".into(),
        vec![
            op(
                "update",
                "update where `_id` matches".into(),
                json!({"params": format!("?_id={id}"), "sourceId": main.key, "contentType": mime}),
            ),
            status("200", "200"),
        ],
    ));
    tests.push(test("create", "create a copy of the fixture: the server assigns an id".into(), vec![
        op("create", "create".into(), json!({"sourceId": main.key, "contentType": mime, "responseId": "created"})),
        status("201", "201"),
        json!({"assert": {"description": "a Location", "direction": "response", "headerField": "Location", "operator": "notEmpty", "warningOnly": false}}),
        op("delete", "delete the copy".into(), json!({"targetId": "created"})),
        status("200,204", "deleted"),
    ]));
    tests.push(test(
        "delete",
        format!("delete `{resource_type}/{id}`; it is gone"),
        vec![
            op("delete", format!("delete `{resource_type}/{id}`"), json!({"params": format!("/{id}")})),
            status("200,204", "deleted"),
            op("read", "read it again".into(), json!({"params": format!("/{id}")})),
            status("410", "gone"),
        ],
    ));
    let teardown: Vec<Value> = fixtures[1..]
        .iter()
        .map(|f| op("delete", format!("remove `{resource_type}/{}`", f.id), json!({"params": format!("/{}", f.id)})))
        .collect();

    let mut params: Vec<&str> = searches.iter().map(|s| s.code.as_str()).collect();
    params.dedup();
    let defs = fhirgate_engine::definitions::Definitions::r4();
    let search_params: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p, "type": defs.search_param(resource_type, p).map_or("token", |d| d.kind.code())}))
        .collect();
    let interactions: Vec<Value> = ["read", "vread", "update", "create", "delete", "history-instance", "search-type"]
        .iter()
        .map(|c| json!({"code": c}))
        .collect();
    let mut resource = json!({"type": resource_type, "interaction": interactions,
        "conditionalCreate": true, "conditionalUpdate": true});
    if !search_params.is_empty() {
        resource["searchParam"] = Value::Array(search_params);
    }
    let mut script = json!({
        "resourceType": "TestScript",
        "id": format!("generated-{lower}"),
        "url": format!("https://fhirgate.dev/testscripts/generated/{lower}"),
        "name": format!("Generated{resource_type}"),
        "title": format!("{resource_type}: every interaction and search parameter"),
        "status": "active",
        "description": format!(
            "Generated by `fhirgate-conformance generate` from the R4 definitions, with official examples as fixtures \
             ({}). Do not edit: regenerate.",
            fixtures.iter().map(|f| format!("`{}`", f.example)).collect::<Vec<_>>().join(", ")
        ),
        "contained": [{
            "resourceType": "CapabilityStatement", "id": "required", "status": "active", "date": "2026-12-06",
            "kind": "requirements", "fhirVersion": "4.0.1", "format": [mime],
            "rest": [{"mode": "server", "resource": [resource]}]
        }],
        "metadata": {"capability": [{"required": true, "validated": false, "capabilities": "#required"}]},
        "fixture": fixtures.iter().map(|f| json!({"id": f.key, "autocreate": false, "autodelete": false,
            "resource": {"reference": f.file}})).collect::<Vec<_>>(),
        "variable": [{"name": "versionId", "expression": "meta.versionId", "sourceId": "current"}],
        "setup": {"action": setup},
        "test": tests,
    });
    if !teardown.is_empty() {
        script["teardown"] = json!({"action": teardown});
    }
    script
}

fn test(name: &str, description: String, action: Vec<Value>) -> Value {
    json!({"name": name, "description": description, "action": action})
}

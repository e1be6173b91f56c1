//! `CodeSystem/$lookup` (<https://hl7.org/fhir/R4/codesystem-operation-lookup.html>): what a
//! loaded (or stored) code system says of one code: its name and version, the code's display,
//! designations and properties (`property` keeps only those named; `parent` and `child` come
//! from the hierarchy when asked for).
//!
//! `GET|POST CodeSystem/$lookup?system=...&code=...` (or `coding`), `CodeSystem/[id]/$lookup?code=...`.
//! A system not loaded here is a 404, as is a code the system does not define.

use serde_json::{Value, json};

use super::super::{Request, Response};
use super::params::{Coded, Params};
use super::resolve::Resolver;
use crate::error::{Error, Result};
use crate::terminology::CodeSystem;

pub(super) const NAME: &str = "lookup";

pub(super) async fn handle(resolver: &mut Resolver<'_, '_>, request: &Request, id: Option<&str>) -> Result<Response> {
    let params = Params::of(request)?;
    let coded = Coded::given(&params, "system", "version")?.into_iter().next().unwrap_or_default();
    let system = super::code_system(resolver, id, coded.system.as_deref(), coded.version.as_deref()).await?;
    let index = system.find(&coded.code).ok_or_else(|| {
        Error::NotFound(format!("the code `{}` is not defined by the code system `{}`", coded.code, system.url))
    })?;
    let concept = &system.concepts[index];
    let wanted = params.texts("property");
    let asked = |code: &str| wanted.is_empty() || wanted.contains(&code);
    let mut out = vec![json!({"name": "name", "valueString": system.name.as_deref().unwrap_or(&system.url)})];
    if let Some(version) = &system.version {
        out.push(json!({"name": "version", "valueString": version}));
    }
    if let Some(display) = &concept.display {
        out.push(json!({"name": "display", "valueString": display}));
    }
    out.push(json!({"name": "abstract", "valueBoolean": concept.is_abstract}));
    for designation in &concept.designations {
        let mut part = Vec::new();
        if let Some(language) = designation.get("language") {
            part.push(json!({"name": "language", "valueCode": language}));
        }
        if let Some(used) = designation.get("use") {
            part.push(json!({"name": "use", "valueCoding": used}));
        }
        if let Some(value) = designation.get("value") {
            part.push(json!({"name": "value", "valueString": value}));
        }
        out.push(json!({"name": "designation", "part": part}));
    }
    for property in &concept.properties {
        let Some(code) = property.get("code").and_then(Value::as_str) else { continue };
        if !asked(code) {
            continue;
        }
        let mut part = vec![json!({"name": "code", "valueCode": code})];
        if let Some((key, value)) = property.as_object().and_then(|o| o.iter().find(|(k, _)| k.starts_with("value"))) {
            let mut value_part = json!({"name": "value"});
            value_part[key.as_str()] = value.clone();
            part.push(value_part);
        }
        out.push(json!({"name": "property", "part": part}));
    }
    for (name, related) in [("parent", &concept.parents), ("child", &concept.children)] {
        if !wanted.contains(&name) {
            continue;
        }
        for &i in related {
            out.push(hierarchy_property(&system, name, i));
        }
    }
    Ok(Response::json(200, json!({"resourceType": "Parameters", "parameter": out})))
}

fn hierarchy_property(system: &CodeSystem, name: &str, index: usize) -> Value {
    json!({"name": "property", "part": [
        {"name": "code", "valueCode": name},
        {"name": "value", "valueCode": system.concepts[index].code},
    ]})
}

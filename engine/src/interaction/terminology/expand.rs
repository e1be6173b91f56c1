//! `ValueSet/$expand` (<https://hl7.org/fhir/R4/valueset-operation-expand.html>): the codes of a
//! value set, from its `compose` over the loaded code systems (and those stored here).
//!
//! `GET|POST ValueSet/$expand?url=...` (`valueSetVersion`), `POST ValueSet/$expand` with the
//! value set itself as `valueSet`, `GET|POST ValueSet/[id]/$expand`; `filter` keeps the codes
//! whose code or display contains the text (case-insensitive), `count` and `offset` page them.
//! An expansion larger than the server allows is a 422 `too-costly`; one that needs a code
//! system not loaded here a 422 `not-supported`.

use serde_json::{Value, json};

use super::super::{Engine, Request, Response};
use super::params::Params;
use super::resolve::Resolver;
use crate::error::Result;
use crate::resource::format_instant;
use crate::terminology::Limits;

pub(super) const NAME: &str = "expand";

/// Most codes one answer lists (`count` above it is lowered to it).
const MAX_COUNT: usize = 1_000;

pub(super) async fn handle(
    engine: &Engine,
    resolver: &mut Resolver<'_, '_>,
    request: &Request,
    id: Option<&str>,
) -> Result<Response> {
    let params = Params::of(request)?;
    let value_set = resolver.value_set_asked(&params, id, "expand").await?;
    let expansion = resolver.expand(&value_set, &Limits::default()).await?;
    let filter = params.text("filter")?.map(str::to_lowercase);
    let offset = params.count("offset")?.unwrap_or(0);
    let count = params.count("count")?.unwrap_or(MAX_COUNT).min(MAX_COUNT);
    let matching: Vec<_> = expansion
        .entries
        .iter()
        .filter(|e| {
            filter.as_deref().is_none_or(|f| {
                e.code.to_lowercase().contains(f) || e.display.as_deref().is_some_and(|d| d.to_lowercase().contains(f))
            })
        })
        .collect();
    let contains: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|e| {
            let mut c = json!({ "system": e.system, "code": e.code });
            if let Some(v) = &e.version {
                c["version"] = json!(v);
            }
            if let Some(d) = &e.display {
                c["display"] = json!(d);
            }
            if e.is_abstract {
                c["abstract"] = json!(true);
            }
            c
        })
        .collect();
    let mut parameters =
        vec![json!({"name": "offset", "valueInteger": offset}), json!({"name": "count", "valueInteger": count})];
    if let Some(f) = params.text("filter")? {
        parameters.push(json!({"name": "filter", "valueString": f}));
    }
    let mut answer = value_set.resource.clone();
    if let Some(object) = answer.as_object_mut() {
        object.remove("text");
        object.entry("status").or_insert(json!("active"));
    }
    answer["expansion"] = json!({
        "identifier": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "timestamp": format_instant(engine.now()),
        "total": matching.len(),
        "offset": offset,
        "parameter": parameters,
    });
    if !contains.is_empty() {
        answer["expansion"]["contains"] = Value::Array(contains);
    }
    Ok(Response::json(200, answer))
}

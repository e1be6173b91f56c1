//! The terminology operations (<https://hl7.org/fhir/R4/terminology-service.html>), one file
//! each: `ValueSet/$expand`, `CodeSystem/$lookup`, `ValueSet/$validate-code`,
//! `CodeSystem/$validate-code` and `CodeSystem/$subsumes`, at type level and on a stored
//! instance, by `GET` or `POST` with a `Parameters` body. They answer from the loaded
//! terminology ([`crate::terminology`]) and from the ValueSets and CodeSystems stored here.
//!
//! Who may do what: each operation needs what reading its subject needs (the policies decide
//! it as a `read` of `ValueSet/[id]` or `CodeSystem/[id]`, as a `search-type` of the type at type
//! level); a stored resource it uses is read ([`resolve`]) with the client's own decisions, so
//! a value set the client may not see is not found, and nothing of it is expanded.

mod expand;
mod lookup;
mod params;
pub(crate) mod resolve;
mod subsumes;
mod validate_code;

use std::sync::Arc;

use serde_json::{Value, json};

use super::gate::Gate;
use super::{Engine, Request, Response};
use crate::error::{Error, Result};
use crate::terminology::CodeSystem;
use resolve::Resolver;

/// Whether `$name` on `resource_type` is a terminology operation.
pub(super) fn is_terminology(name: &str, resource_type: Option<&str>) -> bool {
    operations(resource_type.unwrap_or_default()).contains(&name)
}

/// The terminology operations of a resource type.
fn operations(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "ValueSet" => &[expand::NAME, validate_code::NAME],
        "CodeSystem" => &[lookup::NAME, validate_code::NAME, subsumes::NAME],
        _ => &[],
    }
}

/// The CapabilityStatement's `rest.resource.operation` entries of `resource_type`.
pub(super) fn declared(resource_type: &str) -> Vec<Value> {
    operations(resource_type)
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "definition": format!("http://hl7.org/fhir/OperationDefinition/{resource_type}-{name}"),
            })
        })
        .collect()
}

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    name: &str,
    resource_type: &str,
    id: Option<&str>,
) -> Result<Response> {
    let mut resolver = Resolver::new(engine, gate);
    match (resource_type, name) {
        ("ValueSet", expand::NAME) => expand::handle(engine, &mut resolver, request, id).await,
        ("ValueSet", validate_code::NAME) => validate_code::value_set(&mut resolver, request, id).await,
        ("CodeSystem", validate_code::NAME) => validate_code::code_system(&mut resolver, request, id).await,
        ("CodeSystem", lookup::NAME) => lookup::handle(&mut resolver, request, id).await,
        ("CodeSystem", subsumes::NAME) => subsumes::handle(&mut resolver, request, id).await,
        _ => Err(Error::NotFound(format!("no FHIR endpoint at `/{}`", request.path))),
    }
}

/// The code system an operation names: the stored `CodeSystem/[id]`, else `url` (`system`).
async fn code_system(
    resolver: &mut Resolver<'_, '_>,
    id: Option<&str>,
    url: Option<&str>,
    version: Option<&str>,
) -> Result<Arc<CodeSystem>> {
    match (id, url) {
        (Some(id), _) => {
            let resource = resolver.instance("CodeSystem", id).await?;
            Ok(Arc::new(CodeSystem::parse(&resource).map_err(Error::unprocessable)?))
        }
        (None, Some(url)) => resolver.code_system(url, version).await,
        (None, None) => Err(Error::bad_request("name the code system: `system` (or `url`), or a code system id")),
    }
}

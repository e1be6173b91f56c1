//! create: `POST [type]`, with a server-assigned id. See <https://hl7.org/fhir/R4/http.html#create>.

use serde_json::Value;

use super::write::{CONFLICT_RETRIES, commit, conflict_backoff, parse_resource, respond};
use super::{Engine, Request, Response};
use crate::error::{Error, Result};
use crate::storage::{StoreError, WriteKind};

pub(super) async fn handle(engine: &Engine, request: &Request, resource_type: &str) -> Result<Response> {
    if request.headers.if_none_exist.is_some() {
        return Err(Error::NotImplemented(
            "conditional create (`If-None-Exist`) is not supported by this server yet".into(),
        ));
    }
    let mut resource = parse_resource(request, resource_type)?;
    for attempt in 0..CONFLICT_RETRIES {
        // The server assigns the id; one sent by the client is ignored (http.html#create).
        let id = (engine.config.ids)();
        resource.insert("id".into(), Value::String(id.clone()));
        match commit(engine, resource_type, &id, 1, WriteKind::Create, Some(&mut resource)).await {
            Ok(version) => return respond(request, &version, 201),
            Err(Error::Conflict(_)) => conflict_backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::from(StoreError::Unavailable("could not allocate a unique id".into())))
}

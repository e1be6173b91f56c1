//! batch: each entry is a request of its own, run through the same interactions as any other
//! request, in order; a failing entry gets its OperationOutcome and the others go on.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use super::{Entry, response_entry};
use crate::access::Access;
use crate::error::{Error, Result};
use crate::interaction::{Engine, Method, Request, Response, Route};
use crate::resource::format_instant;

pub(super) async fn run(
    engine: &Engine,
    access: &dyn Access,
    request: &Request,
    entries: Vec<Result<Entry>>,
) -> Result<Response> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let response = match entry {
            Ok(entry) => one(engine, access, request, &entry).await.map_err(|e| e.context(&entry.label())),
            Err(e) => Err(e),
        };
        out.push(match response {
            Ok(response) => response_entry(&response, None),
            Err(e) => response_entry(&Response::json(e.status(), e.outcome_json()), None),
        });
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": (engine.config.ids)(),
        "meta": { "lastUpdated": format_instant(engine.now()) },
        "type": "batch-response",
        "entry": Value::Array(out),
    });
    Ok(Response::json(200, bundle))
}

/// One entry, as a request of its own.
async fn one(engine: &Engine, access: &dyn Access, outer: &Request, entry: &Entry) -> Result<Response> {
    let request = entry.request(outer);
    if entry.method == Method::Post && matches!(Route::parse(&request.path)?, Route::System) {
        return Err(Error::bad_request("a bundle inside a bundle is not supported"));
    }
    dispatch(engine, access, &request).await
}

/// The engine's dispatch, boxed: bundles call it for their entries.
pub(super) fn dispatch<'a>(
    engine: &'a Engine,
    access: &'a dyn Access,
    request: &'a Request,
) -> Pin<Box<dyn Future<Output = Result<Response>> + Send + 'a>> {
    Box::pin(engine.dispatch(request, access))
}

//! vread: `GET [type]/[id]/_history/[vid]`. See <https://hl7.org/fhir/R4/http.html#vread>.

use super::gate::Gate;
use super::{Engine, Request, Response, read};
use crate::error::{Error, Result};

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    id: &str,
    version: &str,
) -> Result<Response> {
    let not_found = || Error::NotFound(format!("version `{version}` of `{resource_type}/{id}` not found"));
    let number: u64 = version.parse().ok().filter(|n| *n > 0).ok_or_else(not_found)?;
    let found = engine.store.vread(resource_type, id, number).await.map_err(Error::from)?;
    if let Some(found) = &found {
        gate.check_outgoing(engine, found, not_found).await?;
    }
    match found {
        None => Err(not_found()),
        Some(v) if v.is_deleted() => {
            Err(Error::Gone(format!("version `{version}` of `{resource_type}/{id}` is a deletion")))
        }
        Some(v) => read::representation(request, &v, 200),
    }
}

//! vread: `GET [type]/[id]/_history/[vid]`. See <https://hl7.org/fhir/R4/http.html#vread>.

use super::{Engine, Request, Response, read};
use crate::error::{Error, Result};

pub(super) async fn handle(
    engine: &Engine,
    request: &Request,
    resource_type: &str,
    id: &str,
    version: &str,
) -> Result<Response> {
    let number: u64 = version
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::NotFound(format!("version `{version}` of `{resource_type}/{id}` not found")))?;
    let found = engine.store.vread(resource_type, id, number).await.map_err(Error::from)?;
    match found {
        None => Err(Error::NotFound(format!("version `{version}` of `{resource_type}/{id}` not found"))),
        Some(v) if v.is_deleted() => {
            Err(Error::Gone(format!("version `{version}` of `{resource_type}/{id}` is a deletion")))
        }
        Some(v) => read::representation(request, &v, 200),
    }
}

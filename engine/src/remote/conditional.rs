//! Conditional update, patch and delete on a remote (http.html "Conditional update / patch /
//! delete"), and the criteria of conditional create, with the engine's semantics
//! (`interaction/conditional.rs`): criteria are parsed strictly, chains and `_has` refused
//! unless the client may search every resource they traverse, and they match only what the
//! client may read. When that takes data-level decisions, the criteria run as a search on the
//! remote, each match is decided (a hidden match is never changed, deleted, returned or counted
//! as an ambiguity), and the plain interaction is sent on the resolved id, with `If-Match` of
//! the version decided ([`super::write`]).

use serde_json::{Map, Value};

use super::send::{self, Flow, Halt};
use super::write::{create_plain, patch_at, reader_covers, update_at};
use super::{Call, write};
use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::{Gate, Method, Request, Response, parse_resource};
use crate::outcome::{Issue, IssueType};
use crate::patch::Patch;
use crate::search::query::{self, SearchQuery};

/// Matches asked of the remote per page while looking for visible ones.
const CHUNK: u32 = 100;

/// Conditional criteria on one resource type.
pub(super) struct Criteria {
    pub(super) query: SearchQuery,
    /// `Type?params` as the engine understood them, for messages.
    pub(super) text: String,
}

impl Criteria {
    /// Criteria from decoded query parameters; result parameters are left out.
    pub(super) fn parse(call: &Call<'_>, resource_type: &str, params: &[(String, String)]) -> Result<Self> {
        let params: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty" | "_count" | "_summary" | "_elements"))
            .cloned()
            .collect();
        let limits = query::Limits::from(call.config);
        let mut parsed = query::parse_within(Definitions::r4(), Some(resource_type), &params, true, &limits)?;
        parsed.query.result = query::ResultParams::default();
        if parsed.query.clauses.is_empty() {
            return Err(Error::BadRequest(vec![Issue::error(
                IssueType::Invalid,
                format!("conditional criteria on `{resource_type}` must have at least one search parameter"),
            )]));
        }
        let text = format!("{resource_type}?{}", query::to_query_string(&parsed.query));
        Ok(Self { query: parsed.query, text })
    }

    /// The 412 for criteria matching more than one resource.
    pub(super) fn ambiguous(&self, what: &str) -> Error {
        Error::PreconditionFailed(format!("`{}` matches more than one resource: {what}", self.text))
    }

    /// The current resources on the remote matching the criteria that the client of `gate` may
    /// read, at most `limit`. Reads at most `search_max_results` matches.
    pub(super) async fn matches(
        &self,
        call: &Call<'_>,
        gate: &Gate<'_>,
        base_url: &str,
        limit: u32,
    ) -> Flow<Vec<Map<String, Value>>> {
        gate.check_traversals(&self.query)?;
        let resource_type = self.query.resource_type.clone().unwrap_or_default();
        // A client that may read none of them sees no match.
        let Some(reader) = gate.reader(&resource_type) else { return Ok(Vec::new()) };
        let mut params = crate::interaction::parse_query(&query::to_query_string(&self.query));
        params.push(("_count".into(), CHUNK.to_string()));
        let mut next = Some(send::request(Method::Get, &resource_type, params, base_url));
        let mut found = Vec::new();
        let mut scanned = 0usize;
        while let Some(search) = next.take() {
            let mut reply = send::exchange(call.upstream, &search).await?;
            let bundle = reply.bundle(&["searchset"])?;
            call.load_consents_in(&reader, &bundle, base_url).await?;
            let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            for entry in entries {
                if entry.pointer("/search/mode").and_then(Value::as_str).is_some_and(|m| m != "match") {
                    continue;
                }
                scanned += 1;
                let Some(Value::Object(resource)) = entry.get("resource") else { continue };
                if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type.as_str()) {
                    return Err(super::bad_gateway("a search returned a resource of another type"));
                }
                if reader.allows(&Value::Object(resource.clone()), Phase::Outgoing) {
                    found.push(resource.clone());
                }
            }
            if found.len() >= limit as usize || scanned >= call.config.search_max_results as usize {
                break;
            }
            next = next_page(&bundle, &resource_type, base_url);
        }
        found.truncate(limit as usize);
        Ok(found)
    }
}

/// The request for the remote's `next` page of a searchset: the link's query on the same path.
fn next_page(bundle: &Map<String, Value>, resource_type: &str, base_url: &str) -> Option<Request> {
    let links = bundle.get("link")?.as_array()?;
    let url = links.iter().find(|l| l["relation"] == "next")?.get("url")?.as_str()?;
    let (_, query) = url.split_once('?')?;
    Some(send::request(Method::Get, resource_type, crate::interaction::parse_query(query), base_url))
}

/// `PUT`, `PATCH` or `DELETE [type]?criteria`.
pub(super) async fn handle(call: &Call<'_>, gate: &Gate<'_>, request: &Request, resource_type: &str) -> Flow<Response> {
    let criteria = Criteria::parse(call, resource_type, &request.query)?;
    gate.check_traversals(&criteria.query)?;
    if gate.covers_data() && reader_covers(gate, resource_type) {
        return write::forward(call, request).await;
    }
    match request.method {
        Method::Put => update(call, gate, request, resource_type, &criteria).await,
        Method::Patch => {
            let content_type = request.headers.content_type.as_deref().unwrap_or_default();
            let patch = Patch::from_body(content_type, &request.body)?;
            match criteria.matches(call, gate, &request.base_url, 2).await?.as_slice() {
                [] => Err(Halt::Error(Error::NotFound(format!("`{}` matches no resource to patch", criteria.text)))),
                [one] => patch_at(call, gate, request, &patch, resource_type, &id_of(one)?).await,
                _ => Err(Halt::Error(criteria.ambiguous("nothing was patched"))),
            }
        }
        _ => delete(call, gate, request, resource_type, &criteria).await,
    }
}

/// `PUT [type]?criteria`: no visible match creates (at the body's id, or a new one), one is
/// updated, several are a 412.
async fn update(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    criteria: &Criteria,
) -> Flow<Response> {
    let mut resource = parse_resource(request, resource_type)?;
    let body_id = resource.get("id").and_then(Value::as_str).map(str::to_owned);
    match criteria.matches(call, gate, &request.base_url, 2).await?.as_slice() {
        [] => match body_id {
            Some(id) => update_at(call, gate, request, resource_type, &id, resource).await,
            None => {
                call.load_consents_of(gate, &resource, &request.base_url).await?;
                gate.check_incoming(&resource)?;
                create_plain(call, gate, request, resource_type, resource).await
            }
        },
        [one] => {
            let id = id_of(one)?;
            if body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(Halt::Error(Error::bad_request(format!(
                    "the body's id `{}` is not the id of the resource `{}` matches (`{id}`)",
                    body_id.unwrap_or_default(),
                    criteria.text
                ))));
            }
            resource.insert("id".into(), Value::String(id.clone()));
            update_at(call, gate, request, resource_type, &id, resource).await
        }
        _ => Err(Halt::Error(criteria.ambiguous("nothing was updated"))),
    }
}

/// `DELETE [type]?criteria`: up to `_count` visible matches (1 by default) are deleted, each
/// decided and sent with `If-Match`; more is a 412 and nothing is deleted.
async fn delete(
    call: &Call<'_>,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: &str,
    criteria: &Criteria,
) -> Flow<Response> {
    let allowed = match request.param("_count") {
        None => 1,
        Some(n) => match n.parse::<u32>() {
            Ok(n) if (1..=call.config.max_conditional_delete).contains(&n) => n,
            _ => {
                return Err(Halt::Error(Error::bad_request(format!(
                    "`_count` of a conditional delete must be 1 to {}, not `{n}`",
                    call.config.max_conditional_delete
                ))));
            }
        },
    };
    let found = criteria.matches(call, gate, &request.base_url, allowed + 1).await?;
    if found.len() > allowed as usize {
        return Err(Halt::Error(criteria.ambiguous(&format!("more than {allowed} to delete; nothing was deleted"))));
    }
    let mut plain = request.clone();
    plain.query.clear();
    let mut last = Response::empty(204);
    for one in &found {
        let id = id_of(one)?;
        plain.path = format!("{resource_type}/{id}");
        last = write::delete(call, gate, &plain, resource_type, &id).await?;
    }
    if found.len() > 1 {
        last = Response::empty(204);
    }
    Ok(last)
}

/// The id of a match, or a 502.
fn id_of(resource: &Map<String, Value>) -> Flow<String> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| super::bad_gateway("a search returned a resource without an id"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_next_page_is_the_links_query_on_the_same_path() {
        let bundle = json!({"resourceType": "Bundle", "link": [
            {"relation": "self", "url": "http://remote/fhir/Patient?identifier=x"},
            {"relation": "next", "url": "http://remote/fhir/Patient?_page=a%20b&_count=100"}
        ]});
        let next = bundle.as_object().and_then(|b| next_page(b, "Patient", "http://client"));
        let next = next.map(|r| (r.path, r.query));
        assert_eq!(
            next,
            Some(("Patient".into(), vec![("_page".into(), "a b".into()), ("_count".into(), "100".into())]))
        );
        let last =
            json!({"resourceType": "Bundle", "link": [{"relation": "self", "url": "http://remote/fhir/Patient"}]});
        assert!(last.as_object().and_then(|b| next_page(b, "Patient", "http://client")).is_none());
    }
}

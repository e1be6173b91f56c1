//! search and history on a remote (<https://hl7.org/fhir/R4/search.html>,
//! <https://hl7.org/fhir/R4/http.html#history>).
//!
//! A search is parsed by the engine's parser before anything is sent: chains and `_has` are
//! refused unless the client may search every resource of the types they traverse,
//! `_summary=count` is refused when the grant decides per resource (a count would include what
//! the client may not see), and the remote receives the search as the engine understood it (the
//! parameters it parsed, in their canonical form, plus the remote's own paging parameters),
//! never a parameter the engine ignored and so could not check. With a per-resource grant
//! `_summary` / `_elements` are not sent: the remote returns whole resources, each entry
//! (matches and `_include`d ones alike) is decided, hidden ones are removed with `total`, and
//! the subset is made here; the `next` link then skips the remote's pages of hidden matches only
//! ([`super::paging`]). The remote's paging links stay in the Bundle (the gateway replaces them
//! with its own).

use std::collections::HashSet;

use serde_json::Value;

use super::Call;
use super::filter::{self, Shape};
use super::paging;
use super::read::not_found;
use super::send::{self, Flow, Halt};
use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::Error;
use crate::interaction::{Gate, Method, Request, Response, Route, parse_query};
use crate::outcome::{Issue, IssueType, OperationOutcome};
use crate::search::query::{self, Summary};

/// Query parameters that continue a search or history on the remote (its page tokens), sent as
/// they are and never parsed as search parameters.
const PAGING: [&str; 9] = [
    "_page",
    "_getpages",
    "_getpagesoffset",
    "_pageId",
    "_bundletype",
    "ct",
    "_continuationToken",
    "_snapshot",
    "_offset",
];

pub(super) async fn handle(call: &Call<'_>, gate: &Gate<'_>, request: &Request, route: &Route) -> Flow<Response> {
    let (path, resource_type) = match route {
        Route::Search { resource_type } => (resource_type.clone().unwrap_or_default(), resource_type.clone()),
        Route::Type { resource_type } => (resource_type.clone(), Some(resource_type.clone())),
        Route::Compartment { resource_type, .. } => (request.path.clone(), resource_type.clone()),
        _ => (String::new(), None),
    };
    let (paging, params): (Vec<_>, Vec<_>) =
        params(call, request)?.into_iter().partition(|(k, _)| PAGING.contains(&k.as_str()));
    let limits = query::Limits::from(call.config);
    let strict = handling_strict(request);
    let search = query::parse_within(Definitions::r4(), resource_type.as_deref(), &params, strict, &limits)?;
    let mut parsed = search.query;
    gate.check_traversals(&parsed)?;
    let shape = Shape::of(&parsed.result);
    if !gate.covers_data() {
        if parsed.result.summary == Some(Summary::Count) {
            return Err(Halt::Error(Error::Forbidden(
                "`_summary=count` is not allowed to a client that may see only some of the resources: the count \
                 would include the others"
                    .into(),
            )));
        }
        parsed.result.summary = None;
        parsed.result.elements.clear();
    }
    let mut query = parse_query(&query::to_query_string(&parsed));
    query.extend(paging);
    let sent = send::request(Method::Get, &path, query, &request.base_url);
    let mut reply = send::exchange(call.upstream, &sent).await?;
    let mut bundle = reply.bundle(Listing::Search.kinds())?;
    decide(call, gate, Listing::Search, &mut bundle, &request.base_url).await?;
    paging::skip_hidden_pages(call, gate, Listing::Search, &mut bundle, &request.base_url).await;
    if !gate.covers_data() {
        shape.apply_entries(&mut bundle);
    }
    note_ignored(&mut bundle, &search.ignored);
    Ok(Response::json(200, Value::Object(bundle)))
}

/// History at any level: forwarded with its own parameters; with a per-resource grant an
/// instance the client may not see has no history (404, as for read) and each entry is decided.
/// A deletion entry is decided on the version it deleted.
pub(super) async fn history(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Flow<Response> {
    let target = gate.target();
    if !gate.covers_data() && !target.id.is_empty() {
        let (t, id) = (target.resource_type.as_str(), target.id.as_str());
        let current = send::request(Method::Get, &format!("{t}/{id}"), Vec::new(), &request.base_url);
        let reply = send::answer(call.upstream, &current).await?;
        match reply.status {
            404 | 410 => return Err(Halt::Error(not_found(t, id))),
            s if s >= 400 => return Err(send::failure(reply)),
            _ => {}
        }
        let resource = Value::Object(reply.resource_of(t)?.clone());
        call.load_consents(gate, &[&resource], &request.base_url).await?;
        if !gate.allows(&resource, Phase::Outgoing) {
            return Err(Halt::Error(not_found(t, id)));
        }
    }
    let (sent, shape) = if gate.covers_data() { (request.clone(), Shape::default()) } else { Shape::strip(request)? };
    let mut reply = send::answer(call.upstream, &send::forwarded(&sent)).await?;
    match reply.status {
        404 if !target.id.is_empty() => {
            return Err(Halt::Error(not_found(&target.resource_type, &target.id)));
        }
        s if s >= 400 => return Err(send::failure(reply)),
        _ => {}
    }
    let mut bundle = reply.bundle(Listing::History.kinds())?;
    decide(call, gate, Listing::History, &mut bundle, &request.base_url).await?;
    paging::skip_hidden_pages(call, gate, Listing::History, &mut bundle, &request.base_url).await;
    shape.apply_entries(&mut bundle);
    Ok(Response::json(200, Value::Object(bundle)))
}

/// What a remote page lists.
#[derive(Debug, Clone, Copy)]
pub(super) enum Listing {
    Search,
    History,
}

impl Listing {
    /// The Bundle type of its pages.
    pub(super) fn kinds(self) -> &'static [&'static str] {
        match self {
            Self::Search => &["searchset"],
            Self::History => &["history"],
        }
    }
}

/// Decides every entry of a remote page (`base_url`: the remote's): hidden ones are removed
/// ([`filter::entries`]); a history's deletions are decided on the versions they deleted.
pub(super) async fn decide(
    call: &Call<'_>,
    gate: &Gate<'_>,
    listing: Listing,
    bundle: &mut serde_json::Map<String, Value>,
    base_url: &str,
) -> Flow<()> {
    call.load_consents_in(gate, bundle, base_url).await?;
    match listing {
        Listing::Search => filter::entries(bundle, gate),
        Listing::History => {
            let visible = visible_deletions(call, gate, bundle, base_url).await?;
            filter::entries_deciding(bundle, gate, |entry| deletion_key(entry).is_some_and(|k| visible.contains(&k)));
        }
    }
    Ok(())
}

/// The deletion entries of a history page (no resource to decide on) that the client may see:
/// decided, as the engine decides them, on the version each deleted, read from the remote.
async fn visible_deletions(
    call: &Call<'_>,
    gate: &Gate<'_>,
    bundle: &serde_json::Map<String, Value>,
    base_url: &str,
) -> Flow<HashSet<String>> {
    let mut visible = HashSet::new();
    if gate.covers_data() {
        return Ok(visible);
    }
    let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let deletions = entries.iter().filter(|e| e.get("resource").is_none());
    // At most a page's worth of reads; beyond it, deletions stay hidden.
    for entry in deletions.take(call.config.max_page_size as usize) {
        let Some(key) = deletion_key(entry) else { continue };
        let Some((path, version)) = deleted_version(entry) else { continue };
        let resource_type = path.split('/').next().unwrap_or_default().to_owned();
        let vread = send::request(Method::Get, &format!("{path}/_history/{version}"), Vec::new(), base_url);
        let reply = send::answer(call.upstream, &vread).await?;
        if reply.status != 200 {
            continue;
        }
        let resource = Value::Object(reply.resource_of(&resource_type)?.clone());
        call.load_consents(gate, &[&resource], base_url).await?;
        if gate.allows(&resource, Phase::Outgoing) {
            visible.insert(key);
        }
    }
    Ok(visible)
}

/// What names a deletion entry: its `request.url` and `response.etag`.
fn deletion_key(entry: &Value) -> Option<String> {
    let url = entry.pointer("/request/url")?.as_str()?;
    let tag = entry.pointer("/response/etag")?.as_str()?;
    Some(format!("{url} {tag}"))
}

/// `Type/id` of a deletion entry and the version before the deletion (the one it deleted).
fn deleted_version(entry: &Value) -> Option<(String, u64)> {
    if entry.pointer("/request/method").and_then(Value::as_str) != Some("DELETE") {
        return None;
    }
    let url = entry.pointer("/request/url")?.as_str()?;
    let url = url.split('?').next().unwrap_or(url);
    let mut segments = url.trim_end_matches('/').rsplit('/');
    let id = segments.next()?;
    let resource_type = segments.next()?;
    if !Definitions::r4().is_resource_type(resource_type) || !crate::resource::is_valid_id(id) {
        return None;
    }
    let version = send::etag_value(entry.pointer("/response/etag")?.as_str()?).parse::<u64>().ok()?;
    (version > 1).then(|| (format!("{resource_type}/{id}"), version - 1))
}

/// Tells the client, as the engine does, which parameters were ignored (and so not sent).
fn note_ignored(bundle: &mut serde_json::Map<String, Value>, ignored: &[(String, String, String)]) {
    if ignored.is_empty() {
        return;
    }
    let issues = ignored
        .iter()
        .map(|(key, value, why)| Issue::warning(IssueType::NotSupported, format!("`{key}={value}` was ignored: {why}")))
        .collect();
    let note =
        serde_json::json!({ "resource": OperationOutcome { issues }.to_json(), "search": { "mode": "outcome" } });
    if let Value::Array(list) = bundle.entry("entry").or_insert_with(|| Value::Array(Vec::new())) {
        list.push(note);
    }
}

/// The search parameters: the query string, and for `POST _search` the form body as well.
fn params(call: &Call<'_>, request: &Request) -> Flow<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> =
        request.query.iter().filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty")).cloned().collect();
    if request.method == Method::Post && !request.body.is_empty() {
        let most = call.config.max_search_bytes as usize;
        if request.body.len() > most {
            return Err(Halt::Error(Error::bad_request(format!(
                "the `_search` form body takes {} bytes; this server accepts at most {most} (`max_search_bytes`)",
                request.body.len()
            ))));
        }
        let form = request.headers.content_type.as_deref().is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !form {
            return Err(Halt::Error(Error::UnsupportedMediaType(
                "`_search` takes its parameters as `application/x-www-form-urlencoded`".into(),
            )));
        }
        let body = std::str::from_utf8(&request.body)
            .map_err(|_| Error::bad_request("the `_search` form body is not UTF-8"))?;
        params.extend(parse_query(body));
    }
    Ok(params)
}

/// `Prefer: handling=strict` (search.html "Handling Errors"); lenient otherwise.
pub(super) fn handling_strict(request: &Request) -> bool {
    request
        .headers
        .prefer
        .as_deref()
        .is_some_and(|prefer| prefer.split([',', ';']).any(|part| part.trim().trim_matches('"') == "handling=strict"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deletions_name_the_version_they_deleted() {
        let entry = |method: &str, url: &str, tag: &str| json!({"request": {"method": method, "url": url}, "response": {"etag": tag}});
        assert_eq!(deleted_version(&entry("DELETE", "Patient/p1", "W/\"3\"")), Some(("Patient/p1".into(), 2)));
        assert_eq!(
            deleted_version(&entry("DELETE", "http://remote/fhir/Patient/p1", "\"2\"")),
            Some(("Patient/p1".into(), 1))
        );
        assert_eq!(deleted_version(&entry("DELETE", "Patient/p1", "W/\"1\"")), None);
        assert_eq!(deleted_version(&entry("PUT", "Patient/p1", "W/\"3\"")), None);
        assert_eq!(deleted_version(&entry("DELETE", "Nope/p1", "W/\"3\"")), None);
        assert_eq!(deleted_version(&entry("DELETE", "Patient/p1", "W/\"x\"")), None);
        assert_eq!(deletion_key(&entry("DELETE", "Patient/p1", "W/\"3\"")).as_deref(), Some("Patient/p1 W/\"3\""));
    }
}

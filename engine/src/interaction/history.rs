//! history: instance (`[type]/[id]/_history`), type (`[type]/_history`) and system (`_history`)
//! level, with `_count`, `_since`, `_at` and paging links that stay stable while writes arrive.
//! See <https://hl7.org/fhir/R4/http.html#history>.
//!
//! Paging: the first page records where the store's writes stood (`_snapshot`: the store's write
//! positions, one per position bucket, sealed like search page links so no client forges or
//! alters one, and any replica holding the same keys opens it); later pages only see versions
//! inside it, in an order that is total and fixed for a fixed snapshot, so no entry is repeated
//! or missed when new versions are written between page requests.
//!
//! Pages go by key: `next` carries the key of the page's last version and `previous` that of its
//! first ([`HistoryCursor`]), with the snapshot and the page's place (its offset, for `total`
//! and whether there is a previous page), all sealed in `_snapshot`; the store reads the versions
//! just past the key, so a deep page costs what the first does and any replica serves it. Links
//! of the earlier form (the snapshot sealed alone, and a plain `_offset`) are still served, by
//! offset.
//!
//! A client whose access depends on the data sees only the versions it may see: each entry is
//! decided on its own version (a deletion on the version it deleted), the bundle has no `total`
//! (it would count the others), and an instance it may not see has no history (404, as for a
//! resource that does not exist). Paging still follows the store's positions, so a page may
//! hold fewer entries than `_count`.

use serde_json::{Value, json};

use super::gate::Gate;
use super::history_link::{State, open_state, seal_state};
use super::{Engine, Request, Response, percent_encode, read};
use crate::access::Phase;
use crate::error::{Error, Result};
use crate::resource::{etag, format_instant, parse_date_time_start};
use crate::storage::{HistoryCursor, HistoryPage, HistoryQuery, ResourceVersion, WriteKind};

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Response> {
    let state = request.param("_snapshot").map(|sealed| open_state(&engine.config.page_keys, sealed)).transpose()?;
    let (snapshot, offset, cursor) = match state {
        Some(State { snapshot, offset: Some(offset), cursor }) => (Some(snapshot), offset, cursor),
        Some(State { snapshot, offset: None, cursor }) => {
            (Some(snapshot), number_param(request, "_offset")?.unwrap_or(0), cursor)
        }
        None => (None, number_param(request, "_offset")?.unwrap_or(0), None),
    };
    let query = HistoryQuery {
        resource_type: resource_type.map(str::to_string),
        id: id.map(str::to_string),
        since: date_param(request, "_since")?,
        at: date_param(request, "_at")?,
        snapshot,
        offset,
        cursor,
        count: count_param(engine, request)?,
    };
    if let (Some(t), Some(i)) = (resource_type, id) {
        // An instance that never existed, or that the client may not see, has no history: 404,
        // as for read.
        let current = engine.store.read(t, i).await?.ok_or_else(|| read::not_found(t, i))?;
        gate.check_outgoing(engine, &current, || read::not_found(t, i)).await?;
    }
    let page = engine.store.history(&query).await?;
    let mut entries: Vec<Value> = Vec::with_capacity(page.versions.len());
    // The Consents of the page's patients in one read, rather than one per entry.
    let shown: Vec<Value> =
        page.versions.iter().filter_map(|v| v.json.as_deref()).filter_map(|j| serde_json::from_str(j).ok()).collect();
    gate.load_consents(engine, &shown.iter().collect::<Vec<_>>()).await?;
    for version in &page.versions {
        if gate.allows_version(engine, version, Phase::Outgoing).await? {
            entries.push(entry(request, version));
        }
    }
    let links = links(engine, request, &query, &page, gate.covers_data())?;
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": (engine.config.ids)(),
        "meta": { "lastUpdated": format_instant(engine.now()) },
        "type": "history",
        "link": links,
        "entry": entries,
    });
    if gate.covers_data() {
        bundle["total"] = json!(page.total);
    }
    Ok(Response::json(200, bundle))
}

fn entry(request: &Request, v: &ResourceVersion) -> Value {
    let path = format!("{}/{}", v.resource_type, v.id);
    let (method, url, status) = match v.kind {
        WriteKind::Create => ("POST", v.resource_type.clone(), "201 Created"),
        WriteKind::Update if v.version == 1 => ("PUT", path.clone(), "201 Created"),
        WriteKind::Update => ("PUT", path.clone(), "200 OK"),
        WriteKind::Delete => ("DELETE", path.clone(), "204 No Content"),
    };
    let mut entry = json!({
        "fullUrl": request.url(&path),
        "request": { "method": method, "url": url },
        "response": {
            "status": status,
            "etag": etag(v.version),
            "lastModified": format_instant(v.last_updated),
        },
    });
    if let Some(json) = &v.json {
        if let Ok(resource) = serde_json::from_str::<Value>(json) {
            entry["resource"] = resource;
        }
    }
    entry
}

fn link(relation: &str, url: &str) -> Value {
    json!({ "relation": relation, "url": url })
}

/// `self`, and `next` and `previous` where there are such pages: each a [`State`] sealed.
fn links(
    engine: &Engine,
    request: &Request,
    query: &HistoryQuery,
    page: &HistoryPage,
    covers_data: bool,
) -> Result<Vec<Value>, Error> {
    let url = |offset: u64, cursor: Option<HistoryCursor>| -> Result<String> {
        let state = State { snapshot: page.snapshot.clone(), offset: Some(offset), cursor };
        Ok(page_url(request, query, &seal_state(&engine.config.page_keys, &state)?))
    };
    let mut links = vec![link("self", &url(query.offset, query.cursor.clone())?)];
    let shown = query.offset + page.versions.len() as u64;
    // With nothing shown, a link to more would tell that hidden versions exist.
    let counts_hidden = !covers_data && query.count == 0;
    if shown < page.total && !counts_hidden {
        // After the page's last version; an empty page (`_count=0`) stays where it is.
        let cursor = page.last_key.clone().map(HistoryCursor::OlderThan).or_else(|| query.cursor.clone());
        links.push(link("next", &url(shown, cursor)?));
    }
    if query.offset > 0 {
        let previous = query.offset.saturating_sub(u64::from(query.count));
        // Before the page's first version; from an empty page, the same way it was reached.
        let cursor = match (&page.first_key, &query.cursor) {
            (Some(first), _) => Some(HistoryCursor::NewerThan(first.clone())),
            (None, cursor) => cursor.clone(),
        };
        links.push(link("previous", &url(previous, cursor)?));
    }
    Ok(links)
}

/// The URL of a page: the request's own parameters with `_count` and `_snapshot` set.
fn page_url(request: &Request, query: &HistoryQuery, state: &str) -> String {
    let mut params: Vec<String> = request
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_snapshot" | "_offset" | "_count"))
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    params.push(format!("_count={}", query.count));
    params.push(format!("_snapshot={state}"));
    format!("{}?{}", request.url(&request.path), params.join("&"))
}

fn date_param(request: &Request, name: &str) -> Result<Option<time::OffsetDateTime>> {
    request
        .param(name)
        .map(|text| {
            parse_date_time_start(text).ok_or_else(|| {
                Error::bad_request(format!(
                    "invalid `{name}` value `{text}`: expected an instant like `2020-01-01T00:00:00Z`"
                ))
            })
        })
        .transpose()
}

fn number_param(request: &Request, name: &str) -> Result<Option<u64>> {
    request
        .param(name)
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                Error::bad_request(format!("invalid `{name}` value `{text}`: expected a non-negative integer"))
            })
        })
        .transpose()
}

fn count_param(engine: &Engine, request: &Request) -> Result<u32> {
    let count = number_param(request, "_count")?.unwrap_or(u64::from(engine.config.default_page_size));
    Ok(u32::try_from(count).unwrap_or(u32::MAX).min(engine.config.max_page_size))
}

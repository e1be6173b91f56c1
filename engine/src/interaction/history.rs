//! history: instance (`[type]/[id]/_history`), type (`[type]/_history`) and system (`_history`)
//! level, with `_count`, `_since`, `_at` and paging links that stay stable while writes arrive.
//! See <https://hl7.org/fhir/R4/http.html#history>.
//!
//! Paging: the first page records where the store's writes stood (`_snapshot`: the store's write
//! positions, one per position bucket, sealed like search page links so no client forges or
//! alters one, and any replica holding the same keys opens it); later pages only see versions
//! inside it, and skip by `_offset` in an order that is total and fixed for a fixed snapshot, so
//! no entry is repeated or missed when new versions are written between page requests.
//!
//! A client whose access depends on the data sees only the versions it may see: each entry is
//! decided on its own version (a deletion on the version it deleted), the bundle has no `total`
//! (it would count the others), and an instance it may not see has no history (404, as for a
//! resource that does not exist). Paging still follows the store's positions, so a page may
//! hold fewer entries than `_count`.

use serde_json::{Value, json};

use super::gate::Gate;
use super::{Engine, Request, Response, percent_encode, read};
use crate::access::Phase;
use crate::error::{Error, Result};
use crate::resource::{etag, format_instant, parse_date_time_start};
use crate::storage::{HistoryQuery, HistorySnapshot, ResourceVersion, WriteKind};

/// The format byte of a sealed history snapshot.
const SNAPSHOT_FORMAT: u8 = 1;
/// What a sealed history snapshot is, so no other sealed value opens as one.
const SNAPSHOT_AAD: &[u8] = b"fhirgate history snapshot";
/// Buckets a snapshot may name: far above any store's (PostgreSQL has 16).
const MAX_BUCKETS: usize = 1024;

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Response> {
    let query = HistoryQuery {
        resource_type: resource_type.map(str::to_string),
        id: id.map(str::to_string),
        since: date_param(request, "_since")?,
        at: date_param(request, "_at")?,
        snapshot: request.param("_snapshot").map(|sealed| open_snapshot(engine, sealed)).transpose()?,
        offset: number_param(request, "_offset")?.unwrap_or(0),
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
    let snapshot = seal_snapshot(engine, &page.snapshot)?;
    let mut links = vec![link("self", &page_url(request, &query, &snapshot, query.offset))];
    let shown = query.offset + page.versions.len() as u64;
    // With nothing shown, a link to more would tell that hidden versions exist.
    let counts_hidden = !gate.covers_data() && query.count == 0;
    if shown < page.total && !counts_hidden {
        links.push(link("next", &page_url(request, &query, &snapshot, shown)));
    }
    if query.offset > 0 {
        let previous = query.offset.saturating_sub(u64::from(query.count));
        links.push(link("previous", &page_url(request, &query, &snapshot, previous)));
    }
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

/// The URL of a page: the request's own parameters with `_snapshot` and `_offset` set.
fn page_url(request: &Request, query: &HistoryQuery, snapshot: &str, offset: u64) -> String {
    let mut params: Vec<String> = request
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_snapshot" | "_offset" | "_count"))
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    params.push(format!("_count={}", query.count));
    params.push(format!("_snapshot={snapshot}"));
    params.push(format!("_offset={offset}"));
    format!("{}?{}", request.url(&request.path), params.join("&"))
}

/// The `_snapshot` value of `snapshot`: its positions (8 bytes each, little-endian), sealed.
fn seal_snapshot(engine: &Engine, snapshot: &HistorySnapshot) -> Result<String> {
    let plain = snapshot.0.iter().flat_map(|p| p.to_le_bytes()).collect();
    engine
        .config
        .page_keys
        .seal(SNAPSHOT_FORMAT, SNAPSHOT_AAD, plain)
        .ok_or_else(|| Error::Internal("no randomness to seal a history link with".into()))
}

/// The snapshot a `_snapshot` value carries; 410 when it was forged, altered, or sealed with a
/// key this server no longer holds (as for a search page link).
fn open_snapshot(engine: &Engine, sealed: &str) -> Result<HistorySnapshot> {
    let gone = || Error::Gone("this history page link was not issued by this server: read the history again".into());
    let plain = engine.config.page_keys.open(SNAPSHOT_FORMAT, SNAPSHOT_AAD, sealed).ok_or_else(gone)?;
    if plain.len() % 8 != 0 || plain.len() / 8 > MAX_BUCKETS {
        return Err(gone());
    }
    Ok(HistorySnapshot(plain.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8]))).collect()))
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

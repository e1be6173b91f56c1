//! The `searchset` Bundle of one page (bundle.html, search.html "Paging"): matches, included
//! resources and notes as entries, `total` when known, and `self` / `first` / `previous` /
//! `next` / `last` links.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::include;
use super::snapshot::Snapshot;
use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::format::{Summary, apply_elements, apply_summary};
use crate::interaction::{Engine, Request, Response, Visibility};
use crate::outcome::OperationOutcome;
use crate::resource::format_instant;
use crate::search::query::ResultParams;
use crate::storage::ResourceVersion;

/// The bundle of `count` matches of `snapshot` from `offset`, for a client who sees what
/// `visible` allows.
pub(super) async fn page(
    engine: &Engine,
    request: &Request,
    snapshot: &Arc<Snapshot>,
    offset: usize,
    count: usize,
    visible: Option<Visibility<'_>>,
) -> Result<Response> {
    let store = &engine.store;
    let window = snapshot.window(engine, offset, offset.saturating_add(count), visible).await?;
    let end = offset + window.matches.len();
    // The versions that matched; a store keeps every version, so they are all there.
    let matches = store.vread_many(&window.matches).await?;
    let result = &snapshot.query.result;
    let mut included = include::resolve(engine, result, &matches).await?;
    if let Some(visible) = visible {
        let parsed: Vec<Option<serde_json::Value>> =
            included.iter().map(|v| v.json.as_deref().and_then(|j| serde_json::from_str(j).ok())).collect();
        visible.load_consents(engine, &parsed.iter().flatten().collect::<Vec<_>>()).await?;
        let mut decided = parsed.iter().map(|r| r.as_ref().is_some_and(|r| visible.allows(r, Phase::Outgoing)));
        included.retain(|_| decided.next().unwrap_or(false));
    }

    let mut entries = Vec::with_capacity(matches.len() + included.len() + 1);
    for version in &matches {
        entries.push(entry(request, version, result, "match")?);
    }
    for version in &included {
        entries.push(entry(request, version, result, "include")?);
    }
    if !snapshot.notes.is_empty() {
        let outcome = OperationOutcome { issues: snapshot.notes.clone() };
        entries.push(json!({ "resource": outcome.to_json(), "search": { "mode": "outcome" } }).to_string());
    }

    let base = request.url(&snapshot.path);
    let base = base.trim_end_matches('/');
    // A link per place whose start is known here; the result set is kept for them when this
    // process ran the search.
    let link = |relation: &str, offset: usize| {
        let state = snapshot.link_state(offset, count)?;
        if snapshot.fresh {
            engine.pages.keep(snapshot);
        }
        let url = format!("{base}?_page={}", engine.pages.seal(state)?);
        Some(json!({ "relation": relation, "url": url }))
    };
    let mut links = Vec::new();
    if offset == 0 {
        let query = &snapshot.self_query;
        let url = if query.is_empty() { base.to_owned() } else { format!("{base}?{query}") };
        links.push(json!({ "relation": "self", "url": url }));
        // The only page is also the first and the last (clients and TestScript's
        // `navigationLinks` look for both).
        if count > 0 && !window.more {
            links.push(json!({ "relation": "first", "url": url }));
            links.push(json!({ "relation": "last", "url": url }));
        }
    } else {
        links.extend(link("self", offset));
    }
    if count > 0 && (offset > 0 || window.more) {
        links.extend(link("first", 0));
        if offset > 0 {
            links.extend(link("previous", offset.saturating_sub(count)));
        }
        if window.more {
            links.extend(link("next", end));
        }
        // The last page is known once every match has been read.
        if let Some(len) = window.known_len.filter(|n| *n > 0) {
            links.extend(link("last", (len - 1) / count * count));
        }
    }

    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": (engine.config.ids)(),
        "meta": { "lastUpdated": format_instant(engine.now()) },
        "type": "searchset",
    });
    if let Some(total) = snapshot.total {
        bundle["total"] = json!(total);
    }
    bundle["link"] = Value::Array(links);
    Ok(Response::stored(200, with_entries(bundle.to_string(), &entries)))
}

/// The rendered bundle `head` (an object, `entry` last to come) with the entries' texts as its
/// `entry` array.
fn with_entries(mut head: String, entries: &[String]) -> String {
    if entries.is_empty() || !head.ends_with('}') {
        return head;
    }
    head.pop();
    head.reserve(entries.iter().map(|e| e.len() + 1).sum::<usize>() + 12);
    head.push_str(",\"entry\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            head.push(',');
        }
        head.push_str(entry);
    }
    head.push_str("]}");
    head
}

/// One entry as JSON text: its full URL, the resource and its search mode. The stored text of
/// the resource goes in as it is (it was rendered from a parsed resource when written); only
/// `_summary` / `_elements` make it parsed, shaped and rendered again. Parsing and rendering
/// every resource of a page was most of a search's own CPU.
fn entry(request: &Request, version: &ResourceVersion, result: &ResultParams, mode: &str) -> Result<String> {
    let path = format!("{}/{}", version.resource_type, version.id);
    let json = version.json.as_deref().unwrap_or("{}");
    let shaped = if reshapes(result) {
        let mut resource: Value = serde_json::from_str(json)
            .map_err(|e| Error::Internal(format!("stored `{path}` (version {}) is not JSON: {e}", version.version)))?;
        if let Some(map) = resource.as_object_mut() {
            shape(map, &version.resource_type, result);
        }
        Some(resource.to_string())
    } else {
        None
    };
    let resource = shaped.as_deref().unwrap_or(json);
    let full_url = Value::from(request.url(&path)).to_string();
    let mut out = String::with_capacity(full_url.len() + resource.len() + mode.len() + 48);
    out.push_str("{\"fullUrl\":");
    out.push_str(&full_url);
    out.push_str(",\"resource\":");
    out.push_str(resource);
    out.push_str(",\"search\":{\"mode\":\"");
    out.push_str(mode);
    out.push_str("\"}}");
    Ok(out)
}

/// Whether `_summary` or `_elements` change what a resource shows.
fn reshapes(result: &ResultParams) -> bool {
    match result.summary {
        Some(Summary::False) | Some(Summary::Count) => false,
        Some(_) => true,
        None => !result.elements.is_empty(),
    }
}

/// Applies `_summary` or `_elements`.
fn shape(resource: &mut Map<String, Value>, resource_type: &str, result: &ResultParams) {
    let defs = Definitions::r4();
    let mandatory = |e: &str| defs.is_mandatory_element(resource_type, e);
    match result.summary {
        Some(Summary::False) | Some(Summary::Count) => {}
        Some(summary) => apply_summary(resource, summary, |e| defs.is_summary_element(resource_type, e), mandatory),
        None if !result.elements.is_empty() => apply_elements(resource, &result.elements, mandatory),
        None => {}
    }
}

//! Searches (and type/system history) over several targets, or over a remote: every target asked
//! in parallel with the client's `_count`, the pages merged by [`merge`] (`_sort` across targets,
//! totals summed, failed targets as OperationOutcome entries unless the route's
//! `on_target_error = "fail"`; when every target failed, the first one's error), and fhirgate's
//! own page links (search.html "Paging"): `next` and `previous` are `{route base}?_getpages=SEALED`,
//! the per-target cursors sealed ([`crate::paging`]) for the caller only; `first` is the
//! search's own URL (run again, under the caller's own decisions). A target's own page links
//! never reach the client: `previous` is where the page before started in this search, not a
//! target's `previous` (a merged or filtered page is no target's page).

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::federation::{Cursor, Order, Part, merge};
use fhirgate_engine::interaction::{Method, Request, Response, parse_query, percent_encode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::dispatch::{Caller, call_for_merge, failure, json_response};
use super::{Route, RouteTarget, Routing};
use crate::paging::PageState;

/// What one merged page is made of.
struct Page<'a> {
    resource_type: String,
    count: usize,
    sort: String,
    /// Each target's answer, with where it started.
    answers: Vec<(Cursor, Response)>,
    /// The page's own URL on the client base.
    self_url: String,
    /// Where this page started: each target's cursor that was not done; `[]` on the first page.
    start: Vec<Cursor>,
    /// The first page, relative to the route's base, and where the pages before this one
    /// started ([`PageState::first`], [`PageState::back`]).
    first: String,
    back: Vec<Vec<Cursor>>,
    /// The first page's total, on later pages ([`PageState::total`]).
    total: Option<u64>,
    request: &'a Request,
}

/// The first page of a search on `targets`.
pub(super) async fn first_page(
    routing: &Routing,
    route: &Route,
    request: &Request,
    caller: &Caller<'_>,
    targets: Vec<&RouteTarget>,
) -> Response {
    // The search as a GET: the query and, for `POST _search`, the form parameters.
    let mut query = request.query.clone();
    if request.method == Method::Post {
        query.extend(parse_query(&String::from_utf8_lossy(&request.body)));
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let count =
        param("_count").and_then(|c| c.parse::<usize>().ok()).unwrap_or(routing.default_count).min(routing.max_count);
    let sort = param("_sort").unwrap_or_default().to_owned();
    let resource_type = searched_type(&request.path);
    let mut sent = request.clone();
    if param("_count").is_none() {
        sent.query.push(("_count".into(), count.to_string()));
        query.push(("_count".into(), count.to_string()));
    }
    let path = sent.path.trim_end_matches("_search").trim_end_matches('/').to_owned();
    let again = relative(&path, &query);
    let answers = join_all(targets.iter().map(|t| call_for_merge(routing, route, t, &sent, caller))).await;
    let answers = targets
        .iter()
        .zip(answers)
        .map(|(t, r)| {
            let cursor = Cursor { target: t.target.id.clone(), page: Some(again.clone()), skip: 0, done: false };
            (cursor, r)
        })
        .collect();
    let mut self_url = request.base_url.clone();
    if !request.path.is_empty() {
        self_url = format!("{self_url}/{}", request.path);
    }
    if !request.query.is_empty() {
        self_url.push_str(&relative("", &request.query));
    }
    let page = Page {
        resource_type: resource_type.to_owned(),
        count,
        sort,
        answers,
        self_url,
        start: Vec::new(),
        first: again,
        back: Vec::new(),
        total: None,
        request,
    };
    finish(routing, route, caller, page).await
}

/// `GET {route base}?_getpages=SEALED`: a later (or, through `previous`, an earlier) page of a
/// federated search.
pub(super) async fn next_page(routing: &Routing, route: &Route, request: &Request, caller: &Caller<'_>) -> Response {
    let gone = || {
        failure(FhirError::Gone(
            "this search page has expired or was never issued to this client: run the search again".into(),
        ))
    };
    let (Some(sealer), Some(sealed)) = (&routing.sealer, request.param("_getpages")) else { return gone() };
    let state = match sealer.open(sealed, &caller.owner()) {
        Ok(state) if state.route == route.config.id => state,
        _ => return gone(),
    };
    let mut work = Vec::new();
    for cursor in state.cursors.iter().filter(|c| !c.done) {
        let Some(target) = route.targets.iter().find(|t| t.target.id == cursor.target) else { return gone() };
        work.push((target, cursor.clone()));
    }
    let answers = fetch(routing, route, request, caller, &work).await;
    let page = Page {
        resource_type: state.resource_type,
        count: state.count,
        sort: state.sort,
        answers,
        self_url: format!("{}?_getpages={sealed}", request.base_url),
        start: work.into_iter().map(|(_, cursor)| cursor).collect(),
        first: state.first,
        back: state.back,
        total: state.total,
        request,
    };
    finish(routing, route, caller, page).await
}

/// Each cursor's page, from its target.
async fn fetch(
    routing: &Routing,
    route: &Route,
    request: &Request,
    caller: &Caller<'_>,
    work: &[(&RouteTarget, Cursor)],
) -> Vec<(Cursor, Response)> {
    join_all(work.iter().map(|(target, cursor)| async move {
        let response = match page_request(request, cursor.page.as_deref().unwrap_or_default()) {
            Ok(sent) => call_for_merge(routing, route, target, &sent, caller).await,
            Err(e) => failure(e),
        };
        (cursor.clone(), response)
    }))
    .await
}

/// Rounds of fetching one page may take: a merged page may hold no match while targets have
/// more (their buffered matches all sort after another's unfetched ones).
const MAX_ROUNDS: usize = 8;

/// Merges the targets' answers into one page with fhirgate's links.
async fn finish(routing: &Routing, route: &Route, caller: &Caller<'_>, page: Page<'_>) -> Response {
    let fail = route.config.on_target_error == "fail";
    let mut answers = page.answers;
    // Type and system history: every cursor pages through a `_history` URL.
    let history = answers.iter().any(|(c, _)| c.page.as_deref().is_some_and(|p| p.contains("_history")));
    let order = if history { Order::Newest } else { Order::Sort(&page.sort) };
    let mut rounds = 0;
    // Every target failed: their first failure, not an empty searchset.
    if !answers.is_empty() && answers.iter().all(|(_, r)| r.status >= 400) {
        if let Some((_, failed)) = answers.first() {
            return failed.clone();
        }
    }
    let merged = loop {
        if fail {
            if let Some((_, failed)) = answers.iter().find(|(_, r)| r.status >= 400) {
                return failed.clone();
            }
        }
        let base = &page.request.base_url;
        let parts =
            answers.into_iter().map(|(cursor, response)| Part { cursor, page: parsed(response, base) }).collect();
        let merged = match merge(&page.resource_type, parts, order, page.count) {
            Ok(merged) => merged,
            Err(e) => return failure(e),
        };
        rounds += 1;
        // A match is an entry that is neither an include nor an outcome (history entries have
        // no search mode at all).
        let matched = merged.bundle["entry"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| !matches!(e["search"]["mode"].as_str(), Some("include" | "outcome"))));
        if matched || merged.cursors.iter().all(|c| c.done) || rounds >= MAX_ROUNDS {
            break merged;
        }
        let work: Vec<(&RouteTarget, Cursor)> = merged
            .cursors
            .iter()
            .filter(|c| !c.done)
            .filter_map(|c| route.targets.iter().find(|t| t.target.id == c.target).map(|t| (t, c.clone())))
            .collect();
        answers = fetch(routing, route, page.request, caller, &work).await;
    };
    let mut bundle = merged.bundle;
    hide_target_ids(&mut bundle, route);
    if history {
        bundle["type"] = json!("history");
    }
    // The first page's sum over every target; a later page's own sum would leave out the
    // targets already done.
    let total = if page.start.is_empty() { bundle.get("total").and_then(Value::as_u64) } else { page.total };
    match (total, bundle.as_object_mut()) {
        (Some(total), _) => bundle["total"] = json!(total),
        (None, Some(object)) => {
            object.remove("total");
        }
        (None, None) => {}
    }
    let base = &page.request.base_url;
    let more = merged.cursors.iter().any(|c| !c.done);
    let mut links = vec![json!({ "relation": "self", "url": &page.self_url })];
    if more || !page.start.is_empty() {
        links.push(json!({ "relation": "first", "url": on_base(base, &page.first) }));
    } else {
        // The only page is also the first.
        links.push(json!({ "relation": "first", "url": &page.self_url }));
    }
    if !more {
        // A page with nothing after it is the last.
        links.push(json!({ "relation": "last", "url": &page.self_url }));
    }
    let state = |cursors: Vec<Cursor>, back: Vec<Vec<Cursor>>| PageState {
        route: route.config.id.clone(),
        owner: caller.owner(),
        resource_type: page.resource_type.clone(),
        count: page.count,
        sort: page.sort.clone(),
        cursors,
        first: page.first.clone(),
        back,
        total,
        expires: expires(routing),
    };
    let mut sealed = Vec::new();
    match page.back.split_last() {
        Some((before, _)) if before.is_empty() => {
            links.push(json!({ "relation": "previous", "url": on_base(base, &page.first) }));
        }
        Some((before, older)) => sealed.push(("previous", state(before.clone(), older.to_vec()))),
        None => {}
    }
    if more {
        let mut back = page.back.clone();
        back.push(page.start.clone());
        sealed.push(("next", state(merged.cursors, back)));
    }
    if !sealed.is_empty() {
        let Some(sealer) = &routing.sealer else {
            return failure(FhirError::Internal("federated paging has no key".into()));
        };
        for (relation, state) in sealed {
            match sealer.seal(&state) {
                Ok(value) => links.push(json!({ "relation": relation, "url": format!("{base}?_getpages={value}") })),
                Err(e) => return failure(e.into()),
            }
        }
    }
    bundle["link"] = Value::Array(links);
    json_response(200, &bundle, page.request)
}

/// When a page link issued now is gone (Unix seconds).
fn expires(routing: &Routing) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(now.saturating_add(routing.page_ttl.as_secs())).unwrap_or(i64::MAX)
}

/// `relative` (`Patient?x=1`, or `?_type=…` for the system) on the route's `base`.
fn on_base(base: &str, relative: &str) -> String {
    let base = base.trim_end_matches('/');
    if relative.starts_with('?') { format!("{base}{relative}") } else { format!("{base}/{relative}") }
}

/// Target ids name targets in logs and policies, never to clients: the outcome entries of
/// failed targets say "one of this route's servers" instead.
fn hide_target_ids(bundle: &mut Value, route: &Route) {
    let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else { return };
    for entry in entries.iter_mut().filter(|e| e["search"]["mode"] == "outcome") {
        let Some(issues) = entry.pointer_mut("/resource/issue").and_then(Value::as_array_mut) else { continue };
        for issue in issues {
            let Some(text) = issue.get("diagnostics").and_then(Value::as_str) else { continue };
            let mut hidden = text.to_owned();
            for target in &route.targets {
                hidden = hidden.replace(&format!("target `{}`", target.target.id), "one of this route's servers");
            }
            issue["diagnostics"] = Value::String(hidden);
        }
    }
}

/// A target's answer as a [`Part`]'s page: the searchset and its `next` link (made relative to
/// the route's `base`), or the error it reported. A remote's page is the value it was decided
/// and rewritten as ([`call_for_merge`]); a local store's is parsed from its rendered body.
fn parsed(mut response: Response, base: &str) -> Result<(Value, Option<String>), FhirError> {
    if response.status != 200 {
        return Err(error_of(&response));
    }
    let bundle = match response.take_pending_json() {
        Some(bundle) => bundle,
        None => serde_json::from_slice(&response.body)
            .map_err(|e| FhirError::BadGateway(format!("a target answered a search with no JSON Bundle: {e}")))?,
    };
    let next = bundle
        .get("link")
        .and_then(Value::as_array)
        .and_then(|links| links.iter().find(|l| l.get("relation").and_then(Value::as_str) == Some("next")))
        .and_then(|l| l.get("url"))
        .and_then(Value::as_str)
        .map(|url| url.strip_prefix(base.trim_end_matches('/')).unwrap_or(url).trim_start_matches('/').to_owned());
    Ok((bundle, next))
}

/// The error a failed answer reports, for its OperationOutcome entry.
pub(super) fn error_of(response: &Response) -> FhirError {
    let outcome: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let message = outcome
        .pointer("/issue/0/diagnostics")
        .and_then(Value::as_str)
        .map_or_else(|| format!("a target answered {}", response.status), str::to_owned);
    match response.status {
        400 | 405..=409 | 411..=499 => FhirError::bad_request(message),
        401 => FhirError::Unauthorized(message),
        403 => FhirError::Forbidden(message),
        404 => FhirError::NotFound(message),
        410 => FhirError::Gone(message),
        503 => FhirError::StoreUnavailable(message),
        504 => FhirError::GatewayTimeout(message),
        _ => FhirError::BadGateway(message),
    }
}

/// The type a search path searches: `Type`, `Type/_search`, `Type/_history`, or a compartment's
/// `Owner/id/Type`; `""` for the whole system or a compartment's `*`.
fn searched_type(path: &str) -> &str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let named = match segments.as_slice() {
        [t] | [t, "_search" | "_history"] => t,
        [_, _, t] | [_, _, t, "_search"] => t,
        _ => "",
    };
    if named.starts_with(['_', '*', '$']) { "" } else { named }
}

/// `path?query` with the query encoded again.
fn relative(path: &str, query: &[(String, String)]) -> String {
    let encoded: Vec<String> =
        query.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    format!("{path}?{}", encoded.join("&"))
}

/// The GET of a cursor's page (a URL on the route's base, or relative to it).
fn page_request(request: &Request, page: &str) -> Result<Request, FhirError> {
    let base = request.base_url.trim_end_matches('/');
    let below = if page.starts_with("http://") || page.starts_with("https://") {
        page.strip_prefix(base)
            .ok_or_else(|| FhirError::BadGateway("a target's page link is not on this route's base".into()))?
    } else {
        page
    };
    let (path, query) = below.split_once('?').unwrap_or((below, ""));
    Ok(Request {
        method: Method::Get,
        path: path.trim_matches('/').to_owned(),
        query: parse_query(query),
        headers: request.headers.clone(),
        body: Vec::new(),
        base_url: request.base_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_pages_become_requests_on_the_route_base() -> Result<(), FhirError> {
        let request = Request::new(Method::Get, "", "http://gw/card");
        let sent = page_request(&request, "http://gw/card/Patient?_page=abc&_count=2")?;
        assert_eq!((sent.path.as_str(), sent.param("_page")), ("Patient", Some("abc")));
        let sent = page_request(&request, "Patient?name=a%20b&_count=2")?;
        assert_eq!(sent.param("name"), Some("a b"));
        assert!(page_request(&request, "http://elsewhere/Patient").is_err(), "never another base");
        Ok(())
    }

    #[test]
    fn failed_answers_keep_their_status_class() {
        let outcome = br#"{"resourceType":"OperationOutcome","issue":[{"diagnostics":"down"}]}"#.to_vec();
        let down = Response::rendered(503, "application/fhir+json", outcome);
        let e = error_of(&down);
        assert_eq!(e.status(), 503);
        assert!(e.to_string().contains("down"));
        assert_eq!(error_of(&Response::empty(500)).status(), 502, "a target's 500 is a bad gateway here");
    }

    #[test]
    fn the_searched_type_of_each_search_path() {
        let cases = [
            ("Patient", "Patient"),
            ("Patient/_search", "Patient"),
            ("Observation/_history", "Observation"),
            ("Patient/LAB-1/Observation", "Observation"),
            ("Patient/1/*", ""),
            ("", ""),
            ("_search", ""),
            ("_history", ""),
        ];
        for (path, expected) in cases {
            assert_eq!(searched_type(path), expected, "{path}");
        }
    }

    #[test]
    fn first_pages_sit_on_the_route_base() {
        assert_eq!(on_base("http://gw/lab/", "Patient?_count=2"), "http://gw/lab/Patient?_count=2");
        assert_eq!(on_base("http://gw", "?_type=Patient"), "http://gw?_type=Patient");
    }

    #[test]
    fn queries_are_encoded_again() {
        let q = vec![("name".to_owned(), "a b&c".to_owned()), ("_count".to_owned(), "2".to_owned())];
        assert_eq!(relative("Patient", &q), "Patient?name=a%20b%26c&_count=2");
    }
}

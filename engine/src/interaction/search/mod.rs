//! search (<https://hl7.org/fhir/R4/search.html>): `GET [type]?`, `POST [type]/_search`, system
//! search `GET [base]?` (with `_type`) and compartment search `GET Patient/[id]/[type]?`.
//!
//! The query is parsed into the backend-neutral expression and the store returns its matches
//! (their current versions) a chunk at a time ([`snapshot`]): the result set. Pages are slices
//! of it, read at the versions that matched, so paging never shows a resource twice or skips
//! one that matched all along, whatever is written in between. Page links carry their state
//! sealed ([`pages`]), so every replica serves them; a value the server did not seal, or one
//! that expired, gets a 410.
//!
//! A client whose access depends on the data matches only what it may see: every match is
//! decided before counting and paging, so totals and pages count nothing hidden, and included
//! resources are decided too. Chains and `_has` are refused unless it may search every resource
//! they traverse ([`super::gate::Gate::check_traversals`]). A page link serves only the client
//! that ran the search, on the path it ran on.

mod bundle;
mod concepts;
mod include;
mod pages;
mod snapshot;

use std::sync::Arc;

use super::gate::Gate;
use super::{Engine, Method, Request, Response, Visibility, parse_query};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType};
use crate::search::query::{self, Compartment, SearchQuery, Summary, Total};

use pages::PageState;
pub(crate) use pages::Pages;
use snapshot::{Origin, Read, Snapshot};

/// Where a search runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// `[type]?` and `[type]/_search`.
    Type(&'a str),
    /// `[base]?` and `[base]/_search`.
    System,
    /// `[compartment]/[id]/[type]?`; `resource_type` is `None` for `*`.
    Compartment { owner_type: &'a str, owner_id: &'a str, resource_type: Option<&'a str> },
}

impl Scope<'_> {
    fn resource_type(&self) -> Option<&str> {
        match self {
            Self::Type(t) => Some(t),
            Self::System => None,
            Self::Compartment { resource_type, .. } => *resource_type,
        }
    }

    /// The path searches of this scope are written at, for links.
    fn path(&self) -> String {
        match self {
            Self::Type(t) => (*t).to_owned(),
            Self::System => String::new(),
            Self::Compartment { owner_type, owner_id, resource_type } => {
                format!("{owner_type}/{owner_id}/{}", resource_type.unwrap_or("*"))
            }
        }
    }
}

pub(super) async fn handle(engine: &Engine, gate: &Gate<'_>, request: &Request, scope: Scope<'_>) -> Result<Response> {
    let (resumed, rerun) = match continuation(engine, gate, request).await? {
        Paging::First => (None, None),
        Paging::Kept(response) => return Ok(response),
        Paging::Rerun(rerun) => (Some(rerun.0), Some(rerun.1)),
    };
    let request = rerun.as_ref().unwrap_or(request);
    let defs = Definitions::r4();
    let params = params(engine, request)?;
    let limits = query::Limits::from(&engine.config);
    let parsed = query::parse_within(defs, scope.resource_type(), &params, handling_strict(request), &limits)?;
    let mut query = parsed.query;
    gate.check_traversals(&query)?;
    concepts::resolve(engine, gate, &mut query).await?;
    if let Scope::Compartment { owner_type, owner_id, resource_type } = scope {
        query.compartment = Some(compartment(defs, owner_type, owner_id, |t| resource_type.is_none_or(|r| r == t))?);
    }
    let self_query = query::to_query_string(&query);
    let listing = Listing { path: scope.path(), self_query, notes: ignored(&parsed.ignored), params };
    answer(engine, gate, request, query, listing, resumed.as_ref()).await
}

/// What a request continues.
pub(super) enum Paging {
    /// Nothing: it runs a search (no `_page`).
    First,
    /// A page of a result set this process keeps: the page, answered.
    Kept(Response),
    /// A page of a search run elsewhere (or no longer kept): its state, and the request that
    /// runs the search again (the parameters the state carries, on the same path).
    Rerun(Box<(PageState, Request)>),
}

/// For a request with `_page`: the page when this process keeps its result set, else what runs
/// it again. A value that does not open for this client on this path (forged, altered,
/// expired, another client's) is a 410.
pub(super) async fn continuation(engine: &Engine, gate: &Gate<'_>, request: &Request) -> Result<Paging> {
    let Some(sealed) = request.param("_page") else { return Ok(Paging::First) };
    let gone =
        || Error::Gone("this search page has expired or was never issued by this server: run the search again".into());
    let state = engine.pages.open(sealed, gate.owner(), &request.path).ok_or_else(gone)?;
    if let Some(snapshot) = engine.pages.kept(&state) {
        let visible: Option<Visibility<'_>> = (!gate.covers_data()).then_some(gate);
        let page = bundle::page(engine, request, &snapshot, state.offset, state.count, visible);
        return within_budget(engine, page).await.map(Paging::Kept);
    }
    let params = state.params.clone().ok_or_else(gone)?;
    let mut rerun = request.clone();
    rerun.method = Method::Get;
    rerun.body = Default::default();
    rerun.query = params;
    // Parsed leniently, as the parameters were accepted once: warnings come back as they were.
    rerun.headers.prefer = None;
    Ok(Paging::Rerun(Box::new((state, rerun))))
}

/// Where a result set is listed: the path its page links are written at, the `self` link's
/// query of its first page, the warnings every page carries, and the parameters that run the
/// search again on that path (what page links carry).
pub(super) struct Listing {
    pub(super) path: String,
    pub(super) self_query: String,
    pub(super) notes: Vec<Issue>,
    pub(super) params: Vec<(String, String)>,
}

/// Warnings for the parameters a lenient parse skipped.
pub(super) fn ignored(ignored: &[(String, String, String)]) -> Vec<Issue> {
    ignored
        .iter()
        .map(|(key, value, why)| Issue::warning(IssueType::NotSupported, format!("`{key}={value}` was ignored: {why}")))
        .collect()
}

/// Runs a parsed search for the client `gate` decides for, within the search timeout: its
/// first page (or the page of `resumed`), every match decided before counting and paging.
pub(super) async fn answer(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    query: SearchQuery,
    listing: Listing,
    resumed: Option<&PageState>,
) -> Result<Response> {
    let visible: Option<Visibility<'_>> = (!gate.covers_data()).then_some(gate);
    within_budget(engine, run(engine, request, query, gate.owner(), listing, visible, resumed)).await
}

/// `work` within the search timeout.
async fn within_budget(engine: &Engine, work: impl Future<Output = Result<Response>>) -> Result<Response> {
    let budget = engine.config.search_timeout;
    match tokio::time::timeout(budget, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(format!(
            "the search did not finish within {} s: narrow it with more selective parameters",
            budget.as_secs_f32()
        ))),
    }
}

async fn run(
    engine: &Engine,
    request: &Request,
    query: SearchQuery,
    owner: &str,
    listing: Listing,
    visible: Option<Visibility<'_>>,
    resumed: Option<&PageState>,
) -> Result<Response> {
    let store = &engine.store;
    let Listing { path, self_query, notes, params } = listing;
    let origin = |notes| Origin { owner: owner.to_owned(), path, self_query, notes, params };
    let count_only = query.result.summary == Some(Summary::Count) || query.result.count == Some(0);
    if count_only && visible.is_none() {
        let total = store.count(&query).await?;
        let snapshot = Snapshot::new(origin(notes), query, Some(total), Read::default(), None);
        return bundle::page(engine, request, &Arc::new(snapshot), 0, 0, None).await;
    }
    let count = if count_only { usize::MAX } else { page_size(engine, &query) };
    let read = match resumed {
        // Elsewhere than where the search ran: on after the match before the page.
        Some(PageState { after: Some(after), offset, .. }) => Read::resume(after.clone(), *offset, count),
        _ => {
            // A restricted client's total counts what it may see: asked for, every match is read.
            let whole = visible.is_some() && matches!(query.result.total, Some(Total::Accurate | Total::Estimate));
            Read::first(engine, &query, count, whole, visible).await?
        }
    };
    let known = read.known_len().filter(|_| resumed.is_none());
    if count_only {
        let total = known.map(|n| n as u64);
        let snapshot = Snapshot::new(origin(notes), query, total, Read::default(), None);
        return bundle::page(engine, request, &Arc::new(snapshot), 0, 0, None).await;
    }
    let total = match query.result.total {
        _ if resumed.is_some() => resumed.and_then(|state| state.total),
        Some(Total::None) => None,
        _ if known.is_some() => known.map(|n| n as u64),
        // A count of everything would include what the client may not see.
        _ if visible.is_some() => None,
        Some(Total::Accurate | Total::Estimate) => Some(store.count(&query).await?),
        None => None,
    };
    let offset = resumed.map_or(0, |state| state.offset);
    let snapshot = Snapshot::new(origin(notes), query, total, read, resumed);
    bundle::page(engine, request, &Arc::new(snapshot), offset, count, visible).await
}

/// `_count`, or the default page size, at most the largest page size.
fn page_size(engine: &Engine, query: &SearchQuery) -> usize {
    let count = query.result.count.unwrap_or(engine.config.default_page_size).min(engine.config.max_page_size);
    count as usize
}

/// The search parameters: the query string, and for `POST _search` the form body as well.
pub(super) fn params(engine: &Engine, request: &Request) -> Result<Vec<(String, String)>> {
    let mut params = request.query.clone();
    if request.method == Method::Post && !request.body.is_empty() {
        // Refused before it is split into pairs; the parser checks the decoded parameters too.
        let most = engine.config.max_search_bytes as usize;
        if request.body.len() > most {
            return Err(Error::bad_request(format!(
                "the `_search` form body takes {} bytes; this server accepts at most {most} (`max_search_bytes`)",
                request.body.len()
            )));
        }
        let form = request.headers.content_type.as_deref().is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !form {
            return Err(Error::UnsupportedMediaType(
                "`_search` takes its parameters as `application/x-www-form-urlencoded`".into(),
            ));
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

/// The compartment of `owner_type/owner_id`, restricted to the resource types `keep` keeps.
pub(super) fn compartment(
    defs: &Definitions,
    owner_type: &str,
    owner_id: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Compartment> {
    let definition =
        defs.compartment(owner_type).ok_or_else(|| Error::NotFound(format!("`{owner_type}` is not a compartment")))?;
    let params = definition
        .resources()
        .filter(|(t, params)| keep(t) && !params.is_empty())
        .map(|(t, params)| (t.to_owned(), params.to_vec()))
        .collect();
    Ok(Compartment { resource_type: owner_type.to_owned(), id: owner_id.to_owned(), params })
}

//! One request on one route: which targets answer it and how their answers become one.
//!
//! - A route with one local target and no id prefix: the engine answers as it is.
//! - A read (`Type/id`, vread, instance history, a GET `$operation` on an instance): the target
//!   whose id prefix the id carries; without one, every unprefixed target in parallel, the first
//!   (in route order) that has it answers.
//! - Searches and type/system history: every target (or the prefixed owner's, for a
//!   compartment), merged ([`super::search`]).
//! - Writes: the prefixed id's target, else the route's `write_target`.
//! - Batches and transactions: [`super::bundle`]; `metadata`: [`super::metadata`].
//!
//! Each target call gets its own [`Access`] (`context.target`, `context.route`) and goes through
//! [`Rewrite`] both ways unless the target's ids and base are the client's already.

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::MediaType;
use fhirgate_engine::access::{Access, Interaction, Target as Asked, Unrestricted};
use fhirgate_engine::federation::Rewrite;
use fhirgate_engine::interaction::{Method, Request, Response};
use fhirgate_policies::RequestContext;
use futures_util::future::join_all;
use tracing::Instrument as _;

use super::targets::Backend;
use super::{Route, RouteTarget, Routing};
use crate::auth::Identity;
use crate::policy::Policies;
use crate::policy::access::Anonymous;
use crate::policy::audit::AuditInfo;

/// Who sent the request, and what each target's decisions need.
pub struct Caller<'a> {
    /// `None`: no token (authentication off, or a public path).
    pub identity: Option<&'a Identity>,
    /// `None`: authentication and authorization are off.
    pub policies: Option<&'a Policies>,
    pub context: RequestContext,
    pub audit: &'a AuditInfo,
    /// The bearer token, for targets configured to pass it through.
    pub token: Option<&'a str>,
}

impl<'a> Caller<'a> {
    /// The decisions of this request on `target` of `route`.
    pub fn access(&self, route: &str, target: &str) -> Box<dyn Access + 'a> {
        match (self.identity, self.policies) {
            (Some(identity), Some(policies)) => {
                let context = RequestContext {
                    store: target.to_owned(),
                    target: target.to_owned(),
                    route: route.to_owned(),
                    ..self.context.clone()
                };
                Box::new(policies.access(&identity.principal, context, self.audit))
            }
            // Defence in depth: a caller without a token runs nothing but what public paths name.
            (None, Some(_)) => Box::new(Anonymous),
            (_, None) => Box::new(Unrestricted),
        }
    }

    /// The owner of page links ([`crate::policy::owner`]; `""` without a token).
    pub fn owner(&self) -> String {
        self.identity.map(|i| crate::policy::owner(&i.principal, &self.context)).unwrap_or_default()
    }
}

pub(super) async fn answer(routing: &Routing, route: &Route, request: Request, caller: &Caller<'_>) -> Response {
    let read = matches!(request.method, Method::Get | Method::Head);
    let composed = !route.is_plain() || !route.config.types.is_empty();
    if let (true, Err(e)) = (composed, super::format::negotiate(&request)) {
        return failure(e);
    }
    if read && request.path == "metadata" && composed {
        return super::metadata::answer(routing, route, &request, caller).await;
    }
    if route.is_plain() {
        return call(routing, route, &route.targets[0], &request, caller).await;
    }
    if read && request.path.is_empty() && request.param("_getpages").is_some() {
        return super::search::next_page(routing, route, &request, caller).await;
    }
    let asked = match Asked::of(&request) {
        Ok(asked) => asked,
        Err(e) => return failure(e),
    };
    use Interaction as I;
    match asked.interaction {
        I::Capabilities => super::metadata::answer(routing, route, &request, caller).await,
        I::Read | I::Vread | I::HistoryInstance => read_by_id(routing, route, &request, caller, &asked.id).await,
        I::Operation if read && !asked.id.is_empty() => read_by_id(routing, route, &request, caller, &asked.id).await,
        I::SearchType | I::SearchSystem | I::HistoryType | I::HistorySystem => {
            super::search::first_page(routing, route, &request, caller, route.targets.iter().collect()).await
        }
        I::SearchCompartment => {
            let targets = candidates(route, &asked.id);
            if targets.is_empty() {
                return failure(FhirError::NotFound(format!("`{}/{}` is not known", asked.resource_type, asked.id)));
            }
            super::search::first_page(routing, route, &request, caller, targets).await
        }
        I::Batch | I::Transaction => super::bundle::answer(routing, route, &request, caller).await,
        _ => {
            let target = prefixed(route, &asked.id).unwrap_or_else(|| write_target(route));
            call(routing, route, target, &request, caller).await
        }
    }
}

/// A read by id: the prefixed target, else every unprefixed one; the first that has it answers.
async fn read_by_id(routing: &Routing, route: &Route, request: &Request, caller: &Caller<'_>, id: &str) -> Response {
    match candidates(route, id).as_slice() {
        [] => failure(FhirError::NotFound(format!("`{}` is not known", request.path))),
        [one] => call(routing, route, one, request, caller).await,
        many => {
            let answers = join_all(many.iter().map(|t| call(routing, route, t, request, caller))).await;
            pick(answers)
        }
    }
}

/// The answer of the first target (in route order) that has the resource; else the first
/// failure that is not "not found" (a denial, a target down); else "gone" over "not found".
fn pick(mut answers: Vec<Response>) -> Response {
    let rank = |r: &Response| match r.status {
        s if s < 400 => 0,
        404 => 3,
        410 => 2,
        _ => 1,
    };
    let best = answers.iter().enumerate().min_by_key(|(i, r)| (rank(r), *i)).map_or(0, |(i, _)| i);
    if answers.is_empty() {
        return failure(FhirError::NotFound("no target answered".into()));
    }
    answers.swap_remove(best)
}

/// The target whose id prefix `id` carries.
pub(super) fn prefixed<'r>(route: &'r Route, id: &str) -> Option<&'r RouteTarget> {
    route.targets.iter().find(|t| !t.id_prefix.is_empty() && id.starts_with(&t.id_prefix))
}

/// The targets that may hold `id`: its prefix's, else those without a prefix.
pub(super) fn candidates<'r>(route: &'r Route, id: &str) -> Vec<&'r RouteTarget> {
    match prefixed(route, id) {
        Some(one) => vec![one],
        None => route.targets.iter().filter(|t| t.id_prefix.is_empty()).collect(),
    }
}

/// Where writes naming no prefixed id go.
pub(super) fn write_target(route: &Route) -> &RouteTarget {
    let id = route.config.write_target();
    route.targets.iter().find(|t| Some(t.target.id.as_str()) == id).unwrap_or(&route.targets[0])
}

/// How `target`'s ids and URLs differ from the client's (`client_base`: the route's).
pub(super) fn rewrite(target: &RouteTarget, client_base: &str) -> Rewrite {
    let target_base = match &target.target.backend {
        Backend::Remote(remote) => remote.base_url().trim_end_matches('/').to_owned(),
        Backend::Local(_) => client_base.to_owned(),
    };
    Rewrite { id_prefix: target.id_prefix.clone(), target_base, client_base: client_base.to_owned() }
}

/// `request` (on the client's base and ids) answered by one target, its answer on the client's.
pub(super) async fn call(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    request: &Request,
    caller: &Caller<'_>,
) -> Response {
    call_as(routing, route, target, request, caller, false).await
}

/// [`call`] for a page that [`super::search`] merges: a remote's 200 JSON answer stays the
/// value it is ([`Response::take_pending_json`]), not rendered here to be parsed there.
pub(super) async fn call_for_merge(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    request: &Request,
    caller: &Caller<'_>,
) -> Response {
    call_as(routing, route, target, request, caller, true).await
}

/// [`call`]; with `merge`, as [`call_for_merge`].
async fn call_as(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    request: &Request,
    caller: &Caller<'_>,
    merge: bool,
) -> Response {
    if target.id_prefix.is_empty() && target.target.is_local() {
        return send(routing, route, target, request, caller, None, merge).await;
    }
    let rewrite = rewrite(target, &request.base_url);
    let sent = match rewrite.to_target(request) {
        Ok(Some(sent)) => sent,
        Ok(None) if matches!(request.method, Method::Get | Method::Head) => {
            return failure(FhirError::NotFound(format!("`{}` is not known", request.path)));
        }
        Ok(None) => {
            return failure(FhirError::bad_request(format!(
                "`{}` names an id of no target of this route for this request",
                request.path
            )));
        }
        Err(e) => return failure(e),
    };
    send(routing, route, target, &sent, caller, Some(&rewrite), merge).await
}

/// Sends a request already in the target's terms, under the target's decisions; its answer
/// through `rewrite` to the client's terms (a remote's while its body is still a JSON value).
async fn send(
    routing: &Routing,
    route: &Route,
    target: &RouteTarget,
    request: &Request,
    caller: &Caller<'_>,
    rewrite: Option<&Rewrite>,
    merge: bool,
) -> Response {
    let remote = !target.target.is_local();
    let access = caller.access(&route.config.id, &target.target.id);
    send_on(routing, target, request, access, caller, rewrite, merge)
        .instrument(crate::telemetry::spans::engine(&target.target.id, remote))
        .await
}

/// [`send`] under `access`.
async fn send_on(
    routing: &Routing,
    target: &RouteTarget,
    request: &Request,
    access: Box<dyn Access + '_>,
    caller: &Caller<'_>,
    rewrite: Option<&Rewrite>,
    merge: bool,
) -> Response {
    match &target.target.backend {
        Backend::Local(_) => {
            let answer = match target.target.engine().await {
                Ok(engine) => engine.handle(request, access.as_ref()).await,
                Err(e) => {
                    tracing::error!(target = %target.target.id, error = %e, "target store unavailable");
                    return failure(FhirError::StoreUnavailable("this route's store is unavailable".into()));
                }
            };
            match rewrite {
                Some(rewrite) => rewrite.to_client(answer),
                None => answer,
            }
        }
        Backend::Remote(remote) if !remote.is_up() => {
            tracing::warn!(target = %target.target.id, "remote target down");
            failure(FhirError::StoreUnavailable("a server behind this route is down; retry later".into()))
        }
        Backend::Remote(remote) => {
            let upstream = remote.upstream(caller.token);
            let access = access.as_ref();
            if merge {
                routing.remote.handle_for_merge(&upstream, request, access, rewrite).await
            } else {
                routing.remote.handle_for_client(&upstream, request, access, rewrite).await
            }
        }
    }
}

/// An OperationOutcome response.
pub(super) fn failure(error: FhirError) -> Response {
    Response::error(&error, MediaType::FhirJson, false)
}

/// A JSON body as the answer to `request` (its media type negotiated, `_pretty` honoured).
pub(super) fn json_response(status: u16, value: &serde_json::Value, request: &Request) -> Response {
    let media = super::format::negotiate(request).unwrap_or(MediaType::FhirJson);
    let pretty = request.param("_pretty") == Some("true");
    let body = if pretty { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) };
    let json = if media.is_xml() { MediaType::FhirJson } else { media };
    Response::rendered(status, json.content_type(), body.unwrap_or_default()).in_media(media, pretty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(list: &[u16]) -> Vec<Response> {
        list.iter().map(|s| Response::empty(*s)).collect()
    }

    #[test]
    fn a_fanned_out_read_answers_with_the_first_target_that_has_it() {
        assert_eq!(pick(statuses(&[404, 200, 200])).status, 200);
        assert_eq!(pick(statuses(&[403, 404, 304])).status, 304, "found (not modified) wins over a denial");
        assert_eq!(pick(statuses(&[404, 503])).status, 503, "none found: the failure, not a 404");
        assert_eq!(pick(statuses(&[404, 410])).status, 410, "deleted somewhere says more than missing");
        assert_eq!(pick(statuses(&[404, 404])).status, 404);
        assert_eq!(pick(Vec::new()).status, 404);
        let first = pick(vec![Response::empty(200).with_header("X", "a"), Response::empty(200).with_header("X", "b")]);
        assert_eq!(first.header("X"), Some("a"), "several have it: route order");
    }
}

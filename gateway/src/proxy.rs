//! The pingora `ProxyHttp` implementation: the phases of a request through fhirgate.
//!
//! - `early_request_filter`: give the request its id (`X-Request-Id`, echoed or generated) and
//!   authenticate its bearer token (unless the path is public: `/health`, the local issuer's
//!   discovery documents, `/metadata` and `/metrics` when configured).
//! - `request_filter`: answer it: 401 when authentication failed; the probes (`GET /health`,
//!   `/health/live`, `/health/ready`: [`crate::probes`]); `GET /metrics`; or the route
//!   the request takes ([`crate::routing`]), whose targets (local engines, remote FHIR servers)
//!   answer under the Cedar policies ([`crate::policy::access`]), asked about every interaction
//!   and every resource touched. The response is written here and the proxy stops.
//!   A request on a type-level-only route (`crate::routing::stream`) is decided at type level
//!   only, and when the decision covers every resource it goes on to pingora's proxy phases:
//! - `upstream_peer`, `upstream_request_filter`, `request_body_filter`, `response_filter`,
//!   `fail_to_proxy`: stream it to the route's remote target (an address chosen among the
//!   healthy ones, its path, `Host` and credentials; the body size limit; `Location` and
//!   `Content-Location` on the route's base; transport failures as OperationOutcomes). Every
//!   other remote exchange is made from `request_filter`, through the decisions of the remote
//!   path (`engine::remote`).
//! - `logging`: one access log line and one audit event per request (the policy phase has
//!   already audited each authorization decision), and the request counted in the metrics.
//!
//! The same service, [`Serves::Metrics`], answers `/metrics` alone on `metrics.listen`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use fhirgate_engine::Error as FhirError;
use fhirgate_engine::MediaType;
use fhirgate_engine::access::{Access, Grant, Interaction, Target};
use fhirgate_engine::interaction::{Method, Response};
use fhirgate_policies::RequestContext;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, Session};
use pingora::proxy::{FailToProxy, ProxyHttp};
use tracing::Instrument;

use crate::auth::local::LocalIssuer;
use crate::auth::{Authenticator, Identity};
use crate::client_format::ClientFormat;
use crate::config::Config;
use crate::cors::Cors;
use crate::error::GatewayError;
use crate::exchange;
use crate::metrics::labels::RequestLabels;
use crate::policy::Policies;
use crate::policy::audit::AuditInfo;
use crate::routing::{Caller as RouteCaller, Routing};
use crate::smart::Discovery;
use crate::smart::proxy::SmartProxy;
use crate::telemetry::spans;
use crate::upstream::Streamed;

/// What a listener of the service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Everything (`server.listen`); `/metrics` too unless `metrics.listen` is set.
    Everything,
    /// `/metrics` only (`metrics.listen`).
    Metrics,
}

/// The FHIR gateway service.
pub struct FhirGateway {
    config: Arc<Config>,
    serves: Serves,
    /// Routes and their targets (local engines open on first use inside the service's runtime:
    /// pools belong to the runtime that made them).
    routing: Arc<Routing>,
    /// `None` when authentication is off (`auth.enabled = false`).
    security: Option<Arc<Security>>,
    cors: Cors,
    /// What `/.well-known/smart-configuration` and `rest.security` publish.
    discovery: Discovery,
}

/// Authentication and authorization, when on.
pub struct Security {
    pub auth: Authenticator,
    pub policies: Arc<Policies>,
    pub local: Option<LocalIssuer>,
    /// The SMART authorization proxy (`[smart.proxy]`), when on.
    pub smart: Option<SmartProxy>,
}

/// What authentication found out about a request.
#[derive(Default)]
pub enum Caller {
    /// Authentication is off, or the path is public.
    #[default]
    Anonymous,
    Known(Arc<Identity>),
    Rejected(GatewayError),
}

/// Per-request state shared by the phases.
pub struct RequestCtx {
    pub request_id: String,
    started: Instant,
    span: tracing::Span,
    status: u16,
    caller: Caller,
    subject: Option<String>,
    /// The client's address (`ip:port`), when known.
    client: Option<String>,
    /// What the request cost its store (Cosmos DB request units; 0 on the other stores).
    request_charge: f64,
    /// A request on a type-level-only route, allowed: where and how it is streamed.
    stream: Option<Stream>,
    /// What the metrics count the request as, once its route is known.
    counted: Option<Counted>,
    /// Whether the client speaks XML (its answers are converted at the front).
    format: ClientFormat,
}

/// A FHIR request's labels in the metrics (`crate::metrics::labels`).
#[derive(Clone, Copy)]
struct Counted {
    interaction: &'static str,
    resource_type: &'static str,
    /// The route's index in the routing table.
    route: usize,
}

impl Counted {
    fn of(method: &str, route: &crate::routing::Route, rest: &str) -> Self {
        let (interaction, resource_type) = crate::metrics::labels::classify(method, rest);
        Self { interaction, resource_type, route: route.index }
    }
}

/// A streamed request's way to its remote target, and the bases its answer's headers move between.
struct Stream {
    to: Streamed,
    client_base: String,
    /// Body bytes streamed so far (bounded by `server.max_body_bytes`).
    sent: usize,
}

impl FhirGateway {
    pub fn new(config: Arc<Config>, security: Option<Arc<Security>>, routing: Arc<Routing>, serves: Serves) -> Self {
        let cors = Cors::new(&config.cors);
        let discovery = Discovery::new(&config);
        Self { config, serves, routing, security, cors, discovery }
    }

    /// Whether this listener answers `GET /metrics`.
    fn serves_metrics(&self) -> bool {
        self.serves == Serves::Metrics || self.config.metrics.listen.is_none()
    }

    /// Paths answered without a token.
    fn is_public(&self, method: &str, path: &str) -> bool {
        let read = method == "GET" || method == "HEAD";
        match path {
            "health" | "health/live" | "health/ready" => true,
            "metrics" => self.config.metrics.public && self.serves_metrics(),
            ".well-known/openid-configuration" | ".well-known/jwks.json" => read,
            _ if crate::smart::is_discovery(&self.config, path) => read,
            _ if SmartProxy::is_public(path) => self.security.as_ref().is_some_and(|s| s.smart.is_some()),
            _ if self.routing.is_metadata(path) => read && self.config.auth.anonymous_metadata,
            _ => false,
        }
    }

    /// A request on a type-level-only route: how to stream it, or the answer refusing it (the
    /// body unread). `None` for every other request (and for one whose caller authentication
    /// rejected or that names no route: `answer` says so).
    async fn stream_plan(&self, session: &Session, ctx: &mut RequestCtx) -> Option<Result<Stream, Response>> {
        // Without a streamed route every request goes the decided way: no second route look-up
        // (`answer` makes the one it needs).
        if !self.routing.streams() {
            return None;
        }
        let path = session.req_header().uri.path().trim_matches('/');
        if matches!(path, "health" | "metrics")
            || self.serves == Serves::Metrics
            || path.starts_with("health/")
            || path.starts_with(".well-known/")
            || path.starts_with("auth/")
            || crate::smart::is_discovery(&self.config, path)
            || Cors::is_preflight(session.req_header())
        {
            return None;
        }
        let identity = match &ctx.caller {
            Caller::Known(identity) => Some(identity.clone()),
            Caller::Anonymous if self.security.is_none() => None,
            _ => return None,
        };
        let has_claim = |name: &str, value: &str| identity.as_ref().is_some_and(|i| i.has_claim(name, value));
        let (route, rest) = self.routing.find(path, &has_claim)?;
        // A stream passes the remote's JSON unread: XML goes the decided way, converted at the front.
        let xml_body = fhirgate_engine::is_xml_content_type(
            session.req_header().headers.get("content-type").and_then(|v| v.to_str().ok()),
        );
        if !route.config.type_level_only || ctx.format.is_xml() || xml_body {
            return None;
        }
        ctx.counted = Some(Counted::of(session.req_header().method.as_str(), route, &rest));
        let limit = self.config.server.max_body_bytes;
        let length = session.req_header().headers.get("content-length").and_then(|v| v.to_str().ok());
        if length.and_then(|l| l.trim().parse::<u64>().ok()).is_some_and(|l| l > limit as u64) {
            return Some(Err(failure(GatewayError::BodyTooLarge { limit }.into())));
        }
        let mut request = exchange::request_head(session, &self.config);
        request.base_url = route.client_base(&request.base_url);
        request.path = rest;
        spans::interaction(&ctx.span, &request);
        let audit = audit_info(session, ctx);
        let token = bearer_token(session);
        let caller = RouteCaller {
            identity: identity.as_deref(),
            policies: self.security.as_ref().map(|s| s.policies.as_ref()),
            context: request_context(session),
            audit: &audit,
            token: token.as_deref(),
        };
        Some(match self.routing.stream(route, &request, &caller).await {
            Ok(to) => Ok(Stream { to, client_base: request.base_url, sent: 0 }),
            Err(e) => Err(failure(e)),
        })
    }

    async fn answer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Response {
        let path = session.req_header().uri.path().trim_matches('/').to_string();
        if Cors::is_preflight(session.req_header()) {
            return self.cors.preflight(session.req_header());
        }
        if self.serves == Serves::Metrics && path != "metrics" {
            return failure(FhirError::NotFound("this listener (`metrics.listen`) serves `/metrics` only".into()));
        }
        match path.as_str() {
            "health" => return crate::probes::health(&self.routing).await,
            "health/live" => return crate::probes::live(),
            "health/ready" => {
                let policies = self.security.as_ref().map(|s| s.policies.as_ref());
                return crate::probes::ready(&self.routing, policies).await;
            }
            _ => {}
        }
        if crate::smart::is_discovery(&self.config, &path) && self.security.is_some() {
            return Response::json_rendered(self.discovery.document().clone());
        }
        if let Some(local) = self.security.as_ref().and_then(|s| s.local.as_ref()) {
            match path.as_str() {
                ".well-known/openid-configuration" => return Response::json_rendered(local.discovery_json()),
                ".well-known/jwks.json" => return Response::json_rendered(local.jwks_json()),
                _ => {}
            }
        }
        let method = session.req_header().method.as_str().to_string();
        let identity = match std::mem::take(&mut ctx.caller) {
            // Defence in depth: only public paths may go on without an identity.
            Caller::Anonymous if self.security.is_some() && !self.is_public(&method, &path) => {
                session.set_keepalive(None);
                return GatewayError::MissingToken.response();
            }
            Caller::Anonymous => None,
            Caller::Known(identity) => Some(identity),
            Caller::Rejected(e) => {
                // The body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                return e.response();
            }
        };
        let context = request_context(session);
        let audit = audit_info(session, ctx);
        if path == "metrics" {
            if !self.serves_metrics() {
                return failure(FhirError::NotFound("`/metrics` is served on `metrics.listen`".into()));
            }
            return self.metrics(identity.as_deref(), context, &audit);
        }
        let mut request = match exchange::read_request(session, &self.config).await {
            Ok(r) => r,
            Err(e) => {
                // The rest of the body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                return failure(e.into());
            }
        };
        if let Err(e) = ctx.format.json_request(&mut request) {
            return failure(e);
        }
        if let Some((security, smart)) = self.security.as_ref().and_then(|s| s.smart.as_ref().map(|p| (s, p))) {
            let authorization = session.req_header().headers.get("authorization").and_then(|v| v.to_str().ok());
            // The store the steps that use a one-time value claim it in.
            let one_time = matches!(
                (&request.method, path.as_str()),
                (Method::Get, "auth/authorize" | "auth/callback") | (Method::Post, "auth/token" | "auth/pick")
            );
            let store = if one_time {
                match self.routing.claims_store().await {
                    Ok(store) => store,
                    Err(e) => return failure(e),
                }
            } else {
                None
            };
            match (&request.method, path.as_str()) {
                (Method::Get, "auth/authorize") => return smart.authorize(&request, store.as_ref()).await,
                (Method::Get, "auth/callback") => {
                    return smart.callback(&request, &security.auth, store.as_ref()).await;
                }
                (Method::Post, "auth/token") => return smart.token(&request, authorization, store.as_ref()).await,
                (Method::Post, "auth/launch") => return smart.launch(identity.as_deref(), &request),
                (Method::Get, "auth/pick") => return smart.pick_form(&request),
                (Method::Get, "auth/.well-known/openid-configuration") => return smart.openid_configuration(),
                (Method::Get, "auth/jwks.json") => return smart.jwks(),
                (Method::Post, "auth/pick") => {
                    return match smart.take_pick(&request, &security.auth, store.as_ref()).await {
                        Ok((picking, patient)) => {
                            let readable = self.may_read_patient(session, &audit, picking.identity(), &patient).await;
                            smart.finish_pick(&picking, patient, readable)
                        }
                        Err(refusal) => *refusal,
                    };
                }
                _ => {}
            }
        }
        let has_claim = |name: &str, value: &str| identity.as_ref().is_some_and(|i| i.has_claim(name, value));
        let Some((route, rest)) = self.routing.find(&request.path, &has_claim) else {
            return failure(FhirError::NotFound(format!(
                "no route serves `/{}`: check the URL's prefix and resource type",
                request.path
            )));
        };
        ctx.counted = Some(Counted::of(&method, route, &rest));
        request.base_url = route.client_base(&request.base_url);
        request.path = rest;
        spans::interaction(&ctx.span, &request);
        let token = bearer_token(session);
        let caller = RouteCaller {
            identity: identity.as_deref(),
            policies: self.security.as_ref().map(|s| s.policies.as_ref()),
            context,
            audit: &audit,
            token: token.as_deref(),
        };
        let seconds = self.config.server.request_timeout_seconds;
        match tokio::time::timeout(Duration::from_secs(seconds), self.routing.answer(route, request, &caller)).await {
            Ok(response) => response,
            Err(_) => failure(GatewayError::Timeout { seconds }.into()),
        }
    }

    /// Whether `identity` may read `Patient/<id>`: the read answered 200 through the route it
    /// takes, under that identity's decisions (the SMART proxy's patient picker).
    async fn may_read_patient(&self, session: &Session, audit: &AuditInfo, identity: &Identity, id: &str) -> bool {
        let path = format!("Patient/{id}");
        let has_claim = |name: &str, value: &str| identity.has_claim(name, value);
        let Some((route, rest)) = self.routing.find(&path, &has_claim) else { return false };
        let mut request = exchange::request_head(session, &self.config);
        request.method = Method::Get;
        request.query = Vec::new();
        request.headers = Default::default();
        request.base_url = route.client_base(&request.base_url);
        request.path = rest;
        let caller = RouteCaller {
            identity: Some(identity),
            policies: self.security.as_ref().map(|s| s.policies.as_ref()),
            context: RequestContext { method: "GET".into(), ..request_context(session) },
            audit,
            token: None,
        };
        self.routing.answer(route, request, &caller).await.status == 200
    }

    /// `GET /metrics`: public when `metrics.public`, otherwise for a principal the policies
    /// allow the action `operation` with `context.operation == "metrics"` on the resource `/`.
    fn metrics(&self, identity: Option<&Identity>, context: RequestContext, audit: &AuditInfo) -> Response {
        let allowed = match (&self.security, identity) {
            (None, _) => true,
            _ if self.config.metrics.public => true,
            (Some(security), Some(identity)) => {
                let target = Target { operation: "metrics".into(), ..Target::new(Interaction::Operation, "", "") };
                let access = security.policies.access(&identity.principal, context, audit);
                !matches!(access.decide(&target), Grant::Denied(_))
            }
            (Some(_), None) => false,
        };
        if allowed {
            Response::rendered(
                200,
                crate::metrics::CONTENT_TYPE,
                crate::metrics::metrics().render(&self.routing).into_bytes(),
            )
        } else {
            failure(FhirError::Forbidden("`metrics` is not allowed to this principal".into()))
        }
    }
}

fn failure(error: FhirError) -> Response {
    Response::error(&error, MediaType::FhirJson, false)
}

/// The request's bearer token, for targets that pass it through.
fn bearer_token(session: &Session) -> Option<String> {
    session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// What the audit events of a request say about the exchange.
fn audit_info(session: &Session, ctx: &RequestCtx) -> AuditInfo {
    let header = session.req_header();
    let get = |name: &str| header.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    AuditInfo {
        request_id: ctx.request_id.clone(),
        break_glass: get("x-break-glass"),
        query: header.uri.query().map(str::to_string),
        if_none_exist: get("if-none-exist"),
        client_addr: ctx.client.clone(),
    }
}

/// The request's circumstances for the policies.
fn request_context(session: &Session) -> RequestContext {
    let header = session.req_header();
    let get = |name: &str| header.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    RequestContext {
        epoch_seconds: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        client_ip: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default(),
        purpose_of_use: get("x-purpose-of-use").unwrap_or_default(),
        break_glass: get("x-break-glass").is_some(),
        method: header.method.as_str().to_string(),
        // Set per target and route by the router.
        store: String::new(),
        target: String::new(),
        route: String::new(),
    }
}

/// A JSON response rendered as `application/json`.
trait JsonRendered {
    fn json_rendered(value: serde_json::Value) -> Response;
}

impl JsonRendered for Response {
    fn json_rendered(value: serde_json::Value) -> Response {
        Response::rendered(200, "application/json", value.to_string().into_bytes())
    }
}

#[async_trait]
impl ProxyHttp for FhirGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: String::new(),
            started: Instant::now(),
            span: tracing::Span::none(),
            status: 0,
            caller: Caller::Anonymous,
            subject: None,
            client: None,
            request_charge: 0.0,
            stream: None,
            counted: None,
            format: ClientFormat::default(),
        }
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let header = session.req_header();
        ctx.request_id = header
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        // Formatted once: the span, the audit events and the access log all name it.
        ctx.client = session.client_addr().map(ToString::to_string);
        ctx.span = spans::request(header, &ctx.request_id, ctx.client.as_deref());
        let path = header.uri.path().trim_matches('/');
        if let Some(security) = &self.security {
            // A preflight carries no credentials: answered without authentication.
            if !self.is_public(header.method.as_str(), path) && !Cors::is_preflight(header) {
                let authorization = header.headers.get("authorization").map(|v| v.to_str().unwrap_or("invalid"));
                let authorization = authorization.map(str::to_string);
                let span = spans::authenticate(&ctx.span);
                let verified = security.auth.authenticate(authorization.as_deref()).instrument(span.clone()).await;
                spans::authenticated(&span, verified.is_ok());
                ctx.caller = match verified {
                    Ok(identity) => {
                        spans::principal(&ctx.span, &identity.principal.subject);
                        ctx.subject = Some(identity.principal.subject.clone());
                        Caller::Known(identity)
                    }
                    Err(e) => {
                        let _guard = ctx.span.enter();
                        tracing::info!(error = %e, "authentication failed");
                        Caller::Rejected(e)
                    }
                };
            }
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<bool> {
        let span = ctx.span.clone();
        ctx.format = ClientFormat::of(session.req_header());
        match self.stream_plan(session, ctx).instrument(span.clone()).await {
            Some(Ok(stream)) => {
                ctx.stream = Some(stream);
                return Ok(false);
            }
            Some(Err(mut refusal)) => {
                for (name, value) in self.cors.response_headers(session.req_header()) {
                    refusal = refusal.with_header(name, value);
                }
                // The body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                ctx.status = refusal.status;
                let refusal = ctx.format.answer(refusal);
                exchange::write_response(session, refusal, &ctx.request_id).instrument(span).await?;
                return Ok(true);
            }
            None => {}
        }
        let answer = self.answer(session, ctx).instrument(span.clone());
        let (mut response, charge) = fhirgate_engine::storage::cost::metered(answer).await;
        if !Cors::is_preflight(session.req_header()) {
            for (name, value) in self.cors.response_headers(session.req_header()) {
                response = response.with_header(name, value);
            }
        }
        let response = ctx.format.answer(response);
        ctx.status = response.status;
        ctx.request_charge = charge;
        exchange::write_response(session, response, &ctx.request_id).instrument(span).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<Box<HttpPeer>> {
        // Only streamed requests get here; every other one was answered in `request_filter`.
        match &ctx.stream {
            Some(stream) => Ok(stream.to.peer.clone()),
            None => Err(pingora::Error::new(pingora::ErrorType::InternalError)),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(stream) = &ctx.stream else { return Ok(()) };
        let uri = stream.to.uri.parse().map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "the streamed request's target", e)
        })?;
        upstream.set_uri(uri);
        upstream.insert_header("Host", stream.to.host.as_str())?;
        // The client's credentials never go on; the target's own, as configured, do.
        upstream.remove_header("Authorization");
        upstream.remove_header("Cookie");
        if let Some(authorization) = &stream.to.authorization {
            upstream.insert_header("Authorization", authorization.as_str())?;
        }
        upstream.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        crate::telemetry::propagation::inject(&ctx.span, upstream);
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (Some(stream), Some(chunk)) = (&mut ctx.stream, body) else { return Ok(()) };
        stream.sent += chunk.len();
        let limit = self.config.server.max_body_bytes;
        if stream.sent > limit {
            return pingora::Error::e_explain(
                pingora::ErrorType::HTTPStatus(413),
                format!("request body larger than the limit of {limit} bytes"),
            );
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(stream) = &ctx.stream else { return Ok(()) };
        // Only this server's CORS policy applies, never the remote's.
        let theirs: Vec<String> = response
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("access-control-"))
            .collect();
        for name in theirs {
            response.remove_header(&name);
        }
        for (name, value) in self.cors.response_headers(session.req_header()) {
            if name == "Vary" {
                response.append_header(name, value)?;
            } else {
                response.insert_header(name, value)?;
            }
        }
        ctx.status = response.status.as_u16();
        for name in ["Location", "Content-Location"] {
            let moved = response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix(stream.to.base_url.as_str()))
                .map(|rest| format!("{}{rest}", stream.client_base));
            if let Some(moved) = moved {
                response.insert_header(name, moved)?;
            }
        }
        response.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &pingora::Error, ctx: &mut RequestCtx) -> FailToProxy {
        use pingora::ErrorType as E;
        let error = match e.etype() {
            E::HTTPStatus(413) => GatewayError::BodyTooLarge { limit: self.config.server.max_body_bytes }.into(),
            E::ConnectTimedout | E::ReadTimedout | E::WriteTimedout => {
                FhirError::GatewayTimeout("the remote FHIR server did not answer in time".into())
            }
            E::ConnectRefused | E::ConnectNoRoute | E::ConnectError => {
                FhirError::StoreUnavailable("the remote FHIR server cannot be reached".into())
            }
            _ if e.esource() == &pingora::ErrorSource::Downstream => {
                FhirError::bad_request("the request could not be read from the client")
            }
            _ => FhirError::BadGateway("the remote FHIR server's answer is not usable".into()),
        };
        {
            let _guard = ctx.span.enter();
            tracing::warn!(error = %e, "streamed request failed");
        }
        let response = failure(error);
        let status = response.status;
        if session.response_written().is_none() {
            ctx.status = status;
            if let Err(e) = exchange::write_response(session, response, &ctx.request_id).await {
                tracing::debug!(error = %e, "the failure could not be sent to the client");
            }
        }
        FailToProxy { error_code: status, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, error: Option<&pingora::Error>, ctx: &mut RequestCtx) {
        let header = session.req_header();
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        spans::finished(&ctx.span, ctx.status);
        let _guard = ctx.span.enter();
        // Cosmos DB: the request units the request cost (the field is left out on other stores).
        let request_charge = (ctx.request_charge > 0.0).then_some(ctx.request_charge);
        tracing::info!(
            status = ctx.status,
            elapsed_ms,
            request_charge,
            error = error.map(|e| e.to_string()),
            "request done"
        );
        // The audit record is one JSON object, whatever the log format, so it can be shipped as is.
        crate::policy::audit::record_request(&crate::policy::audit::RequestRecord {
            request_id: &ctx.request_id,
            method: header.method.as_str(),
            path: header.uri.path(),
            status: ctx.status,
            subject: ctx.subject.as_deref(),
            client: ctx.client.as_deref(),
            elapsed_ms,
        });
        let path = header.uri.path().trim_matches('/');
        let labels = match ctx.counted {
            Some(c) => RequestLabels {
                interaction: c.interaction,
                resource_type: c.resource_type,
                route: self.routing.route_id(c.route),
            },
            None => RequestLabels::outside_fhir(path),
        };
        crate::metrics::metrics().request(&labels, ctx.status, ctx.started.elapsed());
    }
}

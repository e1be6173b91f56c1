//! The pingora `ProxyHttp` implementation: the phases of a request through fhirgate.
//!
//! - `early_request_filter`: give the request its id (`X-Request-Id`, echoed or generated).
//! - `request_filter`: answer it: `GET /health`, or the FHIR engine (identity and policy join
//!   this phase with their issue); the response is written here and the proxy stops.
//! - `upstream_peer`: not reached yet (remote FHIR servers join with their issue).
//! - `logging`: one access log line and one audit event per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fhirgate_engine::format::MediaType;
use fhirgate_engine::interaction::Response;
use fhirgate_engine::{Engine, EngineConfig, Error as FhirError};
use pingora::prelude::{HttpPeer, Session};
use pingora::proxy::ProxyHttp;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::config::Config;
use crate::error::GatewayError;
use crate::exchange;

/// The FHIR gateway service.
pub struct FhirGateway {
    config: Arc<Config>,
    /// Opened on first use inside the service's runtime (pools belong to the runtime that made them).
    engine: OnceCell<Arc<Engine>>,
}

/// Per-request state shared by the phases.
pub struct RequestCtx {
    pub request_id: String,
    started: Instant,
    span: tracing::Span,
    status: u16,
}

impl FhirGateway {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config, engine: OnceCell::new() }
    }

    async fn engine(&self) -> Result<&Arc<Engine>, GatewayError> {
        self.engine
            .get_or_try_init(|| async {
                let store = crate::stores::open(&self.config.store_url(), &self.config.store).await?;
                let fhir = &self.config.fhir;
                let config = EngineConfig {
                    update_create: fhir.update_create,
                    version_unchanged_updates: fhir.version_unchanged_updates,
                    default_page_size: fhir.default_page_size,
                    max_page_size: fhir.max_page_size,
                    max_bundle_entries: fhir.max_bundle_entries,
                    max_conditional_delete: fhir.max_conditional_delete,
                    search_max_results: fhir.search_max_results,
                    search_timeout: Duration::from_secs(fhir.search_timeout_seconds),
                    search_page_ttl: Duration::from_secs(fhir.search_page_ttl_seconds),
                    ..EngineConfig::default()
                };
                Ok(Arc::new(Engine::new(config, store)))
            })
            .await
    }

    async fn answer(&self, session: &mut Session) -> Response {
        let path = session.req_header().uri.path().trim_start_matches('/').to_string();
        if path == "health" {
            return self.health().await;
        }
        let request = match exchange::read_request(session, &self.config).await {
            Ok(r) => r,
            Err(e) => {
                // The rest of the body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                return failure(e.into());
            }
        };
        let engine = match self.engine().await {
            Ok(e) => e,
            Err(e) => return failure(e.into()),
        };
        let seconds = self.config.server.request_timeout_seconds;
        match tokio::time::timeout(Duration::from_secs(seconds), engine.handle(&request)).await {
            Ok(response) => response,
            Err(_) => failure(GatewayError::Timeout { seconds }.into()),
        }
    }

    async fn health(&self) -> Response {
        let checked = match self.engine().await {
            Ok(engine) => engine.store().health().await.map_err(FhirError::from),
            Err(e) => Err(e.into()),
        };
        match checked {
            Ok(()) => Response::rendered(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            Err(e) => failure(e),
        }
    }
}

fn failure(error: FhirError) -> Response {
    Response::error(&error, MediaType::FhirJson, false)
}

#[async_trait]
impl ProxyHttp for FhirGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx { request_id: String::new(), started: Instant::now(), span: tracing::Span::none(), status: 0 }
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<()> {
        let header = session.req_header();
        ctx.request_id = header
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        ctx.span = tracing::info_span!(
            "request",
            request_id = %ctx.request_id,
            method = %header.method,
            path = %header.uri.path(),
        );
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<bool> {
        let span = ctx.span.clone();
        let response = self.answer(session).instrument(span.clone()).await;
        ctx.status = response.status;
        exchange::write_response(session, response, &ctx.request_id).instrument(span).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut RequestCtx) -> pingora::Result<Box<HttpPeer>> {
        // Every request is answered in `request_filter`; proxying joins with remote stores.
        Err(pingora::Error::new(pingora::ErrorType::InternalError))
    }

    async fn logging(&self, session: &mut Session, error: Option<&pingora::Error>, ctx: &mut RequestCtx) {
        let header = session.req_header();
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let _guard = ctx.span.enter();
        tracing::info!(status = ctx.status, elapsed_ms, error = error.map(|e| e.to_string()), "request done");
        // The audit record is one JSON object, whatever the log format, so it can be shipped as is.
        let record = serde_json::json!({
            "request_id": ctx.request_id,
            "method": header.method.as_str(),
            "path": header.uri.path(),
            "status": ctx.status,
            "client": session.client_addr().map(|a| a.to_string()),
            "elapsed_ms": elapsed_ms,
        });
        tracing::info!(target: "audit", record = %record, "fhir request");
    }
}

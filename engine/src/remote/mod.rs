//! Interactions on a remote FHIR server, under the same decisions as a local store.
//!
//! A gateway route may send requests to another FHIR R4 server (an Azure Health Data Services
//! workspace, a HAPI server, another fhirgate). [`Remote::handle`] is that path's enforcement
//! point: it parses the request into the interaction it performs ([`crate::access::Target`]),
//! asks the request's [`Access`] for the type-level decision before anything is sent, sends what
//! the decision allows through an [`Upstream`] (the gateway's HTTP client), and asks for the
//! data-level decision on every resource that comes back (a read, every search entry, included
//! resources, history entries, batch results) and on every resource sent or replaced, with the
//! same guarantees as a local store.
//!
//! With [`crate::access::Grant::AnyData`] a request is forwarded as the client wrote it (the
//! answer's JSON shape still checked). With a per-resource grant the remote path does what the
//! engine does on a local store, with the remote's answers as the store: reads and every entry
//! decided before the client sees them, writes decided on the current version fetched first and
//! sent with `If-Match` of that version, conditional criteria run as a search whose matches are
//! decided one by one. What cannot be enforced on a remote (a transaction writing under
//! per-resource decisions) is refused before anything is sent.

mod bundle;
mod conditional;
mod consents;
mod filter;
mod operation;
mod paging;
mod read;
mod search;
mod send;
mod write;

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

use crate::access::{Access, Interaction};
use crate::error::{Error, Result};
use crate::federation::Rewrite;
use crate::format::MediaType;
use crate::interaction::{EngineConfig, Gate, Request, Response, Route};
use send::{Flow, Halt};

/// One remote FHIR server, as the gateway reaches it.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Sends `request` (its path and query relative to the remote's FHIR base) and returns the
    /// answer as received: status, headers and the body bytes in [`Response::body`]. An HTTP
    /// error status is an answer, not an error. Errors are transport failures only:
    /// [`Error::BadGateway`] (garbage, early close), [`Error::GatewayTimeout`] (no answer in
    /// time), [`Error::StoreUnavailable`] (the target is down: 503 with `Retry-After`).
    async fn send(&self, request: &Request) -> Result<Response>;

    /// Whether requests go out with the gateway's own credentials (or none), never the
    /// caller's token: then the remote answers the gateway whatever the caller may see, and the
    /// Consents that decisions read are read there ([`consents`]). The default: no.
    fn own_credentials(&self) -> bool {
        false
    }
}

/// The FHIR interactions on remote servers.
pub struct Remote {
    config: EngineConfig,
}

/// One request's path to the remote: the settings, the upstream and the client's decisions.
struct Call<'a> {
    config: &'a EngineConfig,
    upstream: &'a dyn Upstream,
    access: &'a dyn Access,
}

impl Remote {
    pub fn new(config: EngineConfig) -> Self {
        Self { config }
    }

    /// Answers `request` with `upstream`, deciding with `access` before sending and on every
    /// resource sent, replaced or returned.
    pub async fn handle(&self, upstream: &dyn Upstream, request: &Request, access: &dyn Access) -> Response {
        self.handle_for_client(upstream, request, access, None).await
    }

    /// [`Self::handle`], the answer shown to the client through `rewrite`
    /// ([`Rewrite::to_client`]): a JSON body is rewritten as the value it still is before it is
    /// rendered, so a remote's answer is parsed once and rendered once.
    pub async fn handle_for_client(
        &self,
        upstream: &dyn Upstream,
        request: &Request,
        access: &dyn Access,
        rewrite: Option<&Rewrite>,
    ) -> Response {
        self.answer(upstream, request, access, rewrite, false).await
    }

    /// [`Self::handle_for_client`] for an answer that a merge reads as a value (a page of a
    /// federated search or history): a 200 answer with a JSON body is left unrendered, to be
    /// taken with [`Response::take_pending_json`]; any other answer is rendered as for the
    /// client.
    pub async fn handle_for_merge(
        &self,
        upstream: &dyn Upstream,
        request: &Request,
        access: &dyn Access,
        rewrite: Option<&Rewrite>,
    ) -> Response {
        self.answer(upstream, request, access, rewrite, true).await
    }

    /// The answer for the client; with `keep_value` a 200 JSON body is not rendered.
    async fn answer(
        &self,
        upstream: &dyn Upstream,
        request: &Request,
        access: &dyn Access,
        rewrite: Option<&Rewrite>,
        keep_value: bool,
    ) -> Response {
        let media = match crate::format::negotiate(request.param("_format"), request.headers.accept.as_deref()) {
            Ok(m) => m,
            Err(e) => return Response::error(&e, MediaType::FhirJson, false),
        };
        let pretty = request.pretty();
        // The remote is sent JSON and answers JSON; XML is the client's side only.
        let converted = match crate::format::xml_body_as_json(request) {
            Ok(converted) => converted,
            Err(e) => return Response::error(&e, media, pretty),
        };
        let request = converted.as_ref().unwrap_or(request);
        let call = Call { config: &self.config, upstream, access };
        let mut response = match call.dispatch(request).await {
            Ok(response) => response,
            Err(Halt::Upstream(response)) => *response,
            Err(Halt::Error(e)) => {
                if e.status() >= 500 {
                    tracing::warn!(error = %e, "remote request failed");
                }
                Response::error(&e, media, pretty)
            }
        };
        let Some(rewrite) = rewrite else {
            response.finish(media, pretty);
            return response;
        };
        // Rewritten as JSON (ids and URLs are found in JSON only), then shown as asked.
        let rewritten = rewrite.pending_to_client(&mut response);
        if keep_value && rewritten && response.status == 200 && response.pending_json_mut().is_some() {
            return response;
        }
        response.finish(MediaType::FhirJson, pretty);
        let response = if rewritten { response } else { rewrite.to_client(response) };
        response.in_media(media, pretty)
    }
}

impl Call<'_> {
    /// Runs one request (or batch entry): the interaction it performs, if the access allows it.
    fn dispatch<'s>(&'s self, request: &'s Request) -> Pin<Box<dyn Future<Output = Flow<Response>> + Send + 's>> {
        Box::pin(async move {
            use Interaction as I;
            let route = Route::parse(&request.path)?;
            let target = crate::access::Target::of_route(request, &route)?;
            let gate = Gate::open(self.access, target)?;
            match (gate.target().interaction, route) {
                (I::Capabilities, _) => operation::capabilities(self, request).await,
                (I::Read | I::Vread, _) => read::handle(self, &gate, request).await,
                (I::SearchType | I::SearchSystem | I::SearchCompartment, route) => {
                    search::handle(self, &gate, request, &route).await
                }
                (I::HistoryInstance | I::HistoryType | I::HistorySystem, _) => {
                    search::history(self, &gate, request).await
                }
                (I::Create, Route::Type { resource_type }) => write::create(self, &gate, request, &resource_type).await,
                (I::Update, Route::Instance { resource_type, id }) => {
                    write::update(self, &gate, request, &resource_type, &id).await
                }
                (I::Patch, Route::Instance { resource_type, id }) => {
                    write::patch(self, &gate, request, &resource_type, &id).await
                }
                (I::Delete, Route::Instance { resource_type, id }) => {
                    write::delete(self, &gate, request, &resource_type, &id).await
                }
                (I::Update | I::Patch | I::Delete, Route::Type { resource_type }) => {
                    conditional::handle(self, &gate, request, &resource_type).await
                }
                (I::Batch, _) => bundle::batch(self, request).await,
                (I::Transaction, _) => bundle::transaction(self, request).await,
                // A remote's job would run under the gateway's own credentials: files no
                // data-level decision can read (export), resources no decision of this gateway
                // writes (import). Bulk jobs run on local targets only.
                (I::Operation, _) if ["export", "import"].iter().any(|op| gate.target().operation.starts_with(op)) => {
                    Err(Error::NotSupported(
                        "bulk `$export` and `$import` run on this server's own stores, not through a remote target"
                            .into(),
                    )
                    .into())
                }
                (I::Operation, _) => operation::handle(self, &gate, request).await,
                (_, route) => Err(route.unsupported(&request.method, &request.path).into()),
            }
        })
    }
}

/// The error of a remote answer that is not what FHIR promises for the interaction.
fn bad_gateway(what: impl std::fmt::Display) -> Halt {
    Halt::Error(Error::BadGateway(format!("the remote server's answer is not usable: {what}")))
}

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

use async_trait::async_trait;

use crate::access::Access;
use crate::error::{Error, Result};
use crate::interaction::{EngineConfig, Request, Response};

/// One remote FHIR server, as the gateway reaches it.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Sends `request` (its path and query relative to the remote's FHIR base) and returns the
    /// answer as received: status, headers and the body bytes in [`Response::body`]. An HTTP
    /// error status is an answer, not an error. Errors are transport failures only:
    /// [`Error::BadGateway`] (garbage, early close), [`Error::GatewayTimeout`] (no answer in
    /// time), [`Error::StoreUnavailable`] (the target is down: 503 with `Retry-After`).
    async fn send(&self, request: &Request) -> Result<Response>;
}

/// The FHIR interactions on remote servers.
pub struct Remote {
    config: EngineConfig,
}

impl Remote {
    pub fn new(config: EngineConfig) -> Self {
        Self { config }
    }

    /// Answers `request` with `upstream`, deciding with `access` before sending and on every
    /// resource sent, replaced or returned.
    pub async fn handle(&self, upstream: &dyn Upstream, request: &Request, access: &dyn Access) -> Response {
        let _ = (&self.config, upstream, request, access);
        Response::error(
            &Error::NotImplemented("remote targets are not built yet".into()),
            crate::format::MediaType::FhirJson,
            false,
        )
    }
}

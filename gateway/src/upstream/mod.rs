//! Remote FHIR servers (`[[targets]]` with a `base_url`), reached over pingora's HTTP/1.1
//! client (connections pooled in [`pool`]): addresses balanced with active health checks,
//! timeouts, retries of idempotent requests, TLS with certificate verification, and the
//! target's credentials. Implements the engine's [`Upstream`], so every remote exchange goes
//! through `engine::remote`'s decisions.
//!
//! Health checks run lazily: the first request through a target starts a task on the current
//! (service) runtime that checks every address each `health_interval_seconds`, and one that
//! resolves the addresses again each `dns_refresh_seconds` ([`resolve`]); they stop when the
//! target is dropped. When no address can be connected to, the addresses are resolved again
//! (rate-limited) and, if they changed, the request is tried once more on the new ones.

mod address;
mod anchors;
mod client;
mod credentials;
mod pool;
mod resolve;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::interaction::{Request, Response};
use fhirgate_engine::remote::Upstream;
use fhirgate_engine::{Error as FhirError, Result as FhirResult};
use pingora::connectors::http::Connector;
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, LoadBalancer};
use pingora::upstreams::peer::HttpPeer;

use crate::config::TargetConfig;
use crate::error::GatewayError;
use crate::telemetry::spans;
use address::{BaseUrl, config_error};
use client::{Exchange, Failure};
pub use credentials::AzureToken;
use credentials::Credentials;
use tracing::Instrument as _;

/// One remote target.
pub struct RemoteTarget {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    base_url: String,
    base: BaseUrl,
    host_header: String,
    /// Connections to the addresses, idle ones kept for reuse.
    pool: pool::Pool,
    balancer: LoadBalancer<RoundRobin>,
    credentials: Credentials,
    connect_timeout: Duration,
    read_timeout: Duration,
    total_timeout: Duration,
    retries: u32,
    tls_verify: bool,
    max_response_bytes: usize,
    health_interval: Duration,
    dns_refresh: Duration,
    refreshes: resolve::Refreshes,
    health_started: AtomicBool,
}

impl RemoteTarget {
    /// Checks the target's settings (a precise error naming the target otherwise). Host names
    /// in `addresses` (or `base_url`) are resolved here (a name that does not resolve stops the
    /// start), and again while serving ([`resolve`]).
    pub fn new(config: &TargetConfig) -> Result<Self, GatewayError> {
        Self::with_resolver(config, resolve::system())
    }

    /// [`Self::new`] with the resolver used while serving.
    fn with_resolver(config: &TargetConfig, resolver: resolve::Resolver) -> Result<Self, GatewayError> {
        let id = &config.id;
        let base_url = config
            .base_url
            .clone()
            .ok_or_else(|| GatewayError::Config(format!("target `{id}`: `base_url` is not set")))?;
        let base = BaseUrl::parse(&base_url).map_err(|m| config_error(id, m))?;
        let addresses =
            if config.addresses.is_empty() { vec![base.default_address()] } else { config.addresses.clone() };
        // Kept until both connectors (requests, health checks) have read it.
        let anchors = anchors::Anchors::of(config)?;
        let options = || connector_options(config, anchors.as_ref());
        let balancer = balancer(config, &base, &addresses, resolver, options())?;
        let credentials = Credentials::new(config)?;
        if base.tls && !config.tls_verify {
            tracing::warn!(target_id = %id, "TLS certificate verification is off for this remote target");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                id: id.clone(),
                base_url: base_url.trim_end_matches('/').to_owned(),
                host_header: base.host_header(),
                base,
                pool: pool::Pool::new(TransportConnector::new(Some(options())), config.pool_size),
                balancer,
                credentials,
                connect_timeout: Duration::from_millis(config.connect_timeout_ms.max(1)),
                read_timeout: Duration::from_millis(config.read_timeout_ms.max(1)),
                total_timeout: Duration::from_millis(config.total_timeout_ms.max(1)),
                retries: config.retries,
                tls_verify: config.tls_verify,
                max_response_bytes: config.max_response_bytes,
                health_interval: Duration::from_secs(config.health_interval_seconds),
                dns_refresh: Duration::from_secs(config.dns_refresh_seconds),
                refreshes: resolve::Refreshes::default(),
                health_started: AtomicBool::new(false),
            }),
        })
    }

    /// The target's base URL, as it writes it in its links.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Whether at least one address is healthy.
    pub fn is_up(&self) -> bool {
        let backends = self.inner.balancer.backends();
        backends.get_backend().iter().any(|b| backends.ready(b))
    }

    /// Runs one round of health checks on every address now (tests; the server runs them
    /// periodically).
    #[cfg(test)]
    pub async fn check_health(&self) {
        self.inner.balancer.backends().run_health_check(true).await;
    }

    /// What a streamed request (a `type_level_only` route, proxied by pingora's own phases)
    /// needs: an address chosen among the healthy ones, the request target (base path, path and
    /// query), the `Host` header and the target's credentials. `None` when no address is healthy.
    pub async fn stream(&self, request: &Request, caller_token: Option<&str>) -> FhirResult<Streamed> {
        self.start_health_checks();
        let inner = &self.inner;
        let authorization = inner.credentials.authorization(&inner.id, caller_token).await?;
        let exchange = RemoteExchange { target: self, caller_token };
        let peer = inner.balancer.select(b"", 256).and_then(|backend| exchange.peer(&backend)).ok_or_else(|| {
            tracing::warn!(target_id = %inner.id, "remote target has no healthy address");
            FhirError::StoreUnavailable("the remote FHIR server is unavailable".into())
        })?;
        Ok(Streamed {
            base_url: inner.base_url.clone(),
            peer: Box::new(peer),
            uri: client::request_target(&inner.base.path, request),
            host: inner.host_header.clone(),
            authorization,
        })
    }

    /// The upstream for one request; `caller_token` (the client's bearer token) is sent only
    /// when the target is configured to pass it through.
    pub fn upstream<'a>(&'a self, caller_token: Option<&'a str>) -> RemoteExchange<'a> {
        RemoteExchange { target: self, caller_token }
    }

    /// Starts the periodic health checks and resolutions once, on the runtime of the first
    /// request.
    fn start_health_checks(&self) {
        if self.inner.health_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let every = |interval: Duration, run: fn(Arc<Inner>) -> futures_util::future::BoxFuture<'static, ()>| {
            if interval.is_zero() {
                return;
            }
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    let Some(inner) = weak.upgrade() else { return };
                    run(inner).await;
                }
            });
        };
        every(self.inner.health_interval, |inner| {
            Box::pin(async move { inner.balancer.backends().run_health_check(true).await })
        });
        every(self.inner.dns_refresh, |inner| {
            Box::pin(async move {
                inner.resolve(Duration::ZERO).await;
            })
        });
    }

    /// Resolves the addresses again now (tests; the server does it periodically and on
    /// failures).
    #[cfg(test)]
    pub async fn resolve_now(&self) -> bool {
        self.inner.resolve(Duration::ZERO).await
    }
}

impl Inner {
    /// Resolves the addresses again unless that was done less than `min_gap` ago; whether the
    /// set of addresses changed.
    async fn resolve(&self, min_gap: Duration) -> bool {
        let before = self.balancer.backends().get_backend();
        let ran = self
            .refreshes
            .run(min_gap, async {
                if let Err(e) = self.balancer.update().await {
                    tracing::warn!(target_id = %self.id, "resolving the addresses again failed, the known ones are kept: {e}");
                }
            })
            .await;
        let changed = ran && self.balancer.backends().get_backend() != before;
        if changed {
            let now: Vec<String> = self.balancer.backends().get_backend().iter().map(|b| b.addr.to_string()).collect();
            tracing::info!(target_id = %self.id, addresses = ?now, "the remote target's addresses changed");
        }
        changed
    }
}

fn balancer(
    config: &TargetConfig,
    base: &BaseUrl,
    addresses: &[String],
    resolver: resolve::Resolver,
    options: ConnectorOptions,
) -> Result<LoadBalancer<RoundRobin>, GatewayError> {
    use futures_util::FutureExt as _;
    let seed = resolve::at_start(addresses).map_err(|e| config_error(&config.id, e))?;
    let discovery = resolve::Discovery::new(addresses.to_vec(), resolver, seed);
    let mut balancer = LoadBalancer::<RoundRobin>::from_backends(pingora::lb::Backends::new(Box::new(discovery)));
    // The seed: no waiting.
    match balancer.update().now_or_never() {
        Some(Ok(())) => {}
        _ => return Err(config_error(&config.id, format!("`addresses` {addresses:?}: not resolved"))),
    }
    let mut check = HttpHealthCheck::new(&base.host_header(), base.tls);
    let path = format!("{}/{}", base.path, config.health_path.trim_start_matches('/'));
    check.req = pingora::http::RequestHeader::build("GET", path.as_bytes(), None)
        .and_then(|mut req| {
            req.insert_header("Host", base.host_header())?;
            req.insert_header("Accept", "application/fhir+json")?;
            Ok(req)
        })
        .map_err(|e| config_error(&config.id, format!("`health_path` `{}`: {e}", config.health_path)))?;
    check.peer_template.sni = if base.tls { base.host.clone() } else { String::new() };
    check.peer_template.options.verify_cert = config.tls_verify;
    check.peer_template.options.connection_timeout = Some(Duration::from_millis(config.connect_timeout_ms.max(1)));
    check.peer_template.options.read_timeout = Some(Duration::from_millis(config.read_timeout_ms.max(1)));
    check.set_connector(Connector::new(Some(options)));
    // Any answer but a 5xx means the server is there (a 401 on an authenticated `metadata`
    // included).
    check.validator = Some(Box::new(|header| {
        if header.status.as_u16() < 500 {
            Ok(())
        } else {
            pingora::Error::e_explain(pingora::ErrorType::HTTPStatus(header.status.as_u16()), "health check")
        }
    }));
    balancer.set_health_check(Box::new(check));
    balancer.parallel_health_check = true;
    Ok(balancer)
}

fn connector_options(config: &TargetConfig, anchors: Option<&anchors::Anchors>) -> ConnectorOptions {
    let mut options = ConnectorOptions::new(config.pool_size);
    options.ca_file = anchors.map(|a| a.file().display().to_string());
    options
}

/// One streamed request's way to the remote (see [`RemoteTarget::stream`]).
pub struct Streamed {
    /// The target's base, as its `Location` headers name it.
    pub base_url: String,
    pub peer: Box<HttpPeer>,
    pub uri: String,
    pub host: String,
    /// The `Authorization` header the target's credentials give (`None`: none is sent).
    pub authorization: Option<String>,
}

/// A remote target, for one request.
pub struct RemoteExchange<'a> {
    target: &'a RemoteTarget,
    caller_token: Option<&'a str>,
}

impl RemoteExchange<'_> {
    /// The peer for one address (always an IP address and port: the balancer resolved it).
    fn peer(&self, backend: &Backend) -> Option<HttpPeer> {
        let inner = &self.target.inner;
        let sni = if inner.base.tls { inner.base.host.clone() } else { String::new() };
        let mut peer = HttpPeer::new(*backend.addr.as_inet()?, inner.base.tls, sni);
        peer.options.connection_timeout = Some(inner.connect_timeout);
        peer.options.total_connection_timeout = Some(inner.connect_timeout);
        peer.options.read_timeout = Some(inner.read_timeout);
        peer.options.verify_cert = inner.tls_verify;
        peer.options.verify_hostname = inner.tls_verify;
        Some(peer)
    }

    /// [`Self::try_addresses`]; when no address could be connected to, the addresses are
    /// resolved again (at most once per [`resolve::RETRY_AFTER_FAILURE`]) and, when they
    /// changed, tried once more.
    async fn send_with_retries(&self, request: &Request, authorization: Option<&str>) -> FhirResult<Response> {
        match self.try_addresses(request, authorization).await {
            Ok(response) => Ok(response),
            Err((error, true)) => {
                if self.target.inner.resolve(resolve::RETRY_AFTER_FAILURE).await {
                    self.try_addresses(request, authorization).await.map_err(|(e, _)| e)
                } else {
                    Err(error)
                }
            }
            Err((error, false)) => Err(error),
        }
    }

    /// Tries the healthy addresses in round-robin order. A connect failure moves on to an
    /// address not tried yet for any request (nothing was sent); once every address was tried,
    /// and for an answerless failure of an idempotent request, another attempt spends one of
    /// the `retries`. The error says whether no address could be connected to.
    async fn try_addresses(
        &self,
        request: &Request,
        authorization: Option<&str>,
    ) -> Result<Response, (FhirError, bool)> {
        let inner = &self.target.inner;
        let idempotent = client::idempotent(request);
        let mut tried: Vec<Backend> = Vec::new();
        let mut last: Option<Failure> = None;
        let mut retries_left = inner.retries;
        let bound = inner.balancer.backends().get_backend().len() + inner.retries as usize + 1;
        for _ in 0..bound {
            let untried = inner.balancer.select_with(b"", 256, |b, healthy| healthy && !tried.contains(b));
            let backend = match untried {
                Some(backend) => backend,
                None if tried.is_empty() => break,
                None => match inner.balancer.select(b"", 256) {
                    Some(backend) => backend,
                    None => break,
                },
            };
            let Some(peer) = self.peer(&backend) else {
                tried.push(backend);
                continue;
            };
            let exchange = Exchange {
                pool: &inner.pool,
                peer: &peer,
                host_header: &inner.host_header,
                base_path: &inner.base.path,
                authorization,
                read_timeout: inner.read_timeout,
                max_response_bytes: inner.max_response_bytes,
            };
            let failure = match client::attempt(&exchange, request).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            tracing::warn!(
                target_id = %inner.id,
                address = %backend.addr,
                method = request.method.as_str(),
                "remote target exchange failed: {}",
                failure.detail()
            );
            let unsent = matches!(failure, Failure::Connect(_) | Failure::Tls(_));
            let retryable = unsent || (idempotent && matches!(failure, Failure::BeforeAnswer(_)));
            if !tried.contains(&backend) {
                tried.push(backend);
            }
            let more_untried =
                unsent && inner.balancer.select_with(b"", 256, |b, healthy| healthy && !tried.contains(b)).is_some();
            let unreached = |f: Failure| {
                let connect = matches!(f, Failure::Connect(_));
                (f.into_error(), connect)
            };
            if !retryable {
                return Err(unreached(failure));
            }
            if !more_untried {
                if retries_left == 0 {
                    return Err(unreached(failure));
                }
                retries_left -= 1;
            }
            last = Some(failure);
        }
        Err(match last {
            Some(failure) => {
                let connect = matches!(failure, Failure::Connect(_));
                (failure.into_error(), connect)
            }
            None => {
                tracing::warn!(target_id = %inner.id, "remote target has no healthy address");
                (FhirError::StoreUnavailable("the remote FHIR server is unavailable".into()), true)
            }
        })
    }
}

#[async_trait]
impl Upstream for RemoteExchange<'_> {
    async fn send(&self, request: &Request) -> FhirResult<Response> {
        self.target.start_health_checks();
        let inner = &self.target.inner;
        let span = spans::upstream(&inner.id, request.method.as_str());
        let exchange = async {
            let authorization = inner.credentials.authorization(&inner.id, self.caller_token).await?;
            let sent = self.send_with_retries(request, authorization.as_deref());
            match tokio::time::timeout(inner.total_timeout, sent).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(target_id = %inner.id, "remote target exchange over the total timeout");
                    Err(FhirError::GatewayTimeout("the remote FHIR server did not answer in time".into()))
                }
            }
        };
        let result = exchange.instrument(span.clone()).await;
        spans::upstream_done(&span, result.as_ref().map(|r| r.status));
        result
    }
    fn own_credentials(&self) -> bool {
        !matches!(self.target.inner.credentials, credentials::Credentials::Passthrough)
    }
}

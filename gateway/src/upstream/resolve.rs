//! A remote target's addresses as the load balancer sees them: resolved at start (a name that
//! does not resolve stops the start), then again every `dns_refresh_seconds` and when no
//! address could be connected to (at most once per [`RETRY_AFTER_FAILURE`]), so a server
//! that moved is found without a restart. A resolution that fails, or finds nothing, keeps the
//! addresses known; each one is bounded by [`RESOLVE_TIMEOUT`].

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::lb::Backend;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;

/// Looks one `host:port` up.
pub type Resolver =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync>;

/// The longest one resolution of all of a target's addresses may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest time between two resolutions caused by connect failures.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The system's resolver (tokio's `lookup_host`, off the async threads).
pub fn system() -> Resolver {
    Arc::new(|address: String| Box::pin(async move { Ok(tokio::net::lookup_host(address).await?.collect()) }))
}

/// The addresses resolved at start (blocking, before serving), with the error naming the one
/// that does not resolve.
pub fn at_start(addresses: &[String]) -> Result<BTreeSet<Backend>, String> {
    let mut found = BTreeSet::new();
    for address in addresses {
        let resolved = address.to_socket_addrs().map_err(|e| format!("`addresses` `{address}`: {e}"))?;
        found.extend(resolved.map(backend));
    }
    if found.is_empty() {
        return Err(format!("`addresses` {addresses:?} resolve to nothing"));
    }
    Ok(found)
}

fn backend(addr: SocketAddr) -> Backend {
    Backend { addr: PingoraAddr::Inet(addr), weight: 1, ext: Default::default() }
}

/// The service discovery of one target's addresses.
pub struct Discovery {
    addresses: Vec<String>,
    resolver: Resolver,
    /// The addresses resolved at start, handed out by the first discovery (which must not wait).
    seed: Mutex<Option<BTreeSet<Backend>>>,
}

impl Discovery {
    pub fn new(addresses: Vec<String>, resolver: Resolver, seed: BTreeSet<Backend>) -> Self {
        Self { addresses, resolver, seed: Mutex::new(Some(seed)) }
    }
}

#[async_trait]
impl ServiceDiscovery for Discovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        if let Some(seed) = self.seed.lock().ok().and_then(|mut s| s.take()) {
            return Ok((seed, HashMap::new()));
        }
        let lookups = self.addresses.iter().map(|a| (self.resolver)(a.clone()));
        let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, futures_util::future::join_all(lookups)).await;
        let failed = |why: String| pingora::Error::explain(pingora::ErrorType::ConnectNoRoute, why);
        let resolved = resolved.map_err(|_| failed("resolving the addresses took too long".into()))?;
        let mut found = BTreeSet::new();
        for (address, result) in self.addresses.iter().zip(resolved) {
            // One name that does not resolve now: keep what is known rather than lose it.
            let addrs = result.map_err(|e| failed(format!("`{address}`: {e}")))?;
            found.extend(addrs.into_iter().map(backend));
        }
        if found.is_empty() {
            return Err(failed("the addresses resolve to nothing".into()));
        }
        Ok((found, HashMap::new()))
    }
}

/// When the addresses were last resolved, so failures re-resolve at most once per
/// [`RETRY_AFTER_FAILURE`], and one resolution runs at a time.
#[derive(Default)]
pub struct Refreshes {
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Refreshes {
    /// Runs `refresh` unless one ran less than `min_gap` ago (or runs now: then waits for it
    /// and does not run another). Whether it ran.
    pub async fn run<F: Future<Output = ()>>(&self, min_gap: Duration, refresh: F) -> bool {
        let mut last = self.last.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_gap) {
            return false;
        }
        refresh.await;
        *last = Some(Instant::now());
        true
    }
}

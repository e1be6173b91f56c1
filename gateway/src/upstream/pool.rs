//! Idle connections to a remote target's addresses, kept for the next exchange.
//!
//! pingora's connector pool watches each idle connection from a task of its own: every release
//! spawned a task and armed a timer, every reuse woke that task and waited for it to hand the
//! connection back, and both ends read the socket to test it (bench/README.md, "Proxied vs
//! direct"). Here an idle connection is a stream in a list: taken back if it was idle less than
//! [`IDLE`] and a non-blocking read finds it neither closed nor holding unexpected bytes (a
//! server never speaks first on an idle HTTP/1.1 connection), dropped otherwise. A connection the
//! remote closes while idle is found so on its next use, as pingora's pool finds it at the end of
//! its watch; the pool holds at most the target's `pool_size` connections.
//!
//! A connection is taken back preferably on the thread that released it: without work stealing
//! (`server.work_stealing = false`) a connection's socket is watched by the runtime of the
//! thread that opened it, and using it from another thread costs a wake-up across threads for
//! each read.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use pingora::connectors::TransportConnector;
use pingora::protocols::Stream;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as Http1;
use pingora::upstreams::peer::{HttpPeer, Peer as _};
use tokio::io::AsyncReadExt as _;

/// How long an idle connection is kept: below the common 60 s idle cut-off of load balancers in
/// front of FHIR servers, so a reused connection is rarely one the far end is closing.
pub const IDLE: Duration = Duration::from_secs(55);

/// A target's connections: new ones made by pingora's transport connector (TCP, TLS with the
/// target's anchors), idle ones kept here.
pub struct Pool {
    transport: TransportConnector,
    idle: Mutex<Vec<Idle>>,
    capacity: usize,
}

struct Idle {
    address: SocketAddr,
    stream: Stream,
    since: Instant,
    /// The thread that released it.
    thread: ThreadId,
}

impl Pool {
    pub fn new(transport: TransportConnector, capacity: usize) -> Self {
        Self { transport, idle: Mutex::new(Vec::new()), capacity }
    }

    /// A session to `peer`: on an idle connection to its address that is still usable (the
    /// second value says so), else on a new one.
    pub async fn session(&self, peer: &HttpPeer) -> pingora::Result<(HttpSession, bool)> {
        let address = peer.address().as_inet().copied();
        while let Some(mut stream) = address.and_then(|a| self.take(a)) {
            if usable(&mut stream) {
                return Ok((HttpSession::H1(Http1::new_with_options(stream, peer)), true));
            }
        }
        let stream = self.transport.new_stream(peer).await?;
        Ok((HttpSession::H1(Http1::new_with_options(stream, peer)), false))
    }

    /// Keeps the connection of a finished exchange for the next one when HTTP allows it
    /// (keep-alive, the whole answer read and nothing more); closes it otherwise.
    pub async fn release(&self, session: HttpSession, peer: &HttpPeer) {
        let HttpSession::H1(mut h1) = session else { return };
        h1.respect_keepalive();
        let (Some(stream), Some(address)) = (h1.reuse().await, peer.address().as_inet().copied()) else { return };
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= self.capacity.max(1) {
            idle.remove(0);
        }
        idle.push(Idle { address, stream, since: Instant::now(), thread: std::thread::current().id() });
    }

    /// The most recently released connection to `address` that has not been idle too long,
    /// one this thread released if there is one.
    fn take(&self, address: SocketAddr) -> Option<Stream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        idle.retain(|i| now.duration_since(i.since) < IDLE);
        let thread = std::thread::current().id();
        let at = idle
            .iter()
            .rposition(|i| i.address == address && i.thread == thread)
            .or_else(|| idle.iter().rposition(|i| i.address == address))?;
        Some(idle.remove(at).stream)
    }
}

/// Whether an idle connection can carry a request: a read that would block (nothing sent, not
/// closed). Bytes or an end of stream mean the server closed it or broke HTTP.
fn usable(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    // `unconstrained`: tokio's cooperative budget could make a ready read look pending.
    tokio::task::unconstrained(stream.read(&mut byte)).now_or_never().is_none()
}

//! One keep-alive HTTP/1.1 connection (hyper's low-level client): each load-generator client owns
//! one, as `wrk` does, so the number of connections is exactly the number of clients.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::BenchError;

/// Where requests go: `host:port` and the FHIR base path (`/` or `/fhir/`).
#[derive(Debug, Clone)]
pub struct Target {
    pub authority: String,
    pub base_path: String,
    /// `Authorization` header value, when requests carry a bearer token.
    pub authorization: Option<String>,
}

impl Target {
    /// Parses `http://host:port[/path]` (plain http only: the tool measures the server, not TLS).
    pub fn parse(base: &str, bearer: Option<String>) -> Result<Self, BenchError> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| BenchError::Usage(format!("base URL `{base}` must start with http://")))?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let path = path.trim_end_matches('/');
        let base_path = if path.is_empty() { "/".to_string() } else { format!("/{path}/") };
        Ok(Self { authority: authority.to_string(), base_path, authorization: bearer.map(|t| format!("Bearer {t}")) })
    }
}

/// What one request is: method, path relative to the FHIR base, optional JSON body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
    /// Headers besides the usual ones (`prefer`...).
    pub headers: Vec<(&'static str, String)>,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), body: None, headers: Vec::new() }
    }

    pub fn with_body(method: Method, path: impl Into<String>, body: Bytes) -> Self {
        Self { method, path: path.into(), body: Some(body), headers: Vec::new() }
    }
}

/// A response as the tool needs it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: Bytes,
}

/// One open connection; reconnects on the next request after a transport failure.
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target) -> Self {
        Self { target, sender: None }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, BenchError> {
        let stream = TcpStream::connect(&self.target.authority).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped; the next
            // request then reports the failure.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole response body. Any failure drops the connection.
    pub async fn send(&mut self, call: &Call) -> Result<Reply, BenchError> {
        let result = self.try_send(call).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(&mut self, call: &Call) -> Result<Reply, BenchError> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let uri = format!("{}{}", self.target.base_path, call.path);
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header("host", &self.target.authority)
            .header("accept", "application/fhir+json");
        if let Some(auth) = &self.target.authorization {
            builder = builder.header("authorization", auth);
        }
        if call.body.is_some() {
            builder = builder.header("content-type", "application/fhir+json");
        }
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        let request = builder.body(Full::new(call.body.clone().unwrap_or_default()))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .or_else(|| response.headers().get("content-location"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok(Reply { status, location, body })
    }
}

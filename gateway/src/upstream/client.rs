//! One HTTP/1.1 exchange with a remote target over a pooled connection ([`super::pool`]): the request
//! line and headers built from the engine's [`Request`], the body sent, the whole answer read
//! under the size limit, and every failure classified by how far the exchange got — which
//! decides whether it may be retried on the next address and which error the client sees.

use std::time::Duration;

use bytes::Bytes;
use fhirgate_engine::Error as FhirError;
use fhirgate_engine::interaction::{Method, Request, Response, percent_encode};
use pingora::ErrorType;
use pingora::http::RequestHeader;
use pingora::protocols::http::client::HttpSession;
use pingora::upstreams::peer::HttpPeer;

/// The answer headers handed to the engine (hop-by-hop and the remote's other headers stay
/// behind).
const KEPT_HEADERS: [&str; 6] =
    ["content-type", "etag", "last-modified", "location", "content-location", "retry-after"];

/// How an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// No connection (refused, unreachable, connect timeout, TLS handshake): nothing was sent,
    /// another address may be tried for any request.
    Connect(String),
    /// The TLS handshake failed (an untrusted or wrong certificate): nothing was sent either,
    /// but the remote is not down, it is not the server configured.
    Tls(String),
    /// Sent (maybe partly) but nothing of the answer arrived: retried for idempotent requests.
    BeforeAnswer(String),
    /// The answer was garbage, cut short or too large.
    Bad(String),
    /// A read waited longer than the read timeout.
    Timeout(String),
}

impl Failure {
    /// The client-facing error: no address or URL in it (those go to the log).
    pub fn into_error(self) -> FhirError {
        match self {
            Self::Connect(_) => FhirError::StoreUnavailable("the remote FHIR server cannot be reached".into()),
            Self::Tls(_) => FhirError::BadGateway("the remote FHIR server's TLS certificate is not accepted".into()),
            Self::BeforeAnswer(_) => {
                FhirError::BadGateway("the remote FHIR server closed the connection without an answer".into())
            }
            Self::Bad(_) => FhirError::BadGateway("the remote FHIR server's answer is not a usable HTTP answer".into()),
            Self::Timeout(_) => FhirError::GatewayTimeout("the remote FHIR server did not answer in time".into()),
        }
    }

    /// The detail for the log.
    pub fn detail(&self) -> &str {
        match self {
            Self::Connect(m) | Self::Tls(m) | Self::BeforeAnswer(m) | Self::Bad(m) | Self::Timeout(m) => m,
        }
    }
}

/// What one exchange needs besides the request.
pub struct Exchange<'a> {
    pub pool: &'a super::pool::Pool,
    pub peer: &'a HttpPeer,
    pub host_header: &'a str,
    pub base_path: &'a str,
    pub authorization: Option<&'a str>,
    pub read_timeout: Duration,
    pub max_response_bytes: usize,
}

/// Whether `request` may be sent twice: GET, HEAD, and PUT/DELETE guarded by `If-Match`.
pub fn idempotent(request: &Request) -> bool {
    match request.method {
        Method::Get | Method::Head => true,
        Method::Put | Method::Delete => request.headers.if_match.is_some(),
        _ => false,
    }
}

/// The request target: the base path, the request path (as the client's URI carried it: its
/// `%XX` escapes kept, other unsafe bytes escaped) and the query re-encoded from its decoded
/// pairs.
pub fn request_target(base_path: &str, request: &Request) -> String {
    let mut target = format!("{base_path}/");
    let path = request.path.trim_matches('/').as_bytes();
    for (i, &b) in path.iter().enumerate() {
        let escape = b == b'%' && path.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if escape || b.is_ascii_alphanumeric() || b"-._~/:$@!*,;=".contains(&b) {
            target.push(char::from(b));
        } else {
            target.push_str(&format!("%{b:02X}"));
        }
    }
    for (i, (name, value)) in request.query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&percent_encode(name));
        target.push('=');
        target.push_str(&percent_encode(value));
    }
    target
}

fn request_header(x: &Exchange<'_>, request: &Request) -> Result<RequestHeader, pingora::BError> {
    let target = request_target(x.base_path, request);
    let mut header = RequestHeader::build(request.method.as_str(), target.as_bytes(), None)?;
    header.insert_header("Host", x.host_header)?;
    // The engine reads the answer as JSON, whatever the client asked for (it renders the
    // client's format itself).
    header.insert_header("Accept", "application/fhir+json")?;
    let h = &request.headers;
    let passed = [
        ("If-Match", &h.if_match),
        ("If-None-Match", &h.if_none_match),
        ("If-Modified-Since", &h.if_modified_since),
        ("If-None-Exist", &h.if_none_exist),
        ("Prefer", &h.prefer),
    ];
    for (name, value) in passed {
        if let Some(value) = value {
            header.insert_header(name, value.as_str())?;
        }
    }
    if let Some(authorization) = x.authorization {
        header.insert_header("Authorization", authorization)?;
    }
    // Called inside the exchange's `upstream` span: the remote's spans become its children.
    crate::telemetry::propagation::inject(&tracing::Span::current(), &mut header);
    let has_body = !request.body.is_empty() || matches!(request.method, Method::Post | Method::Put | Method::Patch);
    if has_body {
        let content_type = h.content_type.as_deref().unwrap_or("application/fhir+json");
        header.insert_header("Content-Type", content_type)?;
        header.insert_header("Content-Length", request.body.len().to_string())?;
    }
    Ok(header)
}

/// One attempt on one address.
pub async fn attempt(x: &Exchange<'_>, request: &Request) -> Result<Response, Failure> {
    let header = request_header(x, request).map_err(|e| Failure::Bad(format!("request not expressible: {e}")))?;
    let (mut session, _reused) = x.pool.session(x.peer).await.map_err(|e| match e.etype() {
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::HandshakeError => {
            Failure::Tls(format!("TLS: {e}"))
        }
        _ => Failure::Connect(format!("connect: {e}")),
    })?;
    session.set_read_timeout(Some(x.read_timeout));
    session.set_write_timeout(Some(x.read_timeout));
    let result = exchange(x, &mut session, header, request).await;
    match result {
        Ok((response, Sent::Whole)) => {
            x.pool.release(session, x.peer).await;
            Ok(response)
        }
        // A connection whose request was cut short is never reused.
        Ok((response, Sent::CutShort)) => {
            session.shutdown().await;
            Ok(response)
        }
        Err(failure) => {
            session.shutdown().await;
            Err(failure)
        }
    }
}

/// How much of the request went out before the answer came.
enum Sent {
    Whole,
    /// The remote answered (and stopped reading) before the whole body was written.
    CutShort,
}

async fn exchange(
    x: &Exchange<'_>,
    session: &mut HttpSession,
    header: RequestHeader,
    request: &Request,
) -> Result<(Response, Sent), Failure> {
    let sent = |e: pingora::BError| match e.etype() {
        ErrorType::WriteTimedout => Failure::Timeout(format!("write: {e}")),
        _ => Failure::BeforeAnswer(format!("write: {e}")),
    };
    session.write_request_header(Box::new(header)).await.map_err(sent)?;
    let mut written = Ok(());
    if !request.body.is_empty() {
        written = session.write_request_body(Bytes::copy_from_slice(&request.body), true).await.map(|_| ());
    }
    if written.is_ok() {
        written = session.finish_request_body().await.map(|_| ());
    }
    // A server may answer before it has read the whole body and close the connection (a 413
    // from a smaller body limit, a 401): that answer, not the broken write, is what the client
    // must see. So a failed write (but a timeout) is followed by a look for an answer; only
    // when none is there is it "no answer".
    let whole = match written {
        Err(e) if e.etype() == &ErrorType::WriteTimedout => return Err(sent(e)),
        Err(e) => {
            if session.read_response_header().await.is_err() {
                return Err(sent(e));
            }
            Sent::CutShort
        }
        Ok(()) => {
            session.read_response_header().await.map_err(header_failure)?;
            Sent::Whole
        }
    };

    // Interim 1xx answers (`100 Continue`) are skipped, a bounded number of times.
    let mut status = session.response_header().map_or(0, |h| h.status.as_u16());
    for _ in 0..8 {
        if !(100..200).contains(&status) || status == 101 {
            break;
        }
        session.read_response_header().await.map_err(header_failure)?;
        status = session.response_header().map_or(0, |h| h.status.as_u16());
    }
    if !(200..600).contains(&status) {
        return Err(Failure::Bad(format!("status {status}")));
    }
    let mut response = Response::empty(status);
    let mut declared_length = None;
    if let Some(h) = session.response_header() {
        for (name, value) in h.headers.iter() {
            let name = name.as_str();
            if name == "content-length" {
                declared_length = value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok());
            }
            if let Some(kept) = KEPT_HEADERS.iter().find(|k| **k == name)
                && let Ok(value) = value.to_str()
            {
                response.headers.push((header_case(kept), value.to_owned()));
            }
        }
    }
    if declared_length.is_some_and(|n| n > x.max_response_bytes) {
        return Err(Failure::Bad(format!("declared body over {} bytes", x.max_response_bytes)));
    }
    let mut body = Vec::with_capacity(declared_length.unwrap_or(0));
    loop {
        match session.read_response_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > x.max_response_bytes {
                    return Err(Failure::Bad(format!("body over {} bytes", x.max_response_bytes)));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.etype() == &ErrorType::ReadTimedout => return Err(Failure::Timeout(format!("body: {e}"))),
            Err(e) => return Err(Failure::Bad(format!("body: {e}"))),
        }
    }
    response.body = body;
    Ok((response, whole))
}

/// A failure while reading the status line and headers: a close or reset before any byte
/// arrived is "no answer" (retryable), a timeout is a timeout, anything else is garbage.
fn header_failure(e: pingora::BError) -> Failure {
    let nothing_read = e.context.as_ref().is_some_and(|c| c.as_str().contains("bytes already read: 0"));
    match e.etype() {
        ErrorType::ReadTimedout => Failure::Timeout(format!("headers: {e}")),
        ErrorType::ConnectionClosed | ErrorType::ReadError if nothing_read => {
            Failure::BeforeAnswer(format!("headers: {e}"))
        }
        _ => Failure::Bad(format!("headers: {e}")),
    }
}

fn header_case(name: &str) -> String {
    match name {
        "content-type" => "Content-Type",
        "etag" => "ETag",
        "last-modified" => "Last-Modified",
        "location" => "Location",
        "content-location" => "Content-Location",
        "retry-after" => "Retry-After",
        other => other,
    }
    .to_owned()
}

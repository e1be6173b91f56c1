//! Between pingora and the engine: reading a request (with the body size limit and upload
//! timeout) into an engine [`Request`], and writing an engine [`Response`] back.

use std::time::Duration;

use bytes::Bytes;
use fhirgate_engine::interaction::{FileBody, Method, Request, RequestHeaders, Response, parse_query};
use pingora::http::ResponseHeader;
use pingora::prelude::Session;

use crate::config::Config;
use crate::error::GatewayError;

/// Reads the request line, the headers FHIR needs and the whole body.
pub async fn read_request(session: &mut Session, config: &Config) -> Result<Request, GatewayError> {
    let limit = config.server.max_body_bytes;
    let length = session.req_header().headers.get("content-length").and_then(|v| v.to_str().ok());
    if let Some(length) = length.and_then(|l| l.trim().parse::<u64>().ok()) {
        if length > limit as u64 {
            return Err(GatewayError::BodyTooLarge { limit });
        }
    }
    let mut request = request_head(session, config);
    let seconds = config.server.request_timeout_seconds;
    session.set_read_timeout(Some(Duration::from_secs(seconds)));
    let read = async {
        while let Some(chunk) = session.read_request_body().await.map_err(|e| body_error(&e, seconds))? {
            if request.body.len() + chunk.len() > limit {
                return Err(GatewayError::BodyTooLarge { limit });
            }
            request.body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(seconds), read).await {
        Ok(result) => result?,
        Err(_) => return Err(GatewayError::BodyTimeout { seconds }),
    }
    Ok(request)
}

/// The request line and the headers FHIR needs, without the body (still unread).
pub fn request_head(session: &Session, config: &Config) -> Request {
    let header = session.req_header();
    let get = |name: &str| header.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Request {
        method: Method::parse(header.method.as_str()),
        path: header.uri.path().trim_matches('/').to_string(),
        query: header.uri.query().map(parse_query).unwrap_or_default(),
        headers: RequestHeaders {
            accept: get("accept"),
            content_type: get("content-type"),
            if_match: get("if-match"),
            if_none_match: get("if-none-match"),
            if_modified_since: get("if-modified-since"),
            if_none_exist: get("if-none-exist"),
            prefer: get("prefer"),
        },
        body: Vec::new(),
        base_url: crate::links::base_url(&config.server, get("host").as_deref()),
    }
}

/// A failed body read: pingora's own read timeout is the slow upload we limit (408), anything
/// else a broken request (400).
fn body_error(error: &pingora::Error, seconds: u64) -> GatewayError {
    if matches!(error.etype(), pingora::ErrorType::ReadTimedout) {
        GatewayError::BodyTimeout { seconds }
    } else {
        GatewayError::BodyRead(error.to_string())
    }
}

/// Pieces a file body is read and sent in: what a download holds in memory at once.
const FILE_PIECE: u64 = 1024 * 1024;

/// Writes the response, with `X-Request-Id`; HEAD gets the headers only.
pub async fn write_response(session: &mut Session, response: Response, request_id: &str) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(response.status, Some(response.headers.len() + 3))?;
    for (name, value) in &response.headers {
        header.append_header(name.clone(), value.as_str())?;
    }
    header.insert_header("X-Request-Id", request_id)?;
    let no_body = matches!(response.status, 204 | 304);
    let length = response.file.as_ref().map_or(response.body.len() as u64, |f| f.len);
    if !no_body {
        header.set_content_length(usize::try_from(length).unwrap_or(usize::MAX))?;
    }
    let head_only = session.req_header().method == pingora::http::Method::HEAD;
    if no_body || head_only || length == 0 {
        return session.write_response_header(Box::new(header), true).await;
    }
    session.write_response_header(Box::new(header), false).await?;
    match response.file {
        Some(file) => write_file(session, file).await,
        None => session.write_response_body(Some(Bytes::from(response.body)), true).await,
    }
}

/// Sends a file body a piece at a time, each read on the blocking pool. A file that cannot be
/// read to its length ends the connection (the status line is gone already).
async fn write_file(session: &mut Session, file: FileBody) -> pingora::Result<()> {
    let failed = |e: String| pingora::Error::explain(pingora::ErrorType::FileReadError, e);
    let mut opened: Option<std::fs::File> = None;
    let mut left = file.len;
    while left > 0 {
        let take = left.min(FILE_PIECE);
        let path = file.path.clone();
        // Allocated here, where pingora frees it once written: a piece allocated on the
        // blocking pool's thread and freed on this one stayed with that thread's allocator
        // (mimalloc), and a 200 MB download took the process ~100 MB up.
        let mut piece = vec![0; usize::try_from(take).unwrap_or(0)];
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, Vec<u8>)> {
            use std::io::Read;
            let mut f = match opened {
                Some(f) => f,
                None => std::fs::File::open(&path)?,
            };
            f.read_exact(&mut piece)?;
            Ok((f, piece))
        });
        let (f, piece) = read
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(format!("`{}`: {e}", file.path.display())))?;
        opened = Some(f);
        left -= take;
        session.write_response_body(Some(Bytes::from(piece)), left == 0).await?;
    }
    Ok(())
}

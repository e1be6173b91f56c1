//! The engine's answer: status, headers and a rendered body, ready for any HTTP server.

use serde_json::Value;

use crate::error::Error;
use crate::format::{MediaType, render};
use crate::resource::{etag, format_http_date};
use crate::storage::ResourceVersion;

/// Content waiting to be rendered once the media type is known.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    None,
    /// A JSON value (rendered compact or pretty).
    Json(Value),
    /// Stored resource text, sent as it is unless pretty printing is asked for.
    Stored(String),
}

/// A FHIR response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The rendered body (empty for 204, 304 and `return=minimal`).
    pub body: Vec<u8>,
    content: Content,
}

impl Response {
    /// A response with no body.
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), content: Content::None }
    }

    /// A response whose body is already rendered.
    pub fn rendered(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self { body, ..Self::empty(status) }.with_header("Content-Type", content_type)
    }

    /// A response with a JSON body.
    pub fn json(status: u16, value: Value) -> Self {
        Self { content: Content::Json(value), ..Self::empty(status) }
    }

    /// A response carrying a stored resource's text.
    pub fn stored(status: u16, json: String) -> Self {
        Self { content: Content::Stored(json), ..Self::empty(status) }
    }

    /// An OperationOutcome response for an error, already rendered. A 503 says when to retry.
    pub fn error(error: &Error, media: MediaType, pretty: bool) -> Self {
        let mut r = Self::json(error.status(), error.outcome_json());
        if r.status == 503 {
            r = r.with_header("Retry-After", "5");
        }
        r.finish(media, pretty);
        r
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Adds `ETag` and `Last-Modified` for a version.
    pub(crate) fn with_version_headers(self, version: &ResourceVersion) -> Self {
        self.with_header("ETag", etag(version.version))
            .with_header("Last-Modified", format_http_date(version.last_updated))
    }

    /// The value of a header set on this response.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON before it is rendered (for a bundle entry's `resource` / `outcome`).
    pub(crate) fn content_json(&self) -> Option<Value> {
        match &self.content {
            Content::None => None,
            Content::Json(v) => Some(v.clone()),
            Content::Stored(text) => serde_json::from_str(text).ok(),
        }
    }

    /// The body as a JSON value while it is not rendered yet (to change it in place before
    /// [`Self::finish`] renders it once); `None` for a rendered or stored body.
    pub(crate) fn pending_json_mut(&mut self) -> Option<&mut Value> {
        match &mut self.content {
            Content::Json(v) => Some(v),
            Content::None | Content::Stored(_) => None,
        }
    }

    /// Renders pending content in the negotiated media type.
    pub(crate) fn finish(&mut self, media: MediaType, pretty: bool) {
        let content = std::mem::replace(&mut self.content, Content::None);
        let body = match content {
            Content::None => return,
            Content::Json(v) => render(&v, pretty),
            Content::Stored(text) if !pretty => text.into_bytes(),
            Content::Stored(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => render(&v, true),
                Err(_) => text.into_bytes(),
            },
        };
        self.body = body;
        self.headers.push(("Content-Type".to_string(), media.content_type().to_string()));
    }
}

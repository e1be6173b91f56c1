//! The engine's answer: status, headers and a rendered body, ready for any HTTP server.

use serde_json::Value;

use crate::error::Error;
use crate::format::{MediaType, json_to_xml, render_as};
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

/// A body the server sends from a file, a piece at a time, instead of from memory: the first
/// `len` bytes of the file at `path` (an export's NDJSON file, which can be larger than a server
/// should hold at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBody {
    pub path: std::path::PathBuf,
    pub len: u64,
}

/// A FHIR response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The rendered body (empty for 204, 304 and `return=minimal`, and when [`Self::file`] is).
    pub body: Vec<u8>,
    /// The body to send from a file instead of [`Self::body`].
    pub file: Option<FileBody>,
    content: Content,
}

impl Response {
    /// A response with no body.
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), file: None, content: Content::None }
    }

    /// A response whose body is (part of) a file, sent from there.
    pub fn from_file(status: u16, content_type: &str, file: FileBody) -> Self {
        Self { file: Some(file), ..Self::empty(status) }.with_header("Content-Type", content_type)
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

    /// The body as the JSON value it still is, taken out (for a caller that reads it as a value
    /// instead of rendering it, such as a federated search's merge); `None` for a rendered,
    /// stored or empty body, which stays as it was.
    pub fn take_pending_json(&mut self) -> Option<Value> {
        match std::mem::replace(&mut self.content, Content::None) {
            Content::Json(v) => Some(v),
            other => {
                self.content = other;
                None
            }
        }
    }

    /// Renders pending content in the negotiated media type. Content without a form in that
    /// media type (JSON a remote wrote that R4 XML cannot say) becomes the error saying so.
    pub(crate) fn finish(&mut self, media: MediaType, pretty: bool) {
        let content = std::mem::replace(&mut self.content, Content::None);
        let rendered = match content {
            Content::None => return,
            Content::Json(v) => render_as(&v, media, pretty),
            Content::Stored(text) if !pretty && !media.is_xml() => Ok(text.into_bytes()),
            Content::Stored(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => render_as(&v, media, pretty),
                Err(_) => Ok(text.into_bytes()),
            },
        };
        match rendered {
            Ok(body) => self.set_body(body, media),
            Err(e) => self.replace_with_error(&e, media, pretty),
        }
    }

    /// This response in the media type the client asked for: a rendered FHIR JSON body (a
    /// resource, bundle or OperationOutcome) converted to XML when `media` is XML. Any other
    /// body (not JSON, or JSON that is no FHIR resource) is left as it is.
    pub fn in_media(mut self, media: MediaType, pretty: bool) -> Self {
        let json = self.header("Content-Type").is_some_and(|t| t.to_ascii_lowercase().contains("json"));
        if !media.is_xml() || !json || self.body.is_empty() {
            return self;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&self.body) else { return self };
        if value.get("resourceType").is_none() {
            return self;
        }
        match json_to_xml(&value, pretty) {
            Ok(body) => self.set_body(body, media),
            Err(e) => self.replace_with_error(&e, media, pretty),
        }
        self
    }

    /// Sets the rendered body and its `Content-Type` (and `Content-Length`, when one is set).
    fn set_body(&mut self, body: Vec<u8>, media: MediaType) {
        self.body = body;
        let length = self.body.len().to_string();
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("Content-Type"));
        for (name, value) in &mut self.headers {
            if name.eq_ignore_ascii_case("Content-Length") {
                value.clone_from(&length);
            }
        }
        self.headers.push(("Content-Type".to_string(), media.content_type().to_string()));
    }

    /// The answer could not be rendered: the error instead (an OperationOutcome always can be).
    fn replace_with_error(&mut self, error: &Error, media: MediaType, pretty: bool) {
        tracing::warn!(error = %error, "answer not rendered");
        self.status = error.status();
        let outcome = error.outcome_json();
        let (body, media) = match render_as(&outcome, media, pretty) {
            Ok(body) => (body, media),
            Err(_) => (crate::format::render(&outcome, pretty), MediaType::FhirJson),
        };
        self.headers.retain(|(k, _)| !["ETag", "Last-Modified", "Location"].iter().any(|h| k.eq_ignore_ascii_case(h)));
        self.set_body(body, media);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pending_json_body_is_taken_once_and_a_rendered_one_stays() {
        let mut pending = Response::json(200, json!({"resourceType": "Bundle"}));
        assert_eq!(pending.take_pending_json(), Some(json!({"resourceType": "Bundle"})));
        assert_eq!(pending.take_pending_json(), None, "taken, not copied");

        let mut rendered = Response::json(200, json!({"resourceType": "Patient"}));
        rendered.finish(MediaType::FhirJson, false);
        assert_eq!(rendered.take_pending_json(), None);
        assert_eq!(rendered.body, br#"{"resourceType":"Patient"}"#);

        let mut stored = Response::stored(200, r#"{"resourceType":"Patient"}"#.into());
        assert_eq!(stored.take_pending_json(), None);
        stored.finish(MediaType::FhirJson, false);
        assert_eq!(stored.body, br#"{"resourceType":"Patient"}"#, "a stored body is left to render");
    }
}

//! Talking to the upstream: the requests the remote path sends (always JSON, never the client's
//! credentials: [`Request`] carries none and the [`Upstream`] adds its own) and the checks on
//! what comes back. A 2xx answer must be JSON of the shape the interaction promises, else it is
//! a 502; an error status with an OperationOutcome passes through as the remote wrote it; an
//! error status without one becomes the engine's error of that status.

use serde_json::{Map, Value};

use super::{Upstream, bad_gateway};
use crate::error::Error;
use crate::interaction::{Method, Request, RequestHeaders, Response};

/// Why a request on the remote path stops early: an error of ours, or the remote's own answer
/// (an OperationOutcome with an error status) passed through.
pub(super) enum Halt {
    Error(Error),
    Upstream(Box<Response>),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

/// The result of a step of the remote path.
pub(super) type Flow<T> = std::result::Result<T, Halt>;

/// The media type every request to the remote asks for and sends.
const FHIR_JSON: &str = "application/fhir+json";

/// A request for the remote: `method` on `path` with `query`, JSON in both directions, nothing
/// of the client's request but what is given here.
pub(super) fn request(method: Method, path: &str, query: Vec<(String, String)>, base_url: &str) -> Request {
    let mut out = Request::new(method, path, base_url);
    out.query = query;
    out.headers = RequestHeaders { accept: Some(FHIR_JSON.into()), ..RequestHeaders::default() };
    out
}

/// `request` with a JSON body.
pub(super) fn with_body(mut request: Request, body: &Value) -> Request {
    request.headers.content_type = Some(FHIR_JSON.into());
    request.body = serde_json::to_vec(body).unwrap_or_default();
    request
}

/// The client's request as the remote receives it when it is forwarded unchanged: the same
/// interaction, headers FHIR defines, body; the answer negotiated as JSON.
pub(super) fn forwarded(client: &Request) -> Request {
    let mut out = client.clone();
    out.headers.accept = Some(FHIR_JSON.into());
    out.query.retain(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"));
    out
}

/// The remote's answer, its body parsed.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    /// The body as JSON; `None` when it was empty.
    pub(super) body: Option<Value>,
}

impl Reply {
    /// The value of a header of the answer.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as a resource object, or a 502.
    pub(super) fn resource(&self) -> Flow<&Map<String, Value>> {
        match &self.body {
            Some(Value::Object(map)) if map.get("resourceType").is_some_and(Value::is_string) => Ok(map),
            Some(_) => Err(bad_gateway("the body is not a FHIR resource")),
            None => Err(bad_gateway("the body is empty where a resource was expected")),
        }
    }

    /// The body as a resource of `resource_type`, or a 502.
    pub(super) fn resource_of(&self, resource_type: &str) -> Flow<&Map<String, Value>> {
        let map = self.resource()?;
        if map.get("resourceType").and_then(Value::as_str) == Some(resource_type) {
            Ok(map)
        } else {
            Err(bad_gateway(format!("expected a `{resource_type}`")))
        }
    }

    /// The body as a Bundle of one of `kinds` (taken, not copied: a page of entries), or a 502.
    pub(super) fn bundle(&mut self, kinds: &[&str]) -> Flow<Map<String, Value>> {
        let map = self.resource_of("Bundle")?;
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
        if !kinds.contains(&kind) {
            return Err(bad_gateway(format!("expected a `{}` Bundle, got `{kind}`", kinds.join("` or `"))));
        }
        if map.get("entry").is_some_and(|e| !e.is_array()) {
            return Err(bad_gateway("`Bundle.entry` is not an array"));
        }
        match self.body.take() {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(bad_gateway("the body is not a FHIR resource")),
        }
    }

    /// The current version the answer names: `meta.versionId` of its resource, else its `ETag`.
    pub(super) fn version(&self) -> Option<String> {
        let from_meta =
            self.body.as_ref().and_then(|b| b.pointer("/meta/versionId")).and_then(Value::as_str).map(str::to_owned);
        from_meta.or_else(|| self.header("ETag").map(etag_value))
    }

    /// A response for the client: `status`, the given body and the remote's version headers.
    pub(super) fn respond(&self, body: Option<Value>) -> Response {
        let mut response = match body {
            Some(v) => Response::json(self.status, v),
            None => Response::empty(self.status),
        };
        for name in ["ETag", "Last-Modified", "Location", "Content-Location"] {
            if let Some(value) = self.header(name) {
                response = response.with_header(name, value);
            }
        }
        response
    }

    /// The answer as it came, for the client (the body checked to be a resource when present).
    pub(super) fn pass(&self) -> Flow<Response> {
        if self.body.is_some() {
            self.resource()?;
        }
        Ok(self.respond(self.body.clone()))
    }
}

/// The version inside an ETag: `W/"3"` → `3`.
pub(super) fn etag_value(tag: &str) -> String {
    let t = tag.trim();
    t.strip_prefix("W/").unwrap_or(t).trim_matches('"').to_owned()
}

/// The weak ETag of a version.
pub(super) fn etag(version: &str) -> String {
    format!("W/\"{version}\"")
}

/// Sends `request` and returns a successful (2xx or 304) answer; an error status stops here
/// (passed through or turned into our error).
pub(super) async fn exchange(upstream: &dyn Upstream, request: &Request) -> Flow<Reply> {
    let reply = answer(upstream, request).await?;
    if reply.status >= 400 { Err(failure(reply)) } else { Ok(reply) }
}

/// Sends `request` and returns its answer whatever its status, the body parsed (a body that is
/// not JSON is a 502; an empty body is `None`).
pub(super) async fn answer(upstream: &dyn Upstream, request: &Request) -> Flow<Reply> {
    parse(upstream.send(request).await?)
}

/// A 200 answer whose body is a JSON resource of `resource_type`, as the client's answer with
/// the body unparsed: the text is checked to be JSON of that type (a scan that builds nothing)
/// and passed on as the remote wrote it, with the remote's version headers. `None` for any
/// other answer, left as it was for [`parse`] and the checks of the parsed path.
pub(super) fn unparsed(response: &mut Response, resource_type: &str) -> Option<Response> {
    /// The one member the check reads; every other is scanned and dropped.
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "resourceType", borrow)]
        resource_type: std::borrow::Cow<'a, str>,
    }
    if response.status != 200 {
        return None;
    }
    let text = match String::from_utf8(std::mem::take(&mut response.body)) {
        Ok(text) => text,
        Err(e) => {
            response.body = e.into_bytes();
            return None;
        }
    };
    if !serde_json::from_str::<Head<'_>>(&text).is_ok_and(|head| head.resource_type == resource_type) {
        response.body = text.into_bytes();
        return None;
    }
    let mut passed = Response::stored(response.status, text);
    for name in ["ETag", "Last-Modified", "Location", "Content-Location"] {
        if let Some(value) = response.header(name) {
            passed = passed.with_header(name, value);
        }
    }
    Some(passed)
}

/// The remote's answer, its body parsed (a body that is not JSON is a 502; an empty body is
/// `None`).
pub(super) fn parse(response: Response) -> Flow<Reply> {
    let body = if response.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(v) => Some(v),
            // An error status with a body that is not JSON: the status is still the answer.
            Err(_) if response.status >= 400 => None,
            Err(e) => return Err(bad_gateway(format!("the body is not JSON ({e})"))),
        }
    };
    if !(100..600).contains(&response.status)
        || (200..300).contains(&response.status) && body.is_some() && !body.as_ref().is_some_and(Value::is_object)
    {
        return Err(bad_gateway(format!("status {} with a body that is not a JSON object", response.status)));
    }
    Ok(Reply { status: response.status, headers: response.headers, body })
}

/// What the client gets for an error status of the remote: its OperationOutcome as it is, or
/// our error of that status.
pub(super) fn failure(reply: Reply) -> Halt {
    let outcome = reply.body.as_ref().is_some_and(|b| b["resourceType"] == "OperationOutcome");
    if outcome {
        let mut response = reply.respond(reply.body.clone());
        if let Some(retry) = reply.header("Retry-After") {
            response = response.with_header("Retry-After", retry);
        }
        return Halt::Upstream(Box::new(response));
    }
    let status = reply.status;
    let said = format!("the remote server answered {status}");
    Halt::Error(match status {
        400 => Error::bad_request(said),
        401 | 403 => Error::Forbidden(said),
        404 => Error::NotFound(said),
        405 => Error::MethodNotAllowed(said),
        409 => Error::Conflict(said),
        410 => Error::Gone(said),
        412 => Error::PreconditionFailed(said),
        422 => Error::unprocessable(said),
        503 => Error::StoreUnavailable(said),
        504 => Error::GatewayTimeout(said),
        _ => Error::BadGateway(said),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_name_versions() {
        assert_eq!(etag_value("W/\"3\""), "3");
        assert_eq!(etag_value(" \"3\" "), "3");
        assert_eq!(etag_value("3"), "3");
        assert_eq!(etag("3"), "W/\"3\"");
    }

    #[test]
    fn error_statuses_without_an_outcome_become_our_errors() {
        let reply = |status| Reply { status, headers: Vec::new(), body: None };
        let status = |halt: Halt| match halt {
            Halt::Error(e) => e.status(),
            Halt::Upstream(r) => r.status,
        };
        assert_eq!(status(failure(reply(404))), 404);
        assert_eq!(status(failure(reply(500))), 502);
        assert_eq!(status(failure(reply(503))), 503);
        let outcome = Reply {
            status: 500,
            headers: Vec::new(),
            body: Some(serde_json::json!({"resourceType": "OperationOutcome", "issue": []})),
        };
        assert!(matches!(failure(outcome), Halt::Upstream(r) if r.status == 500));
    }
}

//! batch and transaction: `POST [base]` with a Bundle (http.html#transaction, bundle.html).
//!
//! A batch runs each entry as its own request through the same interactions as any other
//! request; one failing entry does not affect the others. A transaction is all or nothing: its
//! writes are planned first (ids assigned, `urn:uuid:` and conditional references resolved,
//! preconditions checked), then handed to the store as one atomic batch ([`transaction`]).
//!
//! Every entry is decided like the request it stands for, by the same [`Access`]: a batch entry
//! is dispatched as a request of its own; a transaction decides every entry at type level before
//! anything runs (one denial fails it whole), then each write on its data as it is planned.

mod batch;
mod references;
mod transaction;

use serde_json::{Map, Value, json};

use super::write::drop_empty_meta;
use super::{Engine, Method, Request, RequestHeaders, Response, parse_query};
use crate::access::Access;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::format::check_body_content_type;
use crate::outcome::{Issue, IssueType};
use crate::resource::{format_instant, parse_http_date};
use crate::validation::validate;

/// One entry of a batch or transaction, as the client sent it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Position in the bundle, for responses and error messages.
    index: usize,
    full_url: Option<String>,
    method: Method,
    /// `request.url` relative to the base, as written.
    url: String,
    /// `url` before `?`, and its decoded query.
    path: String,
    query: Vec<(String, String)>,
    if_none_exist: Option<String>,
    if_match: Option<String>,
    if_none_match: Option<String>,
    resource: Option<Map<String, Value>>,
}

impl Entry {
    /// How the entry is named in errors.
    pub(crate) fn label(&self) -> String {
        let full_url = self.full_url.as_deref().map(|u| format!(", fullUrl `{u}`")).unwrap_or_default();
        format!("Bundle.entry[{}] ({} {}{full_url})", self.index, self.method.as_str(), self.url)
    }

    /// Checks the entry's resource like any resource written alone.
    fn validate(&self) -> Result<()> {
        let Some(resource) = &self.resource else { return Ok(()) };
        let issues = validate(Definitions::r4(), &Value::Object(resource.clone()));
        if issues.is_empty() { Ok(()) } else { Err(Error::Invalid(issues).context(&self.label())) }
    }

    /// The entry as a request of its own.
    pub(crate) fn request(&self, outer: &Request) -> Request {
        let mut request = self.head(outer);
        request.body =
            self.resource.as_ref().map(|r| Value::Object(r.clone()).to_string().into_bytes()).unwrap_or_default();
        request
    }

    /// [`Entry::request`] without its body: what answering a planned entry needs (its URL and
    /// `Prefer`), without a copy of its resource as JSON text.
    pub(crate) fn head(&self, outer: &Request) -> Request {
        Request {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: RequestHeaders {
                accept: None,
                content_type: self.resource.as_ref().map(|_| "application/fhir+json".to_owned()),
                if_match: self.if_match.clone(),
                if_none_match: self.if_none_match.clone(),
                if_modified_since: None,
                if_none_exist: self.if_none_exist.clone(),
                prefer: outer.headers.prefer.clone(),
            },
            body: Vec::new(),
            base_url: outer.base_url.clone(),
        }
    }
}

pub(super) async fn handle(engine: &Engine, access: &dyn Access, request: &Request) -> Result<Response> {
    check_body_content_type(request.headers.content_type.as_deref())?;
    let mut bundle: Value = serde_json::from_slice(&request.body).map_err(|e| {
        Error::BadRequest(vec![Issue::error(IssueType::Structure, format!("the body is not valid JSON: {e}"))])
    })?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Error::bad_request("`POST` to the base takes a Bundle of type `batch` or `transaction`"));
    }
    // The bundle's own structure here, its entries' resources taken out (moved, not copied: a
    // Synthea patient is 20 MB of JSON); each resource is checked as its entry runs, so that in
    // a batch an invalid resource fails only its entry.
    let mut resources = Vec::new();
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        let max = engine.config.max_bundle_entries as usize;
        if entries.len() > max {
            return Err(Error::PayloadTooLarge(format!(
                "the bundle has {} entries; this server takes at most {max} per bundle",
                entries.len()
            )));
        }
        resources = entries.iter_mut().map(|e| e.as_object_mut().and_then(|e| e.remove("resource"))).collect();
    }
    let issues = validate(Definitions::r4(), &bundle);
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let raw = match bundle.get_mut("entry") {
        Some(Value::Array(entries)) => std::mem::take(entries),
        _ => Vec::new(),
    };
    drop(bundle);
    let entries = raw.iter().zip(resources).enumerate().map(|(i, (e, resource))| entry_with(request, i, e, resource));
    match kind.as_str() {
        "batch" => batch::run(engine, access, request, entries.collect()).await,
        "transaction" => transaction::run(engine, access, request, entries.collect::<Result<Vec<_>>>()?).await,
        other => Err(Error::bad_request(format!(
            "a Bundle posted to the base must be a `batch` or a `transaction`, not `{other}`"
        ))),
    }
}

/// Reads one `Bundle.entry` (also the remote path's batches and transactions).
pub(crate) fn entry(outer: &Request, index: usize, raw: &Value) -> Result<Entry> {
    entry_with(outer, index, raw, raw.get("resource").cloned())
}

/// [`entry`] of an entry whose `resource` was taken out of it.
fn entry_with(outer: &Request, index: usize, raw: &Value, resource: Option<Value>) -> Result<Entry> {
    let fail = |m: String| Error::bad_request(format!("Bundle.entry[{index}]: {m}"));
    let request = raw.get("request").ok_or_else(|| fail("has no `request`".into()))?;
    let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
    let method = Method::parse(&text("method").unwrap_or_default());
    if matches!(method, Method::Other(_)) {
        return Err(fail(format!("unknown `request.method` `{}`", method.as_str())));
    }
    let written = text("url").ok_or_else(|| fail("has no `request.url`".into()))?;
    // An absolute URL on this server's base is the same as a relative one.
    let url = written.strip_prefix(&outer.base_url).unwrap_or(&written).trim_start_matches('/').to_owned();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_owned(), parse_query(q)),
        None => (url.clone(), Vec::new()),
    };
    let resource = match resource {
        None => None,
        Some(Value::Object(mut r)) => {
            drop_empty_meta(&mut r);
            Some(r)
        }
        Some(_) => return Err(fail("`resource` is not a resource".into())),
    };
    if matches!(method, Method::Post | Method::Put) && resource.is_none() {
        return Err(fail(format!("a `{}` entry needs a `resource`", method.as_str())));
    }
    Ok(Entry {
        index,
        full_url: raw.get("fullUrl").and_then(Value::as_str).map(str::to_owned),
        method,
        url,
        path,
        query,
        if_none_exist: text("ifNoneExist"),
        if_match: text("ifMatch"),
        if_none_match: text("ifNoneMatch"),
        resource,
    })
}

/// `Bundle.entry.response` (and `resource`) for an entry's response (also the remote path's).
pub(crate) fn response_entry(response: &Response, full_url: Option<String>) -> Value {
    let mut out = json!({ "response": { "status": status_text(response.status) } });
    if let Some(location) = response.header("Location") {
        out["response"]["location"] = json!(location);
    }
    if let Some(tag) = response.header("ETag") {
        out["response"]["etag"] = json!(tag);
    }
    if let Some(modified) = response.header("Last-Modified").and_then(parse_http_date) {
        out["response"]["lastModified"] = json!(format_instant(modified));
    }
    match response.content_json() {
        Some(body) if body["resourceType"] == "OperationOutcome" && response.status >= 400 => {
            out["response"]["outcome"] = body;
        }
        Some(body) => {
            if let Some(url) = full_url {
                out["fullUrl"] = json!(url);
            }
            out["resource"] = body;
        }
        None => {}
    }
    out
}

/// `Bundle.entry.response.status`: the code and its reason phrase.
fn status_text(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_owned()
}

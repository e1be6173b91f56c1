//! [`Rewrite::to_target`] and [`Rewrite::to_client`]: a request's path, query, `If-None-Exist`
//! and body towards a target; a response's `Location`, `Content-Location` and JSON body back.

use serde_json::Value;

use super::Rewrite;
use super::body::{Stop, Walk};
use super::ids::{Adjusted, Ids, Way, is_id, is_id_char};
use super::params::types_of;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::format::MediaType;
use crate::interaction::{Request, Response, parse_query};
use crate::validation::MAX_DEPTH;

/// Longest id prefix [`Rewrite::check`] accepts.
const MAX_PREFIX: usize = 32;

impl Rewrite {
    /// Whether the prefix can be part of FHIR ids (`[A-Za-z0-9\-\.]`, at most 32 characters)
    /// and both bases are absolute http(s) URLs.
    pub fn check(&self) -> Result<()> {
        if self.id_prefix.len() > MAX_PREFIX || !self.id_prefix.chars().all(is_id_char) {
            return Err(Error::Internal(format!(
                "the id prefix `{}` must be at most {MAX_PREFIX} letters, digits, `-` or `.`",
                self.id_prefix
            )));
        }
        for base in [&self.target_base, &self.client_base] {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(Error::Internal(format!("`{base}` is no absolute http(s) base URL")));
            }
        }
        Ok(())
    }

    /// One direction of this rewrite.
    fn ids(&self, way: Way) -> Ids<'_> {
        let (client, target) = (self.client_base.trim_end_matches('/'), self.target_base.trim_end_matches('/'));
        let (from_base, to_base) = match way {
            Way::ToTarget => (client, target),
            Way::ToClient => (target, client),
        };
        Ids { way, prefix: &self.id_prefix, from_base, to_base }
    }

    /// The request as the target must receive it: ids without the prefix (path, `_id`,
    /// reference parameters — plain, chained or in `_has` —, `If-None-Exist`, a `_search`
    /// form body, ids and references in the body, bundle `fullUrl`s and `request.url`s), the
    /// route's base replaced by the target's. Conditional references are left to the target.
    ///
    /// `None` when the request is not for this target: its path, or an entry of its Bundle,
    /// names an id without this target's prefix, or its search criteria can match nothing here
    /// (every value of an `_id` or reference parameter names another target's resource).
    ///
    /// Refused (400): a relative reference in the body to another target's resource (write its
    /// absolute URL on the route's base instead), an update whose body id lacks the prefix, a
    /// body nested deeper than the engine validates.
    pub fn to_target(&self, request: &Request) -> Result<Option<Request>> {
        let ids = self.ids(Way::ToTarget);
        let defs = Definitions::r4();
        let mut out = request.clone();
        out.base_url = ids.to_base.to_owned();
        let mut segments: Vec<String> = request.path.split('/').map(str::to_owned).collect();
        let mut path_type = segments.first().filter(|t| defs.is_resource_type(t)).cloned();
        if path_type.is_some() && segments.get(1).is_some_and(|s| is_id(s)) {
            match ids.id(&segments[1]) {
                Some(id) => segments[1] = id,
                None => return Ok(None),
            }
            if let Some(compartment_type) = segments.get(2).filter(|t| defs.is_resource_type(t)) {
                path_type = Some(compartment_type.clone());
            }
        }
        out.path = segments.join("/");
        let operation = segments.iter().any(|s| s.starts_with('$'));
        if !operation {
            let types = types_of(path_type.as_deref(), &request.query);
            match ids.params(&types, &request.query) {
                Some(query) => out.query = query,
                None => return Ok(None),
            }
        }
        if let Some(criteria) = &request.headers.if_none_exist {
            let types = types_of(path_type.as_deref(), &[]);
            match ids.query_string(&types, criteria) {
                Some(criteria) => out.headers.if_none_exist = Some(criteria),
                None => return Ok(None),
            }
        }
        if request.body.is_empty() {
            return Ok(Some(out));
        }
        let content_type = request.headers.content_type.as_deref().unwrap_or_default().to_ascii_lowercase();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let form = String::from_utf8_lossy(&request.body);
            let types = types_of(path_type.as_deref(), &parse_query(&form));
            return Ok(ids.query_string(&types, &form).map(|form| Request { body: form.into_bytes(), ..out }));
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
            return Ok(Some(out)); // not JSON: the target answers it
        };
        let walk = Walk { ids };
        let put = request.method == crate::interaction::Method::Put;
        let walked = match &mut body {
            Value::Array(operations) => json_patch(&walk, operations),
            other => walk.body(other, put),
        };
        match walked {
            Ok(()) => {}
            Err(Stop::NotOurs) => return Ok(None),
            Err(Stop::Invalid(message)) => return Err(Error::bad_request(message)),
            Err(Stop::TooDeep) => {
                return Err(Error::bad_request(format!("the body is nested deeper than {MAX_DEPTH} levels")));
            }
        }
        out.body = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(out))
    }

    /// The response as the client must see it: ids with the prefix and the target's URLs on the
    /// route's base, in a JSON body (resource ids, references, `fullUrl`, `request.url`,
    /// `response.location`, `link[].url` with the ids of its query, any other string with a
    /// URL on the target's base; an OperationOutcome's URLs only), `Location` and
    /// `Content-Location`. With an empty prefix only URLs change. Bodies that are not JSON pass
    /// unchanged; a JSON body that does not parse, or is nested deeper than the engine validates,
    /// becomes a 502 (it could carry the target's URLs).
    ///
    /// Ids get longer by the prefix: a target id of 64 characters (FHIR's maximum) becomes one
    /// of 64 + prefix length, which clients may find over-long but which [`Self::to_target`]
    /// turns back into the target's id. Keep prefixes short ([`Self::check`] allows 32).
    pub fn to_client(&self, mut response: Response) -> Response {
        let ids = self.ids(Way::ToClient);
        self.headers_to_client(&mut response);
        let json = response.header("Content-Type").is_some_and(|t| t.to_ascii_lowercase().contains("json"));
        if !json || response.body.is_empty() || self.leaves_unchanged(&response.body) {
            return response;
        }
        let bad = |why: String| {
            Response::error(&Error::BadGateway(format!("the target's answer is {why}")), MediaType::FhirJson, false)
        };
        // Unreadable JSON is not passed on: it could carry the target's URLs.
        let mut body = match serde_json::from_slice::<Value>(&response.body) {
            Ok(body) => body,
            Err(e) => return bad(format!("no valid JSON ({e})")),
        };
        if let Err(stop) = (Walk { ids }).body(&mut body, false) {
            return unusable(stop);
        }
        let pretty = response.body.contains(&b'\n');
        response.body = crate::format::render(&body, pretty);
        let length = response.body.len().to_string();
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("Content-Length") {
                value.clone_from(&length);
            }
        }
        response
    }
}

impl Rewrite {
    /// Whether a JSON body reads the same on the client's side, so it can pass without being
    /// parsed: no id prefix to add, and valid JSON text without escapes (so its bytes are its
    /// strings' characters) in which the target's base does not occur.
    fn leaves_unchanged(&self, body: &[u8]) -> bool {
        let base = self.target_base.trim_end_matches('/');
        self.id_prefix.is_empty()
            && !body.contains(&b'\\')
            && std::str::from_utf8(body).is_ok_and(|text| base.is_empty() || !text.contains(base))
            && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
    }

    /// `Location` and `Content-Location` on the route's base, with the ids' prefix.
    fn headers_to_client(&self, response: &mut Response) {
        let ids = self.ids(Way::ToClient);
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("Location") || name.eq_ignore_ascii_case("Content-Location") {
                *value = if ids.on_base(value) {
                    ids.urls(value).0.into_owned()
                } else {
                    match ids.relative(value) {
                        Adjusted::Changed(new) => new,
                        _ => value.clone(),
                    }
                };
            }
        }
    }

    /// [`Self::to_client`] on a response whose body is still a JSON value, before it is
    /// rendered: the value is rewritten in place, so it is rendered once and never parsed
    /// again (a value that cannot be rewritten makes the response the 502 it becomes). `false`:
    /// the body is already rendered, [`Self::to_client`] is still to be applied.
    pub(crate) fn pending_to_client(&self, response: &mut Response) -> bool {
        let Some(body) = response.pending_json_mut() else { return false };
        match (Walk { ids: self.ids(Way::ToClient) }).body(body, false) {
            Ok(()) => self.headers_to_client(response),
            Err(stop) => *response = unusable(stop),
        }
        true
    }
}

/// The 502 of a target's answer that cannot be rewritten.
fn unusable(stop: Stop) -> Response {
    let why = match stop {
        Stop::TooDeep => format!("nested deeper than {MAX_DEPTH} levels"),
        Stop::Invalid(m) => m,
        Stop::NotOurs => "not rewritable".to_owned(),
    };
    Response::error(&Error::BadGateway(format!("the target's answer is {why}")), MediaType::FhirJson, false)
}

/// A JSON Patch's operations: a `value` set at a `.../reference` path is a reference; other
/// values are walked as they are.
fn json_patch(walk: &Walk<'_>, operations: &mut [Value]) -> Result<(), Stop> {
    for operation in operations {
        let is_reference = operation.get("path").and_then(Value::as_str).is_some_and(|p| p.ends_with("/reference"));
        match operation.get_mut("value") {
            Some(Value::String(reference)) if is_reference => *reference = walk.reference(reference)?,
            Some(value) => walk.body(value, false)?,
            None => {}
        }
    }
    Ok(())
}

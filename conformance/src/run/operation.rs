//! `TestScript…action.operation`: building the HTTP request of each operation type of
//! `testscript-operation-codes` (read, vread, create, update, updateCreate, patch, delete,
//! search, history, capabilities, batch, transaction, and any other code as a named operation
//! `$code`), sending it, and saving the request and response as fixtures.
//!
//! The URL is `url` when given; else `[base]/[resource][params]` when `params` is given; else
//! built from the type and `targetId` (or the id of the `sourceId` body for updates).

use std::time::Instant;

use serde_json::Value;

use super::fixture::{Fixture, Target, target_of_response};
use super::result::{ActionKind, ActionResult, Exchange, Outcome};
use super::{State, text};
use crate::http::Request;
use crate::script::Format;

/// The MIME type of an `accept`/`contentType` value: the STU3 short codes (`json`, `xml`,
/// `ttl`) or a MIME type as written; `none` sends no header.
pub(super) fn mime(code: &str) -> Option<String> {
    match code {
        "json" => Some(Format::Json.mime().to_owned()),
        "xml" => Some(Format::Xml.mime().to_owned()),
        "ttl" => Some("text/turtle".to_owned()),
        "none" | "" => None,
        other => Some(other.to_owned()),
    }
}

/// The operation code: `type.code`, or for scripts without one (STU3 leftovers) a guess from
/// the method and what the operation names.
fn code_of(operation: &Value) -> String {
    if let Some(code) = operation.get("type").and_then(|t| text(t, "code")) {
        return code.to_owned();
    }
    let has_target = operation.get("targetId").is_some();
    let address = text(operation, "params").or_else(|| text(operation, "url"));
    let has_query = address.is_some_and(|a| a.contains('?'));
    let has_params = address.is_some();
    match text(operation, "method").unwrap_or("get").to_ascii_lowercase().as_str() {
        "post" if has_query => "search",
        "post" if operation.get("resource").is_none() => "transaction",
        "post" => "create",
        "put" => "update",
        "patch" => "patch",
        "delete" => "delete",
        _ if has_target => "read",
        _ if has_query => "search",
        _ if address.is_some_and(|a| a.contains("_history")) => "history",
        _ if has_params => "read",
        _ => "search",
    }
    .to_owned()
}

/// Percent-encodes the query values of a URL (`encodeRequestUrl`), leaving `%XX` escapes and the
/// characters that structure a query as they are.
pub(super) fn encode_query(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else { return url.to_owned() };
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(path);
    out.push('?');
    for c in query.chars() {
        match c {
            'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | '-'
            | '_'
            | '.'
            | '~'
            | '='
            | '&'
            | '%'
            | ','
            | '$'
            | ':'
            | '/'
            | '*' => {
                out.push(c);
            }
            _ => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
        }
    }
    out
}

impl State<'_> {
    /// Runs one operation.
    pub(super) fn operation(&mut self, operation: &Value) -> ActionResult {
        let code = code_of(operation);
        let label = text(operation, "description").or_else(|| text(operation, "label")).map_or_else(
            || format!("{code} {}", text(operation, "resource").unwrap_or_default()).trim().to_owned(),
            str::to_owned,
        );
        let request = match self.request_of(operation, &code) {
            Ok(request) => request,
            Err(message) => return ActionResult::new(ActionKind::Operation, label, Outcome::Error, message),
        };
        let result = self.send(label, request);
        let Some(exchange) = self.last.clone() else { return result };
        if let Some(id) = text(operation, "requestId") {
            let fixture = Fixture { request: Some(exchange.request.clone()), ..Fixture::default() };
            self.fixtures.insert(id.to_owned(), fixture);
        }
        if let Some(response) = &exchange.response {
            if let Some(id) = text(operation, "responseId") {
                let fixture = Fixture { response: Some(response.clone()), ..Fixture::default() };
                self.fixtures.insert(id.to_owned(), fixture);
            }
            // As Touchstone does: a created or updated source fixture now stands for the server
            // resource, so later operations can name it as `targetId`.
            let writes = matches!(code.as_str(), "create" | "update" | "updateCreate");
            if writes && (200..300).contains(&response.status) {
                if let (Some(source), Some(target)) = (text(operation, "sourceId"), target_of_response(response)) {
                    if let Some(fixture) = self.fixtures.get_mut(source) {
                        fixture.created = Some(target);
                    }
                }
            }
        }
        result
    }

    /// Sends a request, remembers it as the last exchange, and reports it.
    pub(super) fn send(&mut self, label: String, request: Request) -> ActionResult {
        let started = Instant::now();
        let sent = self.runner.client.send(&request);
        let millis = started.elapsed().as_millis();
        let summary = format!("{} {}", request.method, request.url);
        let (outcome, message, response) = match sent {
            Ok(response) => (Outcome::Pass, format!("{summary} → {}", response.status), Some(response)),
            Err(e) => (Outcome::Error, e.to_string(), None),
        };
        let exchange = Exchange { request, response, millis };
        self.last = Some(exchange.clone());
        ActionResult { kind: ActionKind::Operation, label, outcome, message, exchange: Some(exchange) }
    }

    /// `Accept`, `Content-Type` and `Authorization`.
    pub(super) fn standard_headers(&self, content_type: Option<&str>, accept: Option<&str>) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(accept) = accept.map(str::to_owned).or_else(|| mime("json")) {
            headers.push(("Accept".to_owned(), accept));
        }
        if let Some(content_type) = content_type {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        if let Some(token) = &self.options().bearer {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        headers
    }

    /// The body of fixture `id` with variables substituted, in the format `content_type` asks
    /// for (JSON when absent): the file as written when it is in that format, else converted.
    pub(super) fn body_of(&self, id: &str, content_type: Option<&str>) -> Result<(String, String), String> {
        let fixture = self.fixtures.get(id).ok_or_else(|| format!("no fixture `{id}`"))?;
        let (text, format) = match (&fixture.raw, fixture.body()) {
            (Some((raw, format)), _) => (self.substitute(raw), *format),
            (None, Some(body)) => (self.substitute(&body.to_string()), Format::Json),
            (None, None) => return Err(format!("fixture `{id}` has no body")),
        };
        let wants_xml = content_type.is_some_and(|c| c.contains("xml"));
        let content_type = content_type.unwrap_or(Format::Json.mime()).to_owned();
        let body = match (format, wants_xml) {
            (Format::Xml, true) | (Format::Json, false) => text,
            (Format::Xml, false) => {
                crate::format::xml_to_json(&text).map_err(|e| format!("fixture `{id}`: {e}"))?.to_string()
            }
            (Format::Json, true) => {
                let json = serde_json::from_str(&text).map_err(|e| format!("fixture `{id}`: {e}"))?;
                crate::format::json_to_xml(&json, false).map_err(|e| format!("fixture `{id}`: {e}"))?
            }
        };
        Ok((body, content_type))
    }

    /// The server resource named by fixture `id`.
    fn target_of(&self, id: &str) -> Result<Target, String> {
        self.fixtures
            .get(id)
            .ok_or_else(|| format!("no fixture `{id}`"))?
            .target()
            .ok_or_else(|| format!("fixture `{id}` names no server resource"))
    }

    /// Builds the HTTP request of an operation.
    fn request_of(&self, operation: &Value, code: &str) -> Result<Request, String> {
        let base = &self.options().base_url;
        let content_type = text(operation, "contentType").map_or_else(|| mime("json"), mime);
        let accept = text(operation, "accept").map_or_else(|| mime("json"), mime);
        let source = text(operation, "sourceId");
        let target = text(operation, "targetId").map(|t| self.target_of(t)).transpose()?;
        let body = source.map(|s| self.body_of(s, content_type.as_deref())).transpose()?;
        let source_resource = source.and_then(|s| self.fixtures.get(s)).and_then(Fixture::body);
        let resource_type = text(operation, "resource")
            .map(|r| super::assert::type_name(r).to_owned())
            .or_else(|| target.as_ref().map(|t| t.resource_type.clone()))
            .or_else(|| source_resource.as_ref().and_then(|r| text(r, "resourceType")).map(str::to_owned))
            .filter(|_| !matches!(code, "batch" | "transaction" | "capabilities"));
        let type_path = resource_type.as_ref().map_or_else(String::new, |t| format!("/{t}"));
        let params = text(operation, "params").map(|p| self.substitute(p));

        let default_method = match code {
            "create" | "batch" | "transaction" => "POST",
            "update" | "updateCreate" => "PUT",
            "patch" => "PATCH",
            "delete" => "DELETE",
            "read" | "vread" | "search" | "history" | "capabilities" => "GET",
            _ if body.is_some() => "POST",
            _ => "GET",
        };
        let method = text(operation, "method").map_or_else(|| default_method.to_owned(), str::to_ascii_uppercase);

        let id_of_target = || -> Result<String, String> {
            match &target {
                Some(t) => Ok(t.id.clone()),
                None => source_resource
                    .as_ref()
                    .and_then(|r| text(r, "id"))
                    .map(|id| self.substitute(id))
                    .ok_or_else(|| format!("`{code}` needs `targetId`, `params` or `url`")),
            }
        };
        let url = if let Some(url) = text(operation, "url") {
            let url = self.substitute(url);
            if url.contains("://") { url } else { format!("{base}/{}", url.trim_start_matches('/')) }
        } else if let Some(params) = &params {
            match code {
                "capabilities" => format!("{base}/metadata{params}"),
                "search" if method == "POST" && params.starts_with('?') => format!("{base}{type_path}/_search"),
                _ => format!("{base}{type_path}{params}"),
            }
        } else {
            match code {
                "capabilities" => format!("{base}/metadata"),
                "batch" | "transaction" => base.clone(),
                "create" => format!("{base}{type_path}"),
                "search" if method == "POST" => format!("{base}{type_path}/_search"),
                "search" => format!("{base}{type_path}"),
                "read" | "update" | "updateCreate" | "patch" | "delete" => {
                    format!("{base}{type_path}/{}", id_of_target()?)
                }
                "vread" => {
                    let t = target.as_ref().ok_or("`vread` needs `targetId`, `params` or `url`")?;
                    let version = t.version.as_ref().ok_or("the target has no version")?;
                    format!("{base}{type_path}/{}/_history/{version}", t.id)
                }
                "history" => match &target {
                    Some(t) => format!("{base}{type_path}/{}/_history", t.id),
                    None => format!("{base}{type_path}/_history"),
                },
                named => {
                    let instance = target.as_ref().map_or_else(String::new, |t| format!("/{}", t.id));
                    format!("{base}{type_path}{instance}/${}", named.trim_start_matches('$'))
                }
            }
        };
        if let Some(name) = unresolved(&url) {
            return Err(format!("variable `{name}` has no value (yet; `--var {name}=VALUE` gives one) for `{url}`"));
        }
        let url = if operation.get("encodeRequestUrl").and_then(Value::as_bool) == Some(false) {
            url
        } else {
            encode_query(&url)
        };

        let form = params.as_deref().and_then(|p| p.strip_prefix('?')).filter(|_| code == "search" && method == "POST");
        let (body, content_type) = match (body, form) {
            // A search by POST sends its parameters as a form.
            (None, Some(form)) if text(operation, "url").is_none() => (
                Some(encode_query(&format!("?{form}"))[1..].to_owned()),
                Some("application/x-www-form-urlencoded".to_owned()),
            ),
            (Some((body, content_type)), _) if method != "GET" && method != "DELETE" => {
                (Some(body), Some(content_type))
            }
            _ => (None, None),
        };
        let body = match (code, body) {
            ("update" | "updateCreate", Some(body)) => Some(with_url_id(body, &url, &format!("{base}{type_path}/"))),
            (_, body) => body,
        };
        let content_type = match (code, &content_type, source_resource.as_ref()) {
            ("patch", Some(_), Some(Value::Array(_))) => Some("application/json-patch+json".to_owned()),
            _ => content_type,
        };
        let mut headers = self.standard_headers(content_type.as_deref(), accept.as_deref());
        for header in operation.get("requestHeader").and_then(Value::as_array).into_iter().flatten() {
            let Some(field) = text(header, "field") else { continue };
            // A script's header replaces the runner's of that name; an empty (or blank, or
            // absent) value removes it, e.g. the `Authorization` of `--bearer`.
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(field));
            let value = text(header, "value").map(|v| self.substitute(v)).unwrap_or_default();
            if value.trim().is_empty() {
                continue;
            }
            if let Some(name) = unresolved(&value) {
                return Err(format!(
                    "variable `{name}` has no value (yet; `--var {name}=VALUE` gives one) for header `{field}`"
                ));
            }
            headers.push((field.to_owned(), value));
        }
        Ok(Request { method, url, headers, body })
    }
}

/// The name of the first `${name}` left in substituted text.
fn unresolved(text: &str) -> Option<&str> {
    let start = text.find("${")?;
    text[start + 2..].split('}').next()
}

/// An update's body (JSON or XML) with the id of its URL, as Touchstone does: a fixture can update a
/// resource whatever id the fixture file carries. Other bodies are left as they are.
fn with_url_id(body: String, url: &str, type_url: &str) -> String {
    let Some(id) =
        url.strip_prefix(type_url).and_then(|rest| rest.split(['/', '?']).next()).filter(|id| !id.is_empty())
    else {
        return body;
    };
    crate::format::with_id(&body, id).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::{code_of, encode_query, mime};

    #[test]
    fn updates_carry_the_id_of_their_url() {
        let body = r#"{"resourceType":"Patient","id":"pat1","active":true}"#.to_owned();
        let updated = super::with_url_id(body.clone(), "http://x/Patient/example", "http://x/Patient/");
        assert_eq!(updated, r#"{"resourceType":"Patient","id":"example","active":true}"#);
        assert_eq!(super::with_url_id(body.clone(), "http://x/Patient?identifier=1", "http://x/Patient/"), body);
        let xml = super::with_url_id("<Patient/>".to_owned(), "http://x/Patient/a", "http://x/Patient/");
        assert!(xml.contains(r#"<Patient xmlns="http://hl7.org/fhir"><id value="a"/></Patient>"#), "XML too: {xml}");
        assert_eq!(super::with_url_id("not FHIR".to_owned(), "http://x/Patient/a", "http://x/Patient/"), "not FHIR");
    }

    #[test]
    fn query_values_are_encoded_once() {
        assert_eq!(
            encode_query("http://x/Patient?name=a b&identifier=s|1"),
            "http://x/Patient?name=a%20b&identifier=s%7C1"
        );
        assert_eq!(encode_query("http://x/Patient?name=a%20b"), "http://x/Patient?name=a%20b");
        assert_eq!(encode_query("http://x/Patient/1"), "http://x/Patient/1");
    }

    #[test]
    fn short_codes_and_stu3_operations() {
        assert_eq!(mime("xml").as_deref(), Some("application/fhir+xml"));
        assert_eq!(mime("application/json").as_deref(), Some("application/json"));
        assert_eq!(mime("none"), None);
        let op = |v: serde_json::Value| code_of(&v);
        assert_eq!(op(serde_json::json!({"type": {"code": "vread"}})), "vread");
        assert_eq!(op(serde_json::json!({"resource": "Patient", "method": "post"})), "create");
        assert_eq!(op(serde_json::json!({"resource": "Patient", "params": "/1"})), "read");
        assert_eq!(op(serde_json::json!({"resource": "Patient", "params": "?name=x"})), "search");
        assert_eq!(op(serde_json::json!({"resource": "Patient", "params": "/1/_history"})), "history");
        assert_eq!(op(serde_json::json!({"resource": "Patient"})), "search");
    }
}

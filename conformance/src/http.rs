//! The HTTP side of a run: requests and responses as plain data (so reports can show them) and
//! a blocking client over `ureq` that never treats a status code as an error and follows no
//! redirect.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};

/// A request as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// A response as received, with the body parsed as a resource when it is JSON or FHIR XML.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub resource: Option<Value>,
}

/// A header value by case-insensitive name.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

impl Request {
    /// A header of the request.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body parsed as a resource, when it is one.
    pub fn resource(&self) -> Option<Value> {
        self.body.as_deref().and_then(|b| crate::script::parse_resource(b).ok()).map(|(v, _)| v)
    }
}

impl Response {
    /// Builds a response, parsing the body as a resource when it is one.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: String) -> Self {
        let resource = crate::script::parse_resource(&body).ok().map(|(v, _)| v).filter(Value::is_object);
        Self { status, headers, body, resource }
    }

    /// A header of the response.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A blocking HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// A client whose requests give up after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Assertions judge what the server answered, redirects included.
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Self { agent }
    }

    /// Sends a request; only failures of the exchange itself are errors.
    pub(crate) fn send(&self, request: &Request) -> Result<Response> {
        let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(request.url.as_str());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let http_error = |e: &dyn std::fmt::Display| Error::Http(format!("{} {}: {e}", request.method, request.url));
        let response = match &request.body {
            Some(body) => self.agent.run(builder.body(body.clone().into_bytes()).map_err(|e| http_error(&e))?),
            None => self.agent.run(builder.body(()).map_err(|e| http_error(&e))?),
        }
        .map_err(|e| http_error(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body =
            response.into_body().with_config().limit(256 * 1024 * 1024).read_to_string().map_err(|e| http_error(&e))?;
        Ok(Response::new(status, headers, body))
    }
}

//! CORS (<https://fetch.spec.whatwg.org/#http-cors-protocol>) as configured in `[cors]`: a
//! preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
//! without authentication (it carries no credentials and reveals nothing); every other response,
//! errors included (a 401, 403 or 404 OperationOutcome must be readable by the app), gets the
//! CORS headers when its `Origin` is allowed. A disallowed origin gets none, so the browser
//! keeps the answer from the page. `*` is never combined with credentials (checked at start).

use fhirgate_engine::interaction::Response;
use pingora::http::RequestHeader;

use crate::config::CorsConfig;

/// The configured policy.
pub struct Cors {
    config: CorsConfig,
}

impl Cors {
    pub fn new(config: &CorsConfig) -> Self {
        Self { config: config.clone() }
    }

    /// Whether the request is a CORS preflight.
    pub fn is_preflight(header: &RequestHeader) -> bool {
        header.method == pingora::http::Method::OPTIONS
            && header.headers.contains_key("origin")
            && header.headers.contains_key("access-control-request-method")
    }

    /// The request's `Origin`, when it is allowed.
    pub fn allowed_origin(&self, header: &RequestHeader) -> Option<String> {
        let origin = header.headers.get("origin")?.to_str().ok()?.trim();
        let any = self.config.allowed_origins.iter().any(|o| o == "*");
        let listed = self.config.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
        (listed || any).then(|| if listed { origin.to_string() } else { "*".to_string() })
    }

    /// The answer to a preflight: 204, with the CORS headers when the origin, the method and
    /// every requested header are allowed; without them otherwise.
    pub fn preflight(&self, header: &RequestHeader) -> Response {
        let response = Response::empty(204).with_header("Vary", "Origin");
        let Some(origin) = self.allowed_origin(header) else { return response };
        let get = |name: &str| header.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let method = get("access-control-request-method").trim();
        if !self.config.allowed_methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return response;
        }
        let requested = get("access-control-request-headers");
        let headers_allowed = requested
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .all(|h| self.config.allowed_headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
        if !headers_allowed {
            return response;
        }
        let mut response = response
            .with_header("Access-Control-Allow-Origin", origin)
            .with_header("Access-Control-Allow-Methods", self.config.allowed_methods.join(", "))
            .with_header("Access-Control-Allow-Headers", self.config.allowed_headers.join(", "))
            .with_header("Access-Control-Max-Age", self.config.max_age_seconds.to_string());
        if self.config.allow_credentials {
            response = response.with_header("Access-Control-Allow-Credentials", "true");
        }
        response
    }

    /// The headers an actual response gets for this request (none for a disallowed origin).
    pub fn response_headers(&self, header: &RequestHeader) -> Vec<(&'static str, String)> {
        let Some(origin) = self.allowed_origin(header) else {
            return if self.config.allowed_origins.is_empty() { Vec::new() } else { vec![("Vary", "Origin".into())] };
        };
        let mut headers = vec![
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Expose-Headers", self.config.exposed_headers.join(", ")),
            ("Vary", "Origin".into()),
        ];
        if self.config.allow_credentials {
            headers.push(("Access-Control-Allow-Credentials", "true".into()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, b"/Patient", None).unwrap_or_else(|_| unreachable!());
        for (k, v) in headers {
            let _ = r.insert_header((*k).to_string(), *v);
        }
        r
    }

    fn cors(origins: &[&str]) -> Cors {
        Cors::new(&CorsConfig {
            allowed_origins: origins.iter().map(|o| (*o).to_string()).collect(),
            ..CorsConfig::default()
        })
    }

    #[test]
    fn allowed_origins_get_the_headers_others_none() {
        let c = cors(&["https://app.example"]);
        let ok = request("OPTIONS", &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "PUT")]);
        assert!(Cors::is_preflight(&ok));
        let r = c.preflight(&ok);
        assert_eq!((r.status, r.header("Access-Control-Allow-Origin")), (204, Some("https://app.example")));
        let evil = request("OPTIONS", &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")]);
        assert_eq!(c.preflight(&evil).header("Access-Control-Allow-Origin"), None);
        let odd_header = request(
            "OPTIONS",
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "authorization, x-secret"),
            ],
        );
        assert_eq!(c.preflight(&odd_header).header("Access-Control-Allow-Origin"), None);
        let get = request("GET", &[("Origin", "https://app.example")]);
        let headers = c.response_headers(&get);
        assert!(headers.iter().any(|(k, v)| *k == "Access-Control-Expose-Headers" && v.contains("ETag")));
        assert!(
            c.response_headers(&request("GET", &[("Origin", "https://evil.example")]))
                .iter()
                .all(|(k, _)| *k == "Vary")
        );
    }

    #[test]
    fn a_wildcard_never_goes_with_credentials() {
        let mut config = CorsConfig { allowed_origins: vec!["*".into()], ..CorsConfig::default() };
        assert!(config.check().is_ok());
        config.allow_credentials = true;
        assert!(config.check().is_err());
        let bad = CorsConfig { allowed_origins: vec!["https://app.example/".into()], ..CorsConfig::default() };
        assert!(bad.check().is_err(), "an origin has no path");
        let r = cors(&["*"]).preflight(&request(
            "OPTIONS",
            &[("Origin", "https://any.example"), ("Access-Control-Request-Method", "GET")],
        ));
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(r.header("Access-Control-Allow-Credentials"), None);
    }
}

//! A remote target's base URL, split into what the client needs: scheme (TLS or not), host (the
//! `Host` header and the TLS server name), port and the base path every request goes below.

use crate::error::GatewayError;

/// `http(s)://host[:port][/path]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    /// The host as written (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    /// The base path without a trailing slash (`""` or `/fhir`).
    pub path: String,
}

impl BaseUrl {
    /// Parses `url`; the error names what is wrong, for the target's configuration error.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`base_url` `{url}` must start with `http://` or `https://`"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!("`base_url` `{url}` must not have a query or fragment"));
        }
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.contains('@') {
            return Err(format!("`base_url` `{url}` must not carry credentials"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("`base_url` `{url}`: unclosed `[`"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, parse_port(url, port)?),
                None if after.is_empty() => (host, default_port),
                None => return Err(format!("`base_url` `{url}`: unexpected text after the address")),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, parse_port(url, port)?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("`base_url` `{url}` has no host"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { String::new() } else { format!("/{path}") };
        Ok(Self { tls, host: host.to_owned(), port, path })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default_port { host } else { format!("{host}:{}", self.port) }
    }

    /// The address (`host:port`) used when the target lists no `addresses`.
    pub fn default_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(url: &str, port: &str) -> Result<u16, String> {
    port.parse().map_err(|_| format!("`base_url` `{url}`: bad port `{port}`"))
}

/// Turns a parse error into the target's configuration error.
pub fn config_error(target: &str, message: String) -> GatewayError {
    GatewayError::Config(format!("target `{target}`: {message}"))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn parses_bases() {
        let b = BaseUrl::parse("https://x.fhir.azurehealthcareapis.com").unwrap();
        assert_eq!(
            (b.tls, b.host.as_str(), b.port, b.path.as_str()),
            (true, "x.fhir.azurehealthcareapis.com", 443, "")
        );
        assert_eq!(b.host_header(), "x.fhir.azurehealthcareapis.com");
        let b = BaseUrl::parse("http://127.0.0.1:8080/fhir/r4/").unwrap();
        assert_eq!((b.tls, b.port, b.path.as_str()), (false, 8080, "/fhir/r4"));
        assert_eq!(b.host_header(), "127.0.0.1:8080");
        assert_eq!(b.default_address(), "127.0.0.1:8080");
        let b = BaseUrl::parse("http://[::1]:9/").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 9));
        assert_eq!(b.default_address(), "[::1]:9");
        for bad in ["ftp://x", "http://", "http://u:p@x", "http://x:notaport", "http://x/?a=1", "http://[::1"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

//! The base URL of the links a response carries (`Location`, bundle `link` and `fullUrl`):
//! `server.base_url` when set. Otherwise the request's `Host` header is used only when it is
//! trusted: the listen address, its `localhost`/`127.0.0.1`/`[::1]` forms, or one of
//! `server.allowed_hosts`; any other `Host` gets `http://<listen>`, so a client cannot make the
//! server hand out links to a host of its choosing (to other clients, through caches or pages).

use std::net::SocketAddr;

use crate::config::ServerConfig;

/// `http://<Host>` for a trusted `Host`, else `http://<listen>`; `server.base_url` when set.
pub fn base_url(server: &ServerConfig, host: Option<&str>) -> String {
    if let Some(url) = &server.base_url {
        return url.trim_end_matches('/').to_string();
    }
    match host.and_then(|h| trusted(server, h.trim())) {
        Some(host) => format!("http://{host}"),
        None => format!("http://{}", server.listen),
    }
}

/// `host` (`name` or `name:port`) in lower case, when it may name the server in links.
fn trusted(server: &ServerConfig, host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let (name, _) = split_port(&host);
    if name.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b)) {
        return None;
    }
    let configured = server.allowed_hosts.iter().map(|a| a.to_ascii_lowercase()).any(|allowed| {
        match split_port(&allowed) {
            // `name` allows any port; `name:port` that port only.
            (allowed_name, None) => allowed_name == name,
            _ => allowed == host,
        }
    });
    (configured || listen_forms(&server.listen).contains(&host)).then_some(host)
}

/// `name` and `port` of `name[:port]`, with IPv6 literals in brackets.
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') && !port.is_empty() => (name, Some(port)),
        _ => (host, None),
    }
}

/// The listen address and its loopback forms (for a loopback or unspecified address).
fn listen_forms(listen: &str) -> Vec<String> {
    let mut forms = vec![listen.to_ascii_lowercase()];
    if let Ok(address) = listen.parse::<SocketAddr>() {
        if address.ip().is_loopback() || address.ip().is_unspecified() {
            let port = address.port();
            forms.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
        }
    }
    forms
}

/// Warns at start when links depend on the `Host` header of clients that can reach the server
/// from elsewhere: `base_url` unset and a listener that is not loopback.
pub fn warn_at_start(server: &ServerConfig) {
    let loopback = server.listen.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
    if server.base_url.is_none() && !loopback {
        tracing::warn!(
            listen = %server.listen,
            allowed_hosts = ?server.allowed_hosts,
            "`server.base_url` is unset on a non-loopback listener: links use the request's `Host` only when it is \
             the listen address or in `server.allowed_hosts`, else `http://<listen>`; set `server.base_url` to \
             the public URL"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(listen: &str, allowed: &[&str]) -> ServerConfig {
        ServerConfig {
            listen: listen.into(),
            allowed_hosts: allowed.iter().map(|a| (*a).to_string()).collect(),
            ..ServerConfig::default()
        }
    }

    #[test]
    fn only_trusted_hosts_name_the_server() {
        let s = server("127.0.0.1:8080", &[]);
        assert_eq!(base_url(&s, Some("127.0.0.1:8080")), "http://127.0.0.1:8080");
        assert_eq!(base_url(&s, Some("LOCALHOST:8080")), "http://localhost:8080");
        assert_eq!(base_url(&s, Some("[::1]:8080")), "http://[::1]:8080");
        assert_eq!(base_url(&s, Some("evil.example")), "http://127.0.0.1:8080");
        assert_eq!(base_url(&s, Some("evil.example:8080")), "http://127.0.0.1:8080");
        assert_eq!(base_url(&s, Some("localhost:9999")), "http://127.0.0.1:8080", "another port");
        assert_eq!(base_url(&s, Some("localhost:8080/x?y")), "http://127.0.0.1:8080", "not a host");
        assert_eq!(base_url(&s, None), "http://127.0.0.1:8080");
    }

    #[test]
    fn allowed_hosts_and_base_url() {
        let s = server("0.0.0.0:8080", &["fhir.example.org", "api.example.org:443"]);
        assert_eq!(base_url(&s, Some("fhir.example.org")), "http://fhir.example.org");
        assert_eq!(base_url(&s, Some("fhir.example.org:8080")), "http://fhir.example.org:8080");
        assert_eq!(base_url(&s, Some("api.example.org:443")), "http://api.example.org:443");
        assert_eq!(base_url(&s, Some("api.example.org:80")), "http://0.0.0.0:8080");
        assert_eq!(base_url(&s, Some("localhost:8080")), "http://localhost:8080", "a form of the wildcard listener");
        let fixed = ServerConfig { base_url: Some("https://fhir.example.org/r4/".into()), ..s };
        assert_eq!(base_url(&fixed, Some("evil.example")), "https://fhir.example.org/r4");
    }
}

//! `[cors]` and `[smart]`: what browsers may call (CORS), how SMART apps discover the
//! authorization server, and the SMART authorization proxy in front of Entra ID (off by default).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[cors]`: cross-origin requests from browser apps. Empty `allowed_origins`: no CORS headers
/// at all (preflights are still answered, without them, and without authentication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.org`, scheme, host and port), or `*` for any origin
    /// (refused together with `allow_credentials`).
    pub allowed_origins: Vec<String>,
    /// `Access-Control-Allow-Credentials: true` (cookies, client certificates). Bearer tokens in
    /// `Authorization` do not need it.
    pub allow_credentials: bool,
    /// Methods a preflight may ask for.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive).
    pub allowed_headers: Vec<String>,
    /// Response headers a browser app may read.
    pub exposed_headers: Vec<String>,
    /// How long a browser may cache a preflight's answer, in seconds.
    pub max_age_seconds: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect();
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: false,
            allowed_methods: list(&["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            allowed_headers: list(&[
                "Authorization",
                "Content-Type",
                "Accept",
                "If-Match",
                "If-None-Match",
                "If-None-Exist",
                "If-Modified-Since",
                "Prefer",
                "X-Request-Id",
            ]),
            exposed_headers: list(&["Location", "ETag", "Content-Location", "Last-Modified", "X-Request-Id"]),
            max_age_seconds: 600,
        }
    }
}

/// `[smart]`: SMART App Launch discovery and the authorization proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmartConfig {
    /// The authorization server's authorize endpoint, published in `/.well-known/smart-configuration`
    /// and the CapabilityStatement when the proxy is off (e.g. Entra's
    /// `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/authorize`).
    pub authorization_endpoint: Option<String>,
    /// Its token endpoint.
    pub token_endpoint: Option<String>,
    pub proxy: SmartProxyConfig,
}

/// `[smart.proxy]`: fhirgate's own `authorize` and `token` endpoints, running the SMART launch
/// against an upstream OpenID Connect provider (Entra ID) with fhirgate's app registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmartProxyConfig {
    /// Off by default.
    pub enabled: bool,
    /// The upstream authorize endpoint (Entra: `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/authorize`).
    pub upstream_authorize_url: String,
    /// The upstream token endpoint (Entra: `.../oauth2/v2.0/token`).
    pub upstream_token_url: String,
    /// fhirgate's client id in the upstream provider (its Entra app registration).
    pub client_id: String,
    /// A file holding that registration's client secret (trailing newline ignored); none: a
    /// public client (PKCE only).
    pub client_secret_file: Option<PathBuf>,
    /// Prefix of the FHIR API's scopes in the upstream provider: SMART `patient/Observation.rs`
    /// is asked as `<prefix>patient.Observation.rs` (`*` as `all`).
    pub scope_prefix: String,
    /// Longest lifetime of the access tokens the proxy issues, in seconds (never past the
    /// upstream token's own expiry).
    pub token_ttl_seconds: u64,
    /// The proxy's signing key (P-256, PKCS#8); default `<data_dir>/smart-proxy-key.p8`, created
    /// (mode 0600) on first start. Replicas share it.
    pub key_file: Option<PathBuf>,
    /// Roles (`roles` claim) whose tokens may create EHR launch contexts (`POST /auth/launch`).
    pub launch_roles: Vec<String>,
    /// The SMART apps allowed to use the proxy (TOML only).
    pub clients: Vec<SmartClient>,
}

impl Default for SmartProxyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            upstream_authorize_url: String::new(),
            upstream_token_url: String::new(),
            client_id: String::new(),
            client_secret_file: None,
            scope_prefix: String::new(),
            token_ttl_seconds: 3600,
            key_file: None,
            launch_roles: vec!["smartLauncher".into()],
            clients: Vec::new(),
        }
    }
}

/// One registered SMART app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmartClient {
    pub client_id: String,
    /// Exact redirect URIs; any other is refused without redirecting.
    pub redirect_uris: Vec<String>,
    /// A file holding the client's secret (confidential client, `client_secret_basic` or
    /// `client_secret_post`); none: a public client (PKCE only).
    pub secret_file: Option<PathBuf>,
}

impl CorsConfig {
    /// Refuses `*` with credentials.
    pub fn check(&self) -> Result<(), String> {
        if self.allow_credentials && self.allowed_origins.iter().any(|o| o == "*") {
            return Err("`cors.allowed_origins = [\"*\"]` cannot be combined with `cors.allow_credentials = true`: \
                        list the origins"
                .into());
        }
        for origin in self.allowed_origins.iter().filter(|o| *o != "*") {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin.matches('/').count() == 2;
            if !ok {
                return Err(format!("`cors.allowed_origins`: `{origin}` is no origin (`https://host[:port]`)"));
            }
        }
        Ok(())
    }
}

impl SmartConfig {
    /// A proxy that is on needs its upstream, its registration and at least one client.
    pub fn check(&self) -> Result<(), String> {
        let proxy = &self.proxy;
        if !proxy.enabled {
            return Ok(());
        }
        if proxy.upstream_authorize_url.is_empty() || proxy.upstream_token_url.is_empty() || proxy.client_id.is_empty()
        {
            return Err("`[smart.proxy]` needs `upstream_authorize_url`, `upstream_token_url` and `client_id`".into());
        }
        if proxy.clients.is_empty() {
            return Err("`[smart.proxy]` is on but no `[[smart.proxy.clients]]` is registered".into());
        }
        for client in &proxy.clients {
            if client.client_id.is_empty() || client.redirect_uris.is_empty() {
                return Err("each `[[smart.proxy.clients]]` needs `client_id` and at least one `redirect_uris`".into());
            }
        }
        if proxy.token_ttl_seconds == 0 {
            return Err("`smart.proxy.token_ttl_seconds` must be positive".into());
        }
        Ok(())
    }
}

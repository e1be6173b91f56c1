//! SMART App Launch (<https://hl7.org/fhir/smart-app-launch/>): the discovery document
//! (`/.well-known/smart-configuration`, public), the same endpoints in the CapabilityStatement's
//! `rest.security`, and the authorization proxy in front of Entra ID ([`proxy`], off by default).
//!
//! - [`scopes`]: SMART scopes to the upstream provider's scope names and back.
//! - [`proxy`]: the `authorize`, `callback`, `token` and `launch` endpoints.

pub mod proxy;
pub mod scopes;

use serde_json::{Value, json};

use crate::config::Config;

/// The `rest.security` service code for SMART on FHIR.
const SERVICE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/restful-security-service";
/// The extension carrying the OAuth endpoints in a CapabilityStatement.
const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// What SMART discovery publishes, fixed at start.
#[derive(Debug, Clone)]
pub struct Discovery {
    document: Value,
    security: Value,
}

impl Discovery {
    /// From the configuration: the proxy's endpoints when it is on, else `[smart]`'s (filled in
    /// from the first issuer's discovery by [`with_discovered_endpoints`]), else none (a server
    /// with only its development issuer has no authorization endpoint).
    pub fn new(config: &Config) -> Self {
        let base = config.local_issuer_url();
        let proxy = config.auth.enabled && config.smart.proxy.enabled;
        let (issuer, authorize, token) = if proxy {
            (Some(proxy::issuer(config)), Some(format!("{base}/auth/authorize")), Some(format!("{base}/auth/token")))
        } else {
            let first = config.auth.issuers.first().map(|i| i.issuer.clone());
            let issuer = first.or_else(|| config.local_issuer_on().then(|| config.local_issuer_url()));
            (issuer, config.smart.authorization_endpoint.clone(), config.smart.token_endpoint.clone())
        };
        let launches = proxy;
        let mut capabilities = vec!["permission-v1", "permission-v2", "permission-patient", "permission-user"];
        if launches {
            capabilities.extend([
                "launch-standalone",
                "launch-ehr",
                "client-public",
                "client-confidential-symmetric",
                "context-ehr-patient",
                "context-ehr-encounter",
                "context-standalone-patient",
                "sso-openid-connect",
            ]);
        }
        let mut scopes = vec!["patient/*.rs", "user/*.rs", "patient/*.read", "user/*.read", "system/*.rs"];
        if launches {
            scopes.extend(["openid", "fhirUser", "launch", "launch/patient", "launch/encounter"]);
        }
        let mut document = json!({
            "capabilities": capabilities,
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        });
        if let Some(issuer) = &issuer {
            document["issuer"] = json!(issuer);
        }
        if launches {
            // The proxy's keys, which sign its `id_token`s.
            document["jwks_uri"] = json!(format!("{}/jwks.json", proxy::issuer(config)));
            document["token_endpoint_auth_methods_supported"] =
                json!(["none", "client_secret_basic", "client_secret_post"]);
        }
        if let Some(a) = &authorize {
            document["authorization_endpoint"] = json!(a);
        }
        if let Some(t) = &token {
            document["token_endpoint"] = json!(t);
        }
        let mut security = json!({
            "cors": !config.cors.allowed_origins.is_empty(),
            "service": [{"coding": [{"system": SERVICE_SYSTEM, "code": "SMART-on-FHIR",
                                     "display": "SMART-on-FHIR"}],
                         "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}],
        });
        let uris: Vec<Value> = [("authorize", &authorize), ("token", &token)]
            .into_iter()
            .filter_map(|(name, url)| url.as_ref().map(|u| json!({"url": name, "valueUri": u})))
            .collect();
        if !uris.is_empty() {
            security["extension"] = json!([{"url": OAUTH_URIS, "extension": uris}]);
        }
        Self { document, security }
    }

    /// `/.well-known/smart-configuration`.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The CapabilityStatement's `rest.security`.
    pub fn security(&self) -> &Value {
        &self.security
    }
}

/// `config` with `[smart]`'s endpoints filled in from the first trusted issuer's OpenID Connect
/// discovery document when they are unset and the proxy is off (once, at start, best effort: an
/// issuer that does not answer leaves them out, with a warning), so discovery and the
/// CapabilityStatement name the authorization server clients sign in with.
pub fn with_discovered_endpoints(mut config: Config) -> Config {
    let smart = &config.smart;
    let wanted = smart.authorization_endpoint.is_none() || smart.token_endpoint.is_none();
    if !config.auth.enabled || smart.proxy.enabled || !wanted {
        return config;
    }
    let Some(issuer) = config.auth.issuers.first() else { return config };
    let url = crate::auth::issuer::TrustedIssuer::new(issuer.clone()).discovery_url;
    let agent =
        ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(3))).build().new_agent();
    let document: Result<Value, String> = agent
        .get(&url)
        .call()
        .map_err(|e| e.to_string())
        .and_then(|mut r| r.body_mut().with_config().limit(1024 * 1024).read_to_string().map_err(|e| e.to_string()))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()));
    match document {
        Ok(document) => {
            let endpoint = |name: &str| document.get(name).and_then(Value::as_str).map(str::to_string);
            let smart = &mut config.smart;
            smart.authorization_endpoint =
                smart.authorization_endpoint.take().or_else(|| endpoint("authorization_endpoint"));
            smart.token_endpoint = smart.token_endpoint.take().or_else(|| endpoint("token_endpoint"));
        }
        Err(e) => {
            tracing::warn!(%url, error = %e, "SMART discovery: the issuer's endpoints could not be read; set `smart.authorization_endpoint` and `smart.token_endpoint`")
        }
    }
    config
}

/// Whether `path` (below the server's base) is `.well-known/smart-configuration` at the root or
/// below a route's prefix.
pub fn is_discovery(config: &Config, path: &str) -> bool {
    let Some(prefix) = path.strip_suffix(".well-known/smart-configuration") else { return false };
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || config.routes().iter().any(|r| r.normalized_prefix() == prefix)
}

//! The SMART authorization proxy (`[smart.proxy]`): fhirgate's own `authorize` and `token`
//! endpoints for SMART apps, running the launch against an upstream OpenID Connect provider
//! (Entra ID) as one confidential client, fhirgate's app registration.
//!
//! - `GET /auth/authorize`: the app's request is checked (registered `client_id`, exact
//!   `redirect_uri` — anything else is refused here, never redirected —, `response_type=code`,
//!   `state`, `aud` naming this server, PKCE `S256`, no client-chosen `patient`/`encounter`, an
//!   EHR `launch` issued by `POST /auth/launch`), kept under a new random state, and the browser
//!   sent upstream with the SMART scopes translated ([`super::scopes`]) and fhirgate's own PKCE.
//! - `GET /auth/callback`: the upstream code is redeemed (with fhirgate's verifier and secret),
//!   the upstream access token verified as any request's token is (issuer, signature, `aud`,
//!   tenant), the launch context fixed — the patient of the EHR launch, or in a standalone
//!   launch the user's own `fhirUser` when it is a Patient, else the one the user picks — and a
//!   fhirgate access token signed (ES256, `<base>/auth` issuer) with the granted SMART scopes and
//!   that context (with `openid`, an `id_token` too). The app gets a one-time code for it (60 s).
//! - `POST /auth/token`: the code is redeemed once (any attempt burns it), with the same client
//!   (its secret when confidential), `redirect_uri` and the PKCE verifier.
//! - `GET`/`POST /auth/pick` ([`picker`]): in a standalone launch by a user who is no patient,
//!   the user picks the patient on fhirgate's own page, accepted only when the user may read it.
//! - `POST /auth/launch`: an EHR (a token with a `smart.proxy.launch_roles` role) registers a
//!   launch context (`patient`, `encounter`) and gets the opaque one-time `launch` value it
//!   hands to the app.
//!
//! Pending authorizations, codes, launches and picker sessions live in this process (one replica
//! or sticky sessions), as search page tokens do; the signing key is shared by file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fhirgate_engine::interaction::{Request, Response, percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod picker;

use super::scopes::{self, Scope};
use crate::auth::local::LocalIssuer;
use crate::auth::{Authenticator, Identity};
use crate::config::{Config, SmartClient, SmartProxyConfig};
use crate::error::GatewayError;

/// The proxy's signing key file in the data directory.
pub const KEY_FILE: &str = "smart-proxy-key.p8";

/// A launch context fixed by an EHR.
#[derive(Debug, Clone, Default)]
struct Launch {
    patient: String,
    encounter: String,
}

/// An authorization sent upstream, waiting for its callback.
struct Pending {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    scopes: Vec<Scope>,
    launch: Option<Launch>,
    /// fhirgate's own PKCE verifier toward the provider.
    verifier: String,
    /// The app's OpenID Connect `nonce`, echoed in the `id_token`.
    nonce: Option<String>,
}

/// A code issued to an app, with the token response it redeems.
struct Issued {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    body: Value,
}

/// The proxy.
pub struct SmartProxy {
    config: SmartProxyConfig,
    /// The server's public base (`server.base_url`, or `http://<listen>`).
    base: String,
    /// Accepted `aud` values: the base and each route's base.
    audiences: Vec<String>,
    upstream_secret: Option<String>,
    client_secrets: HashMap<String, String>,
    signer: LocalIssuer,
    patient_claim: String,
    pending: moka::sync::Cache<String, Arc<Pending>>,
    codes: moka::sync::Cache<String, Arc<Issued>>,
    launches: moka::sync::Cache<String, Launch>,
    /// Users picking the patient of a standalone launch, by the picker page's session.
    picks: moka::sync::Cache<String, Arc<picker::Picking>>,
    agent: ureq::Agent,
}

/// The issuer of the proxy's tokens.
pub fn issuer(config: &Config) -> String {
    format!("{}/auth", config.local_issuer_url())
}

/// The proxy's signing key, as an issuer (`<base>/auth`, audience the base).
pub fn signer(config: &Config) -> Result<LocalIssuer, GatewayError> {
    let path = config.smart.proxy.key_file.clone().unwrap_or_else(|| config.store.data_dir.join(KEY_FILE));
    LocalIssuer::open_at(&path, issuer(config), config.local_issuer_url())
}

fn read_secret(path: &std::path::Path) -> Result<String, GatewayError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| GatewayError::Config(format!("cannot read `{}`: {e}", path.display())))
}

impl SmartProxy {
    pub fn new(config: &Config) -> Result<Self, GatewayError> {
        let proxy = config.smart.proxy.clone();
        let base = config.local_issuer_url();
        let mut audiences = vec![base.clone()];
        for route in config.routes() {
            let prefix = route.normalized_prefix();
            if !prefix.is_empty() {
                audiences.push(format!("{base}/{prefix}"));
            }
        }
        let upstream_secret = proxy.client_secret_file.as_deref().map(read_secret).transpose()?;
        let mut client_secrets = HashMap::new();
        for SmartClient { client_id, secret_file, .. } in &proxy.clients {
            if let Some(file) = secret_file {
                client_secrets.insert(client_id.clone(), read_secret(file)?);
            }
        }
        Ok(Self {
            signer: signer(config)?,
            patient_claim: config.auth.patient_claim.clone(),
            config: proxy,
            base,
            audiences,
            upstream_secret,
            client_secrets,
            pending: expiring(600),
            codes: expiring(60),
            launches: expiring(300),
            picks: expiring(600),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .new_agent(),
        })
    }

    /// Whether `path` is one of the proxy's public endpoints.
    pub fn is_public(path: &str) -> bool {
        matches!(
            path,
            "auth/authorize"
                | "auth/callback"
                | "auth/token"
                | "auth/pick"
                | "auth/.well-known/openid-configuration"
                | "auth/jwks.json"
        )
    }

    /// The proxy's OpenID Connect discovery document (`<base>/auth/.well-known/openid-configuration`),
    /// for apps verifying its `id_token`s.
    pub fn openid_configuration(&self) -> Response {
        let issuer = &self.signer.issuer;
        let document = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks.json"),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
        });
        json(200, &document)
    }

    /// Its public keys.
    pub fn jwks(&self) -> Response {
        json(200, &self.signer.jwks_json())
    }

    /// `GET /auth/authorize`.
    pub fn authorize(&self, request: &Request) -> Response {
        let param = |name: &str| request.param(name).unwrap_or_default().to_string();
        let client_id = param("client_id");
        let Some(client) = self.config.clients.iter().find(|c| c.client_id == client_id) else {
            return page(400, &format!("unknown client_id `{client_id}`"));
        };
        let redirect_uri = param("redirect_uri");
        if !client.redirect_uris.contains(&redirect_uri) {
            return page(400, "`redirect_uri` is not registered for this client");
        }
        let state = param("state");
        let refuse = |error: &str, description: &str| {
            app_redirect(&redirect_uri, &[("error", error), ("error_description", description), ("state", &state)])
        };
        if param("response_type") != "code" {
            return refuse("unsupported_response_type", "only `code` is supported");
        }
        if state.is_empty() {
            return refuse("invalid_request", "`state` is required");
        }
        if !self.audiences.contains(&param("aud").trim_end_matches('/').to_string()) {
            return refuse("invalid_request", "`aud` does not name this FHIR server");
        }
        let challenge = param("code_challenge");
        if param("code_challenge_method") != "S256" || !(43..=128).contains(&challenge.len()) {
            return refuse("invalid_request", "PKCE with `code_challenge_method=S256` is required");
        }
        if request.param("patient").is_some() || request.param("encounter").is_some() {
            return refuse("invalid_request", "the launch context is given by the launch, not by the client");
        }
        let launch = match request.param("launch") {
            None => None,
            Some(id) => match self.launches.remove(id) {
                Some(launch) => Some(launch),
                None => return refuse("invalid_request", "unknown or expired `launch`"),
            },
        };
        let scopes = scopes::parse(&param("scope"));
        let upstream_state = random_token();
        let verifier = random_token();
        let upstream_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let location = with_query(
            &self.config.upstream_authorize_url,
            &[
                ("client_id", &self.config.client_id),
                ("response_type", "code"),
                ("redirect_uri", &self.callback_url()),
                ("scope", &scopes::upstream_request(&scopes, &self.config.scope_prefix)),
                ("state", &upstream_state),
                ("code_challenge", &upstream_challenge),
                ("code_challenge_method", "S256"),
                ("response_mode", "query"),
            ],
        );
        let pending = Pending {
            client_id,
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            code_challenge: challenge,
            scopes,
            launch,
            verifier,
            nonce: request.param("nonce").filter(|n| !n.is_empty() && n.len() <= 256).map(str::to_string),
        };
        self.pending.insert(upstream_state, Arc::new(pending));
        redirect(&location)
    }

    fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.base)
    }

    /// `GET /auth/callback`: the provider's answer.
    pub async fn callback(&self, request: &Request, auth: &Authenticator) -> Response {
        let Some(pending) = request.param("state").and_then(|s| self.pending.remove(s)) else {
            return page(400, "unknown or expired authorization: start again from the app");
        };
        let back = |pairs: &[(&str, &str)]| Self::back(&pending, pairs);
        if request.param("error").is_some() {
            return back(&[("error", "access_denied"), ("error_description", "the identity provider refused")]);
        }
        let code = request.param("code").unwrap_or_default().to_string();
        let identity = match self.redeem_upstream(&code, &pending.verifier, auth).await {
            Ok(identity) => identity,
            Err(why) => {
                tracing::warn!(error = %why, "SMART proxy: the upstream code could not be redeemed");
                return back(&[
                    ("error", "access_denied"),
                    ("error_description", "the identity provider's token was not accepted"),
                ]);
            }
        };
        let wants_patient = pending.scopes.iter().any(|s| *s == Scope::Local("launch/patient".into()));
        let launch = match &pending.launch {
            Some(launch) => launch.clone(),
            None => {
                let own = identity.principal.fhir_user.strip_prefix("Patient/").unwrap_or_default().to_string();
                if wants_patient && own.is_empty() {
                    // A user who is no patient picks one, on fhirgate's own page.
                    return self.start_pick(pending, identity);
                }
                Launch { patient: own, encounter: String::new() }
            }
        };
        self.issue(&pending, &identity, &launch)
    }

    /// The app's redirect URI with `pairs` and its own `state`.
    fn back(pending: &Pending, pairs: &[(&str, &str)]) -> Response {
        let mut all = pairs.to_vec();
        all.push(("state", &pending.state));
        app_redirect(&pending.redirect_uri, &all)
    }

    /// Signs the token for `identity` with the `launch` context, keeps it under a new one-time
    /// code, and sends the browser back to the app with that code.
    fn issue(&self, pending: &Pending, identity: &Identity, launch: &Launch) -> Response {
        let back = |pairs: &[(&str, &str)]| Self::back(pending, pairs);
        let principal = &identity.principal;
        let scope = scopes::granted(&pending.scopes, &principal.scopes, &self.config.scope_prefix).join(" ");
        let now = crate::auth::now_seconds();
        let ttl = identity.expires.saturating_sub(now).min(self.config.token_ttl_seconds);
        if ttl == 0 {
            return back(&[
                ("error", "access_denied"),
                ("error_description", "the identity provider's token has expired"),
            ]);
        }
        let mut claims = json!({
            "sub": principal.subject, "oid": principal.subject, "tid": principal.tenant, "idtyp": "user",
            "azp": pending.client_id, "scope": scope, "upstream_iss": principal.issuer,
        });
        if !principal.fhir_user.is_empty() {
            claims["fhirUser"] = json!(principal.fhir_user);
        }
        if !launch.patient.is_empty() {
            claims[self.patient_claim.as_str()] = json!(launch.patient);
        }
        if !launch.encounter.is_empty() {
            claims["encounter"] = json!(launch.encounter);
        }
        let token = match self.signer.sign(claims, ttl) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "SMART proxy: cannot sign");
                return back(&[("error", "server_error")]);
            }
        };
        let mut body = json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope});
        if !launch.patient.is_empty() {
            body["patient"] = json!(launch.patient);
        }
        if !launch.encounter.is_empty() {
            body["encounter"] = json!(launch.encounter);
        }
        if !principal.fhir_user.is_empty() {
            body["fhirUser"] = json!(principal.fhir_user);
        }
        if pending.scopes.contains(&Scope::Oidc("openid".into())) {
            // Who signed in, for the app (SMART `sso-openid-connect`): `fhirUser` with that scope.
            let mut id = json!({"sub": principal.subject});
            if pending.scopes.contains(&Scope::Local("fhirUser".into())) && !principal.fhir_user.is_empty() {
                id["fhirUser"] = json!(principal.fhir_user);
            }
            if let Some(nonce) = &pending.nonce {
                id["nonce"] = json!(nonce);
            }
            match self.signer.sign_for(id, ttl, &pending.client_id) {
                Ok(id_token) => body["id_token"] = json!(id_token),
                Err(e) => {
                    tracing::error!(error = %e, "SMART proxy: cannot sign");
                    return back(&[("error", "server_error")]);
                }
            }
        }
        let code = random_token();
        let issued = Issued {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            body,
        };
        self.codes.insert(code.clone(), Arc::new(issued));
        let record = json!({"event": "smart-authorization", "subject": principal.subject, "issuer": principal.issuer,
                            "tenant": principal.tenant, "client_id": pending.client_id, "scope": scope,
                            "patient": launch.patient, "encounter": launch.encounter,
                            "ehr_launch": pending.launch.is_some()});
        tracing::info!(target: "audit", record = %record, "SMART authorization");
        back(&[("code", &code)])
    }

    /// Redeems the provider's code and verifies the access token it gives.
    async fn redeem_upstream(&self, code: &str, verifier: &str, auth: &Authenticator) -> Result<Arc<Identity>, String> {
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.to_string()),
            ("redirect_uri".into(), self.callback_url()),
            ("client_id".into(), self.config.client_id.clone()),
            ("code_verifier".into(), verifier.to_string()),
        ];
        if let Some(secret) = &self.upstream_secret {
            form.push(("client_secret".into(), secret.clone()));
        }
        let (agent, url) = (self.agent.clone(), self.config.upstream_token_url.clone());
        let answer = tokio::task::spawn_blocking(move || -> Result<Value, String> {
            let mut response = agent.post(&url).send_form(form).map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let text =
                response.body_mut().with_config().limit(1024 * 1024).read_to_string().map_err(|e| e.to_string())?;
            if status != 200 {
                return Err(format!("token endpoint answered {status}: {text}"));
            }
            serde_json::from_str(&text).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let token = answer.get("access_token").and_then(Value::as_str).ok_or("no `access_token`")?;
        let identity = auth.authenticate(Some(&format!("Bearer {token}"))).await.map_err(|e| e.to_string())?;
        // Only a token of a real issuer: never one this server signed itself.
        if identity.principal.issuer == self.signer.issuer || auth.is_local_issuer(&identity.principal.issuer) {
            return Err("the upstream token is fhirgate's own".into());
        }
        Ok(identity)
    }

    /// `POST /auth/token`.
    pub fn token(&self, request: &Request, authorization: Option<&str>) -> Response {
        let form = fhirgate_engine::interaction::parse_query(&String::from_utf8_lossy(&request.body));
        let get = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
        if get("grant_type") != "authorization_code" {
            return oauth_error(400, "unsupported_grant_type", "only `authorization_code` is supported");
        }
        // Any attempt burns the code: a replay, or a guess after a failure, finds nothing.
        let Some(issued) = self.codes.remove(get("code")) else {
            return oauth_error(400, "invalid_grant", "unknown, expired or already used code");
        };
        let (client_id, secret) = match basic(authorization) {
            Some((id, secret)) => (id, Some(secret)),
            None => (get("client_id").to_string(), Some(get("client_secret").to_string()).filter(|s| !s.is_empty())),
        };
        if client_id != issued.client_id {
            return oauth_error(400, "invalid_grant", "the code was issued to another client");
        }
        if let Some(expected) = self.client_secrets.get(&client_id) {
            let given = secret.unwrap_or_default();
            if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).is_err() {
                return oauth_error(401, "invalid_client", "client authentication failed")
                    .with_header("WWW-Authenticate", "Basic realm=\"fhirgate\"");
            }
        }
        if get("redirect_uri") != issued.redirect_uri {
            return oauth_error(400, "invalid_grant", "`redirect_uri` differs from the authorization request's");
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
        if aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), issued.code_challenge.as_bytes())
            .is_err()
        {
            return oauth_error(400, "invalid_grant", "the PKCE `code_verifier` does not match");
        }
        json(200, &issued.body)
    }

    /// `POST /auth/launch`: an EHR's launch context.
    pub fn launch(&self, identity: Option<&Identity>, request: &Request) -> Response {
        let allowed = identity.is_some_and(|i| i.principal.roles.iter().any(|r| self.config.launch_roles.contains(r)));
        if !allowed {
            return oauth_error(403, "access_denied", "creating a launch context needs a launch role");
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let field = |name: &str| {
            let value = body.get(name).and_then(Value::as_str).unwrap_or_default();
            value.strip_prefix(if name == "patient" { "Patient/" } else { "Encounter/" }).unwrap_or(value).to_string()
        };
        let (patient, encounter) = (field("patient"), field("encounter"));
        let valid =
            |id: &str| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if patient.is_empty() || !valid(&patient) || !valid(&encounter) {
            return oauth_error(400, "invalid_request", "give `patient` (and optionally `encounter`) as FHIR ids");
        }
        let id = random_token();
        let principal = identity.map(|i| &i.principal);
        let record = json!({"event": "smart-launch", "subject": principal.map(|p| p.subject.as_str()),
                            "issuer": principal.map(|p| p.issuer.as_str()), "patient": patient, "encounter": encounter});
        tracing::info!(target: "audit", record = %record, "SMART launch context");
        self.launches.insert(id.clone(), Launch { patient, encounter });
        json(201, &json!({"launch": id, "expires_in": 300}))
    }
}

/// A bounded cache whose entries expire `seconds` after they are made.
fn expiring<V: Clone + Send + Sync + 'static>(seconds: u64) -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(seconds)).build()
}

/// 244 random bits (two v4 UUIDs, from the system's random source), as 64 hex digits.
fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// `client_id:secret` of an `Authorization: Basic` header.
fn basic(authorization: Option<&str>) -> Option<(String, String)> {
    let (scheme, value) = authorization?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = fhirgate_engine::interaction::parse_query;
    let id = decode(&format!("v={id}")).pop().map(|(_, v)| v)?;
    let secret = decode(&format!("v={secret}")).pop().map(|(_, v)| v)?;
    Some((id, secret))
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), encode_value(v))).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.join("&"))
}

/// Percent-encodes a query value strictly (also `/`, `:` and `*`, which redirect URIs and scopes hold).
fn encode_value(value: &str) -> String {
    percent_encode(value)
        .replace('/', "%2F")
        .replace(':', "%3A")
        .replace('*', "%2A")
        .replace('|', "%7C")
        .replace(',', "%2C")
        .replace('$', "%24")
}

fn app_redirect(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    redirect(&with_query(redirect_uri, pairs))
}

fn redirect(location: &str) -> Response {
    Response::empty(302).with_header("Location", location).with_header("Cache-Control", "no-store")
}

fn json(status: u16, body: &Value) -> Response {
    Response::rendered(status, "application/json", body.to_string().into_bytes())
        .with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(status, &json!({"error": error, "error_description": description}))
}

/// A plain-text page for the user (errors that must not be redirected to an unverified place).
fn page(status: u16, message: &str) -> Response {
    Response::rendered(status, "text/plain; charset=utf-8", message.as_bytes().to_vec())
        .with_header("Cache-Control", "no-store")
}

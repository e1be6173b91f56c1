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
//! Any replica serves any step: the state of each step travels sealed in the value the step
//! hands out ([`sealed`]: the `launch`, the upstream `state`, the picker's `session`, the app's
//! `code`, each bound to its kind, expiring, unreadable and unforgeable without the shared
//! paging key), and each value is used once across replicas by claiming its id in the shared
//! store ([`claims`]). The signing key is shared by file (`smart.proxy.key_file`), the
//! sealing key is the paging key (`federation.paging_key_file`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fhirgate_engine::interaction::{Request, Response, percent_encode};
use fhirgate_engine::storage::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub mod claims;
mod picker;
pub mod sealed;

use sealed::Kind;

use super::scopes::{self, Scope};
use crate::auth::local::LocalIssuer;
use crate::auth::{Authenticator, Identity};
use crate::config::{Config, SmartClient, SmartProxyConfig};
use crate::error::GatewayError;

/// The proxy's signing key file in the data directory.
pub const KEY_FILE: &str = "smart-proxy-key.p8";

/// A launch context fixed by an EHR (sealed in its `launch` value).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Launch {
    #[serde(rename = "p")]
    patient: String,
    #[serde(rename = "e")]
    encounter: String,
}

/// An authorization sent upstream, waiting for its callback (sealed in the upstream `state`).
#[derive(Serialize, Deserialize)]
struct Pending {
    #[serde(rename = "c")]
    client_id: String,
    #[serde(rename = "r")]
    redirect_uri: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "x")]
    code_challenge: String,
    /// The app's `scope`, as asked.
    #[serde(rename = "o")]
    scope: String,
    #[serde(rename = "l")]
    launch: Option<Launch>,
    /// fhirgate's own PKCE verifier toward the provider.
    #[serde(rename = "v")]
    verifier: String,
    /// The app's OpenID Connect `nonce`, echoed in the `id_token`.
    #[serde(rename = "n")]
    nonce: Option<String>,
}

impl Pending {
    fn scopes(&self) -> Vec<Scope> {
        scopes::parse(&self.scope)
    }
}

/// A code issued to an app, with the token response it redeems (sealed in the code: the
/// tokens in it are readable by no one but the replicas).
#[derive(Serialize, Deserialize)]
struct Issued {
    #[serde(rename = "c")]
    client_id: String,
    #[serde(rename = "r")]
    redirect_uri: String,
    #[serde(rename = "x")]
    code_challenge: String,
    #[serde(rename = "b")]
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
    /// Seals the state of each step into the value it hands out.
    sealer: sealed::Sealer,
    /// Burns each value on its use.
    claims: claims::Claims,
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
        if crate::routing::Routing::local_store_urls(config).is_empty() {
            tracing::warn!(
                "SMART proxy without a local store: its one-time values (codes, states, launches, picker \
                 sessions) are burnt in this process only; run one replica, or give it a local target"
            );
        }
        Ok(Self {
            sealer: sealed::Sealer::new(crate::paging::keys(config)?),
            claims: claims::Claims::new(),
            signer: signer(config)?,
            patient_claim: config.auth.patient_claim.clone(),
            config: proxy,
            base,
            audiences,
            upstream_secret,
            client_secrets,
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

    /// Opens `value` as a `kind` and claims it: what it carries on its first use anywhere;
    /// `Ok(None)` when it is not one (forged, altered, expired) or was used already; `Err`
    /// when the store cannot say.
    async fn use_once<T: serde::de::DeserializeOwned>(
        &self,
        store: Option<&Arc<dyn Store>>,
        kind: Kind,
        value: &str,
    ) -> Result<Option<T>, GatewayError> {
        let Some(opened) = self.sealer.open::<T>(kind, value) else { return Ok(None) };
        let first = self.claims.claim(store, kind, &opened.jti, opened.expires).await?;
        Ok(first.then_some(opened.value))
    }

    /// `GET /auth/authorize`; `store`: the store one-time values are claimed in.
    pub async fn authorize(&self, request: &Request, store: Option<&Arc<dyn Store>>) -> Response {
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
            Some(value) => match self.use_once::<Launch>(store, Kind::Launch, value).await {
                Ok(Some(launch)) => Some(launch),
                Ok(None) => return refuse("invalid_request", "unknown, expired or already used `launch`"),
                Err(e) => {
                    tracing::error!(error = %e, "SMART proxy: a launch cannot be claimed");
                    return refuse("temporarily_unavailable", "the server cannot check the launch now");
                }
            },
        };
        let scope = param("scope");
        let scopes = scopes::parse(&scope);
        let verifier = random_token();
        let pending = Pending {
            client_id,
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            code_challenge: challenge,
            scope,
            launch,
            verifier,
            nonce: request.param("nonce").filter(|n| !n.is_empty() && n.len() <= 256).map(str::to_string),
        };
        let Some(upstream_state) = self.sealer.seal(Kind::State, &pending) else {
            return refuse("invalid_request", "`state` and `scope` are too long");
        };
        let verifier = &pending.verifier;
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
        redirect(&location)
    }

    fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.base)
    }

    /// `GET /auth/callback`: the provider's answer.
    pub async fn callback(&self, request: &Request, auth: &Authenticator, store: Option<&Arc<dyn Store>>) -> Response {
        let state = request.param("state").unwrap_or_default();
        let pending = match self.use_once::<Pending>(store, Kind::State, state).await {
            Ok(Some(pending)) => pending,
            Ok(None) => return page(400, "unknown, expired or already used authorization: start again from the app"),
            Err(e) => {
                tracing::error!(error = %e, "SMART proxy: a state cannot be claimed");
                return page(503, "the server cannot finish the sign-in now: start again from the app");
            }
        };
        let back = |pairs: &[(&str, &str)]| Self::back(&pending, pairs);
        if request.param("error").is_some() {
            return back(&[("error", "access_denied"), ("error_description", "the identity provider refused")]);
        }
        let code = request.param("code").unwrap_or_default().to_string();
        let (identity, upstream_token) = match self.redeem_upstream(&code, &pending.verifier, auth).await {
            Ok(verified) => verified,
            Err(why) => {
                tracing::warn!(error = %why, "SMART proxy: the upstream code could not be redeemed");
                return back(&[
                    ("error", "access_denied"),
                    ("error_description", "the identity provider's token was not accepted"),
                ]);
            }
        };
        let wants_patient = pending.scopes().iter().any(|s| *s == Scope::Local("launch/patient".into()));
        let launch = match &pending.launch {
            Some(launch) => launch.clone(),
            None => {
                let own = identity.principal.fhir_user.strip_prefix("Patient/").unwrap_or_default().to_string();
                if wants_patient && own.is_empty() {
                    // A user who is no patient picks one, on fhirgate's own page.
                    return self.start_pick(pending, upstream_token);
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
        let requested = pending.scopes();
        let scope = scopes::granted(&requested, &principal.scopes, &self.config.scope_prefix).join(" ");
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
        if requested.contains(&Scope::Oidc("openid".into())) {
            // Who signed in, for the app (SMART `sso-openid-connect`): `fhirUser` with that scope.
            let mut id = json!({"sub": principal.subject});
            if requested.contains(&Scope::Local("fhirUser".into())) && !principal.fhir_user.is_empty() {
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
        let issued = Issued {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            body,
        };
        let Some(code) = self.sealer.seal(Kind::Code, &issued) else {
            tracing::error!("SMART proxy: cannot seal a code");
            return back(&[("error", "server_error")]);
        };
        let record = json!({"event": "smart-authorization", "subject": principal.subject, "issuer": principal.issuer,
                            "tenant": principal.tenant, "client_id": pending.client_id, "scope": scope,
                            "patient": launch.patient, "encounter": launch.encounter,
                            "ehr_launch": pending.launch.is_some()});
        tracing::info!(target: "audit", record = %record, "SMART authorization");
        back(&[("code", &code)])
    }

    /// Redeems the provider's code and verifies the access token it gives: who it names, and
    /// the token.
    async fn redeem_upstream(
        &self,
        code: &str,
        verifier: &str,
        auth: &Authenticator,
    ) -> Result<(Arc<Identity>, String), String> {
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
        Ok((self.verify_upstream(token, auth).await?, token.to_string()))
    }

    /// Who an upstream access token names, verified as any request's token is; only a token of
    /// a real issuer, never one this server signed itself.
    async fn verify_upstream(&self, token: &str, auth: &Authenticator) -> Result<Arc<Identity>, String> {
        let identity = auth.authenticate(Some(&format!("Bearer {token}"))).await.map_err(|e| e.to_string())?;
        if identity.principal.issuer == self.signer.issuer || auth.is_local_issuer(&identity.principal.issuer) {
            return Err("the upstream token is fhirgate's own".into());
        }
        Ok(identity)
    }

    /// `POST /auth/token`.
    pub async fn token(
        &self,
        request: &Request,
        authorization: Option<&str>,
        store: Option<&Arc<dyn Store>>,
    ) -> Response {
        let form = fhirgate_engine::interaction::parse_query(&String::from_utf8_lossy(&request.body));
        let get = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
        if get("grant_type") != "authorization_code" {
            return oauth_error(400, "unsupported_grant_type", "only `authorization_code` is supported");
        }
        // Any attempt burns the code, on every replica: a replay, or a guess after a failure,
        // finds nothing.
        let issued = match self.use_once::<Issued>(store, Kind::Code, get("code")).await {
            Ok(Some(issued)) => issued,
            Ok(None) => return oauth_error(400, "invalid_grant", "unknown, expired or already used code"),
            Err(e) => {
                tracing::error!(error = %e, "SMART proxy: a code cannot be claimed");
                return oauth_error(503, "temporarily_unavailable", "the code cannot be checked now; try again");
            }
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
        let principal = identity.map(|i| &i.principal);
        let record = json!({"event": "smart-launch", "subject": principal.map(|p| p.subject.as_str()),
                            "issuer": principal.map(|p| p.issuer.as_str()), "patient": patient, "encounter": encounter});
        let Some(id) = self.sealer.seal(Kind::Launch, &Launch { patient, encounter }) else {
            return oauth_error(500, "server_error", "cannot seal the launch context");
        };
        tracing::info!(target: "audit", record = %record, "SMART launch context");
        json(201, &json!({"launch": id, "expires_in": Kind::Launch.ttl()}))
    }
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

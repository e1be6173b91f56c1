//! Authentication: `Authorization: Bearer <JWT>` from a trusted issuer, verified (signature,
//! algorithm, `exp`/`nbf` with clock skew, issuer, audience, tenant) and turned into a
//! [`Principal`]. Verified tokens are cached by their SHA-256 until they expire.
//!
//! - [`issuer`]: which issuers are trusted and their tenant rules.
//! - [`jwks`]: their signing keys (OIDC discovery, cache, rate-limited refresh).
//! - [`local`]: the server as its own development issuer.

pub mod issuer;
pub mod jwks;
pub mod local;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fhirgate_policies::Principal;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, Config, IssuerConfig};
use crate::error::GatewayError;
use issuer::TrustedIssuer;
use jwks::KeyStore;
use local::LocalIssuer;

/// Asymmetric algorithms only: `none` and the HMAC family are never accepted.
const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub principal: Principal,
    /// `exp`, Unix seconds.
    pub expires: u64,
    /// The token's claims that routes choose by (`[[routes]] claim`), as the token has them.
    pub route_claims: Vec<(String, Value)>,
}

impl Identity {
    /// Whether claim `name` is `value`, or is a list holding it.
    pub fn has_claim(&self, name: &str, value: &str) -> bool {
        self.route_claims.iter().filter(|(n, _)| n == name).any(|(_, v)| match v {
            Value::String(s) => s == value,
            Value::Array(items) => items.iter().any(|i| i.as_str() == Some(value)),
            Value::Number(n) => n.as_i64().is_some_and(|i| value.parse::<i64>() == Ok(i)),
            Value::Bool(b) => value == if *b { "true" } else { "false" },
            _ => false,
        })
    }
}

/// Verifies bearer tokens.
pub struct Authenticator {
    config: AuthConfig,
    issuers: Vec<TrustedIssuer>,
    keys: KeyStore,
    verified: moka::sync::Cache<[u8; 32], Arc<Identity>>,
    /// Claims the routes choose by, kept in each [`Identity`].
    route_claims: Vec<String>,
    /// The development issuer's `iss`, when it is on.
    local_issuers: Vec<String>,
}

impl Authenticator {
    /// Trusts the configured issuers, and the local one when it is on.
    pub fn new(config: &Config) -> Result<Self, GatewayError> {
        let auth = config.auth.clone();
        let mut keys = KeyStore::new(
            Duration::from_secs(auth.jwks_max_age_seconds.max(1)),
            Duration::from_secs(auth.jwks_min_refresh_seconds),
        );
        let mut issuers: Vec<TrustedIssuer> = auth.issuers.iter().cloned().map(TrustedIssuer::new).collect();
        for issuer in issuers.iter().filter(|i| i.is_multi_tenant() && i.config.allowed_tenants.is_empty()) {
            tracing::warn!(
                issuer = %issuer.config.issuer,
                "`allow_any_tenant = true`: tokens of EVERY Entra tenant are accepted, and each tenant's admins \
                 choose their users' `roles`; list `allowed_tenants` unless the policies check the tenant"
            );
        }
        if config.local_issuer_on() && !issuers.is_empty() {
            tracing::warn!(
                "the local development issuer is on BESIDE real issuers (`auth.local_issuer = true`): anyone who \
                 can read its key file in the data directory can mint `globalAdmin` tokens; remove the setting \
                 in production"
            );
        }
        let mut own = Vec::new();
        if config.smart.proxy.enabled {
            // The SMART proxy's tokens: signed by this server after it verified an upstream token.
            own.push(crate::smart::proxy::signer(config)?);
        }
        if config.local_issuer_on() {
            own.push(LocalIssuer::open(config)?);
        }
        let local_issuers: Vec<String> =
            if config.local_issuer_on() { vec![config.local_issuer_url()] } else { Vec::new() };
        for local in own {
            let trusted = TrustedIssuer::new(IssuerConfig {
                issuer: local.issuer.clone(),
                audiences: vec![local.audience.clone()],
                ..IssuerConfig::default()
            });
            keys.add_fixed(&trusted.discovery_url, local.jwks()?);
            issuers.push(trusted);
        }
        let verified = moka::sync::Cache::builder()
            .max_capacity(auth.token_cache_size)
            .time_to_live(Duration::from_secs(3600))
            .build();
        let mut route_claims: Vec<String> = config.routes().into_iter().filter_map(|r| r.claim).collect();
        route_claims.sort();
        route_claims.dedup();
        Ok(Self { config: auth, issuers, keys, verified, route_claims, local_issuers })
    }

    /// Whether `iss` is the development issuer's.
    pub fn is_local_issuer(&self, iss: &str) -> bool {
        self.local_issuers.iter().any(|l| l == iss)
    }

    /// The identity an `Authorization` header proves (counted in the metrics by outcome).
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Arc<Identity>, GatewayError> {
        let result = self.prove(header).await;
        crate::metrics::metrics().token(match &result {
            Ok(_) => "valid",
            Err(GatewayError::MissingToken) => "missing",
            Err(_) => "invalid",
        });
        result
    }

    async fn prove(&self, header: Option<&str>) -> Result<Arc<Identity>, GatewayError> {
        let header = header.ok_or(GatewayError::MissingToken)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(GatewayError::InvalidToken("the `Authorization` header is not `Bearer <token>`".into())),
        };
        if token.len() > self.config.max_token_bytes {
            return Err(GatewayError::InvalidToken(format!(
                "the token is larger than {} bytes",
                self.config.max_token_bytes
            )));
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_seconds();
        if let Some(identity) = self.verified.get(&hash) {
            if identity.expires + self.config.clock_skew_seconds > now {
                crate::metrics::metrics().token_cache(true);
                return Ok(identity);
            }
            self.verified.invalidate(&hash);
        }
        crate::metrics::metrics().token_cache(false);
        let identity = Arc::new(self.verify(token).await?);
        self.verified.insert(hash, identity.clone());
        Ok(identity)
    }

    async fn verify(&self, token: &str) -> Result<Identity, GatewayError> {
        let malformed = |what: &str| GatewayError::InvalidToken(format!("malformed token: {what}"));
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, _signature] = parts.as_slice() else {
            return Err(malformed("expected three dot-separated parts"));
        };
        let header_json: Value = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| malformed("the header is not base64url JSON"))?;
        let alg_name = header_json.get("alg").and_then(Value::as_str).unwrap_or_default();
        let alg = ALLOWED
            .into_iter()
            .find(|a| format!("{a:?}") == alg_name)
            .ok_or_else(|| GatewayError::InvalidToken(format!("algorithm `{alg_name}` is not accepted")))?;
        let kid = header_json.get("kid").and_then(Value::as_str);
        // Read the issuer before verifying, only to pick its keys.
        let unverified: Value = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| malformed("the payload is not base64url JSON"))?;
        let iss = unverified.get("iss").and_then(Value::as_str).ok_or_else(|| malformed("no `iss` claim"))?;
        let (trusted, iss_tenant) = self
            .issuers
            .iter()
            .find_map(|i| i.matches(iss).map(|tenant| (i, tenant)))
            .ok_or_else(|| GatewayError::InvalidToken(format!("issuer `{iss}` is not trusted")))?;
        let jwk = self.keys.key(&trusted.discovery_url, kid).await?;
        if let Some(key_alg) = jwk.common.key_algorithm {
            if format!("{key_alg:?}") != alg_name {
                return Err(GatewayError::InvalidToken(format!("algorithm `{alg_name}` does not match the key")));
            }
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| GatewayError::InvalidToken(format!("unusable signing key: {e}")))?;
        let mut validation = Validation::new(alg);
        validation.leeway = self.config.clock_skew_seconds;
        validation.validate_nbf = true;
        validation.set_audience(&trusted.config.audiences);
        validation.set_issuer(&[iss]);
        validation.required_spec_claims = HashSet::from(["exp".to_string(), "iss".to_string(), "aud".to_string()]);
        let claims: Value = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| GatewayError::InvalidToken(describe(&e)))?
            .claims;
        trusted.check_tenant(iss_tenant.as_deref(), claims.get("tid").and_then(Value::as_str))?;
        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or_default();
        let route_claims =
            self.route_claims.iter().filter_map(|c| claims.get(c).map(|v| (c.clone(), v.clone()))).collect();
        Ok(Identity { principal: Principal::from_claims(&claims, &self.config.patient_claim), expires, route_claims })
    }
}

fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".into(),
        ErrorKind::InvalidSignature => "the signature does not verify".into(),
        ErrorKind::InvalidAudience => "the audience is not accepted".into(),
        ErrorKind::InvalidIssuer => "the issuer is not accepted".into(),
        ErrorKind::InvalidAlgorithm => "the algorithm does not match the key".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the `{c}` claim is missing"),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

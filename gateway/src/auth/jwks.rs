//! Signing keys of trusted issuers: OIDC discovery (`jwks_uri`) then the JWKS. An unknown `kid`
//! triggers a refresh (key rotation needs no restart), at most once per
//! `jwks_min_refresh_seconds` per issuer, so a flood of tokens with random `kid`s cannot hammer
//! the issuer. Fetches run on the blocking pool, one at a time.
//!
//! Only signature keys are kept: a key whose `use` is present and not `sig`, or whose `key_ops`
//! are present without `verify`, is ignored, as is a key this library cannot read. Keys are
//! fetched again after `jwks_max_age_seconds`; when that refresh fails (issuer down, bad
//! answer), the keys already known keep serving until a refresh succeeds, however long that
//! takes, with a new attempt at most every `jwks_min_refresh_seconds` and a warning each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse};
use serde_json::Value;

use crate::error::GatewayError;

/// A key set and when it was fetched.
#[derive(Clone)]
struct Fetched {
    set: Arc<JwkSet>,
    at: Instant,
}

/// Key sets by discovery URL.
pub struct KeyStore {
    /// The last key set fetched successfully from each source, kept while refreshes fail.
    sets: Mutex<HashMap<String, Fetched>>,
    /// Key sets that never change (the local issuer's), by discovery URL.
    fixed: HashMap<String, Arc<JwkSet>>,
    /// When each source was last fetched (or tried).
    last_fetch: Mutex<HashMap<String, Instant>>,
    fetching: tokio::sync::Mutex<()>,
    max_age: Duration,
    min_refresh: Duration,
    agent: ureq::Agent,
}

impl KeyStore {
    pub fn new(max_age: Duration, min_refresh: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(true)
            .build()
            .new_agent();
        Self {
            sets: Mutex::new(HashMap::new()),
            fixed: HashMap::new(),
            last_fetch: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
            max_age,
            min_refresh,
            agent,
        }
    }

    /// Registers a key set that is known without fetching.
    pub fn add_fixed(&mut self, source: &str, set: JwkSet) {
        self.fixed.insert(source.to_string(), Arc::new(set));
    }

    /// The key `kid` (or the only key, when the token names none) of the issuer whose discovery
    /// document is at `source`.
    pub async fn key(&self, source: &str, kid: Option<&str>) -> Result<Jwk, GatewayError> {
        if let Some(set) = self.fixed.get(source) {
            return find(set, kid).ok_or_else(|| unknown(kid));
        }
        if let Some(key) = self.cached(source, kid, true) {
            return Ok(key);
        }
        // Unknown kid, stale or nothing cached: refresh, unless this source was fetched recently.
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(key) = self.cached(source, kid, true) {
            return Ok(key); // another request refreshed meanwhile
        }
        if !self.may_fetch(source) {
            return self.cached(source, kid, false).ok_or_else(|| unknown(kid));
        }
        let agent = self.agent.clone();
        let url = source.to_string();
        let fetched = tokio::task::spawn_blocking(move || fetch(&agent, &url))
            .await
            .map_err(|e| GatewayError::InvalidToken(format!("cannot fetch the issuer's keys: {e}")))?;
        match fetched {
            Ok(set) => {
                tracing::info!(source, keys = set.keys.len(), "issuer signing keys fetched");
                let set = Arc::new(set);
                if let Ok(mut sets) = self.sets.lock() {
                    sets.insert(source.to_string(), Fetched { set: set.clone(), at: Instant::now() });
                }
                find(&set, kid).ok_or_else(|| unknown(kid))
            }
            Err(e) => {
                let known = self.cached(source, kid, false);
                tracing::warn!(source, error = %e, kept = self.known(source),
                    "cannot fetch the issuer's signing keys; the keys already known stay in use");
                known.ok_or_else(|| match self.known(source) {
                    0 => GatewayError::InvalidToken("the issuer's signing keys are unavailable".into()),
                    _ => unknown(kid),
                })
            }
        }
    }

    /// The key from the last successful fetch; with `fresh_only`, only if that is younger than
    /// the maximum age.
    fn cached(&self, source: &str, kid: Option<&str>, fresh_only: bool) -> Option<Jwk> {
        let fetched = self.sets.lock().ok()?.get(source).cloned()?;
        if fresh_only && fetched.at.elapsed() >= self.max_age {
            return None;
        }
        find(&fetched.set, kid)
    }

    /// How many keys of `source` are known.
    fn known(&self, source: &str) -> usize {
        self.sets.lock().ok().and_then(|s| s.get(source).map(|f| f.set.keys.len())).unwrap_or(0)
    }

    /// Records a fetch attempt now if the last one is older than the refresh interval.
    fn may_fetch(&self, source: &str) -> bool {
        let Ok(mut last) = self.last_fetch.lock() else { return false };
        let now = Instant::now();
        match last.get(source) {
            Some(at) if now.duration_since(*at) < self.min_refresh => false,
            _ => {
                last.insert(source.to_string(), now);
                true
            }
        }
    }
}

fn unknown(kid: Option<&str>) -> GatewayError {
    match kid {
        Some(kid) => GatewayError::InvalidToken(format!("unknown signing key `{kid}`")),
        None => GatewayError::InvalidToken("the token names no key (`kid`) and the issuer has several".into()),
    }
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// Whether a key may verify signatures: `use` absent or `sig`, `key_ops` absent or with `verify`.
fn verifies(key: &Jwk) -> bool {
    let use_ok = key.common.public_key_use.as_ref().is_none_or(|u| matches!(u, PublicKeyUse::Signature));
    let ops_ok =
        key.common.key_operations.as_ref().is_none_or(|ops| ops.iter().any(|o| matches!(o, KeyOperations::Verify)));
    use_ok && ops_ok
}

/// The signature keys of a JWKS document; keys for other uses, or that cannot be read, are left
/// out (one odd key does not lose the others).
fn signature_keys(document: &Value) -> Result<JwkSet, String> {
    let keys = document.get("keys").and_then(Value::as_array).ok_or("no `keys` array")?;
    let keys = keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).filter(verifies).collect();
    Ok(JwkSet { keys })
}

/// Discovery document, then its `jwks_uri`.
fn fetch(agent: &ureq::Agent, discovery_url: &str) -> Result<JwkSet, String> {
    let get = |url: &str| -> Result<Value, String> {
        let text = agent
            .get(url)
            .call()
            .map_err(|e| format!("`{url}`: {e}"))?
            .into_body()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("`{url}`: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("`{url}`: {e}"))
    };
    let discovery = get(discovery_url)?;
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{discovery_url}` has no `jwks_uri`"))?;
    signature_keys(&get(jwks_uri)?).map_err(|e| format!("`{jwks_uri}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec(kid: &str, extra: Value) -> Value {
        let mut key = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        if let (Some(map), Value::Object(more)) = (key.as_object_mut(), extra) {
            map.extend(more);
        }
        key
    }

    #[test]
    fn only_signature_keys_are_kept() -> Result<(), String> {
        let document = serde_json::json!({"keys": [
            ec("plain", serde_json::json!({})),
            ec("sig", serde_json::json!({"use": "sig"})),
            ec("enc", serde_json::json!({"use": "enc"})),
            ec("verify", serde_json::json!({"key_ops": ["verify"]})),
            ec("encrypt-only", serde_json::json!({"key_ops": ["encrypt", "wrapKey"]})),
            "not a key",
        ]});
        let set = signature_keys(&document)?;
        let kids: Vec<_> = set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        assert_eq!(kids, ["plain", "sig", "verify"]);
        assert!(signature_keys(&serde_json::json!({"nothing": 1})).is_err());
        Ok(())
    }

    #[tokio::test]
    async fn known_keys_outlive_a_failed_refresh() -> Result<(), GatewayError> {
        // Nothing listens on port 9 of loopback: every fetch fails at once.
        let source = "http://127.0.0.1:9/.well-known/openid-configuration";
        let store = KeyStore::new(Duration::from_millis(1), Duration::ZERO);
        let set = signature_keys(&serde_json::json!({"keys": [ec("k1", serde_json::json!({}))]}))
            .map_err(GatewayError::InvalidToken)?;
        let old = Instant::now().checked_sub(Duration::from_secs(10)).unwrap_or_else(Instant::now);
        if let Ok(mut sets) = store.sets.lock() {
            sets.insert(source.to_string(), Fetched { set: Arc::new(set), at: old });
        }
        let key = store.key(source, Some("k1")).await?;
        assert_eq!(key.common.key_id.as_deref(), Some("k1"), "stale, the refresh failed: still served");
        assert!(store.key(source, Some("k2")).await.is_err(), "an unknown kid stays unknown");
        assert!(store.key("http://127.0.0.1:9/other", Some("k1")).await.is_err(), "nothing known: refused");
        Ok(())
    }
}

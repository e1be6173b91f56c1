//! Signing keys of trusted issuers: OIDC discovery (`jwks_uri`) then the JWKS, cached in moka.
//! An unknown `kid` triggers a refresh (key rotation needs no restart), at most once per
//! `jwks_min_refresh_seconds` per issuer, so a flood of tokens with random `kid`s cannot hammer
//! the issuer. Fetches run on the blocking pool, one at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::error::GatewayError;

/// Cached key sets by discovery URL.
pub struct KeyStore {
    sets: moka::sync::Cache<String, Arc<JwkSet>>,
    /// Key sets that never change (the local issuer's), by discovery URL.
    fixed: HashMap<String, Arc<JwkSet>>,
    /// When each source was last fetched (or tried).
    last_fetch: Mutex<HashMap<String, Instant>>,
    fetching: tokio::sync::Mutex<()>,
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
            sets: moka::sync::Cache::builder().max_capacity(64).time_to_live(max_age).build(),
            fixed: HashMap::new(),
            last_fetch: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
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
    pub async fn key(&self, source: &str, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, GatewayError> {
        if let Some(set) = self.fixed.get(source) {
            return find(set, kid).ok_or_else(|| unknown(kid));
        }
        if let Some(set) = self.sets.get(source) {
            if let Some(key) = find(&set, kid) {
                return Ok(key);
            }
        }
        // Unknown kid, or nothing cached: refresh, unless this source was fetched recently.
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(set) = self.sets.get(source) {
            if let Some(key) = find(&set, kid) {
                return Ok(key); // another request refreshed meanwhile
            }
        }
        if !self.may_fetch(source) {
            return Err(unknown(kid));
        }
        let agent = self.agent.clone();
        let url = source.to_string();
        let fetched = tokio::task::spawn_blocking(move || fetch(&agent, &url))
            .await
            .map_err(|e| GatewayError::InvalidToken(format!("cannot fetch the issuer's keys: {e}")))?;
        let set = match fetched {
            Ok(set) => Arc::new(set),
            Err(e) => {
                tracing::warn!(source, error = %e, "cannot fetch the issuer's signing keys");
                return Err(GatewayError::InvalidToken("the issuer's signing keys are unavailable".into()));
            }
        };
        tracing::info!(source, keys = set.keys.len(), "issuer signing keys fetched");
        self.sets.insert(source.to_string(), set.clone());
        find(&set, kid).ok_or_else(|| unknown(kid))
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

fn find(set: &JwkSet, kid: Option<&str>) -> Option<jsonwebtoken::jwk::Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

/// Discovery document, then its `jwks_uri`.
fn fetch(agent: &ureq::Agent, discovery_url: &str) -> Result<JwkSet, String> {
    let get = |url: &str| -> Result<String, String> {
        agent
            .get(url)
            .call()
            .map_err(|e| format!("`{url}`: {e}"))?
            .into_body()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("`{url}`: {e}"))
    };
    let discovery: serde_json::Value =
        serde_json::from_str(&get(discovery_url)?).map_err(|e| format!("`{discovery_url}`: {e}"))?;
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("`{discovery_url}` has no `jwks_uri`"))?;
    serde_json::from_str(&get(jwks_uri)?).map_err(|e| format!("`{jwks_uri}`: {e}"))
}

//! The proxy's state carried in the values it hands out, so any replica serves each step of a
//! launch: the EHR `launch` value, the upstream `state`, the picker's `session` and the app's
//! `code` are each the state of that step sealed (AES-256-GCM, with the engine's sealing,
//! [`fhirgate_engine::seal`], and the gateway's paging keys, [`crate::paging::keys`]: the keys
//! page links are sealed with, shared by every replica). Nobody but the replicas can read,
//! forge or alter one: the PKCE verifier toward the provider, the user's upstream token and
//! the signed fhirgate token inside stay secret.
//!
//! Each value is bound to what it was issued for: the associated data names its [`Kind`], so
//! a `launch` never opens as a `code`, nor a page link as either. Each carries its expiry
//! (Unix seconds) and a random id (`jti`) that [`super::claims`] burns in the shared store
//! when the value is used: that is what makes them one-time across replicas.

use std::sync::Arc;

use fhirgate_engine::seal::{Keys, unix_now};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format byte of every sealed proxy value.
const FORMAT: u8 = 1;
/// The most bytes of JSON a value may carry (an upstream `state` travels in a URL).
pub const MAX_PLAIN: usize = 6 * 1024;

/// What a sealed value is for, and how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An EHR's launch context (`POST /auth/launch`), 5 minutes.
    Launch,
    /// An authorization sent upstream, waiting for its callback, 10 minutes.
    State,
    /// A user picking the patient of a standalone launch, 10 minutes.
    Pick,
    /// The app's authorization code, 60 seconds.
    Code,
}

impl Kind {
    /// The associated data of its seals.
    fn aad(self) -> &'static [u8] {
        match self {
            Self::Launch => b"fhirgate smart launch v1",
            Self::State => b"fhirgate smart state v1",
            Self::Pick => b"fhirgate smart pick v1",
            Self::Code => b"fhirgate smart code v1",
        }
    }

    /// Its lifetime in seconds.
    pub fn ttl(self) -> i64 {
        match self {
            Self::Launch => 300,
            Self::State | Self::Pick => 600,
            Self::Code => 60,
        }
    }

    /// Its name in claim records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::State => "state",
            Self::Pick => "pick",
            Self::Code => "code",
        }
    }
}

/// A value opened: what it carries, its id and its expiry.
#[derive(Debug)]
pub struct Opened<T> {
    pub value: T,
    pub jti: String,
    pub expires: i64,
}

/// Seals and opens the proxy's values.
pub struct Sealer {
    keys: Arc<Keys>,
}

impl Sealer {
    pub fn new(keys: Arc<Keys>) -> Self {
        Self { keys }
    }

    /// `value` sealed as a `kind`, with a new id and `kind`'s lifetime from now; `None` when it
    /// is larger than [`MAX_PLAIN`] (or no randomness is left for the nonce).
    pub fn seal<T: Serialize>(&self, kind: Kind, value: &T) -> Option<String> {
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let plain = serde_json::to_vec(&(unix_now().saturating_add(kind.ttl()), jti, value)).ok()?;
        if plain.len() > MAX_PLAIN {
            return None;
        }
        self.keys.seal(FORMAT, kind.aad(), plain)
    }

    /// What a value sealed as a `kind` carries; `None` when it is not one (forged, altered,
    /// another kind, a retired key no longer accepted) or has expired.
    pub fn open<T: DeserializeOwned>(&self, kind: Kind, sealed: &str) -> Option<Opened<T>> {
        // Bounded before any work: a sealed value of the largest state is about 8.3 KB.
        if sealed.is_empty() || sealed.len() > MAX_PLAIN * 2 {
            return None;
        }
        let plain = self.keys.open(FORMAT, kind.aad(), sealed)?;
        let (expires, jti, value): (i64, String, T) = serde_json::from_slice(&plain).ok()?;
        (expires >= unix_now()).then_some(Opened { value, jti, expires })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Result<Sealer, String> {
        Ok(Sealer::new(Arc::new(Keys::new(&[byte; 32], &[])?)))
    }

    #[test]
    fn values_open_only_as_their_kind_under_the_shared_key() -> Result<(), String> {
        let (one, other) = (sealer(1)?, sealer(2)?);
        let sealed = one.seal(Kind::Launch, &("p1", "e1")).ok_or("no seal")?;
        let opened: Opened<(String, String)> = one.open(Kind::Launch, &sealed).ok_or("does not open")?;
        assert_eq!(opened.value, ("p1".to_string(), "e1".to_string()));
        assert_eq!(opened.jti.len(), 32);
        assert!(!sealed.contains("p1"), "nothing readable: {sealed}");
        assert!(one.open::<(String, String)>(Kind::Code, &sealed).is_none(), "another kind");
        assert!(other.open::<(String, String)>(Kind::Launch, &sealed).is_none(), "another key");
        let again: Opened<(String, String)> =
            one.open(Kind::Launch, &one.seal(Kind::Launch, &("p1", "e1")).ok_or("")?).ok_or("")?;
        assert_ne!(again.jti, opened.jti, "a new id each time");
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).map_err(|e| e.to_string())?;
        assert!(one.open::<(String, String)>(Kind::Launch, &altered).is_none(), "altered");
        assert!(one.seal(Kind::State, &"x".repeat(MAX_PLAIN)).is_none(), "too large to travel in a URL");
        assert!(one.open::<String>(Kind::State, &"A".repeat(MAX_PLAIN * 3)).is_none());
        Ok(())
    }

    #[test]
    fn an_expired_value_does_not_open() -> Result<(), String> {
        let one = sealer(1)?;
        let plain = serde_json::to_vec(&(unix_now() - 1, "j", "v")).map_err(|e| e.to_string())?;
        let sealed = one.keys.seal(FORMAT, Kind::Code.aad(), plain).ok_or("no seal")?;
        assert!(one.open::<String>(Kind::Code, &sealed).is_none());
        Ok(())
    }
}

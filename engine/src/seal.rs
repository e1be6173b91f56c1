//! Sealing of state a link carries (AES-256-GCM): the search page links of the engine
//! (`_page`) and the gateway's federated ones (`_getpages`) put their state in the link, so any
//! replica that holds the same key serves them, and no client can read, forge or alter them.
//!
//! A sealed value is base64url (no padding) of `format (1 byte) || nonce (12) || ciphertext ||
//! tag (16)`. The nonce is random per seal; the associated data names the kind of link and
//! its format, so a value of one kind never opens as another.
//!
//! Key rotation: values are sealed with the current key and opened with it or any retired key,
//! so a new key can be rolled out to every replica while links sealed with the old one keep
//! working until they expire; then the old key is dropped.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The length of a key: AES-256.
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The keys links are sealed with: the current one, and retired ones still accepted.
pub struct Keys {
    current: LessSafeKey,
    retired: Vec<LessSafeKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("retired", &self.retired.len()).finish_non_exhaustive()
    }
}

fn key(bytes: &[u8]) -> Result<LessSafeKey, String> {
    if bytes.len() != KEY_LEN {
        return Err(format!("{} bytes, not a {KEY_LEN}-byte key", bytes.len()));
    }
    UnboundKey::new(&AES_256_GCM, bytes).map(LessSafeKey::new).map_err(|e| format!("not a key: {e}"))
}

impl Keys {
    /// Seals with `current` and opens with it or any of `retired` (each [`KEY_LEN`] bytes).
    pub fn new(current: &[u8], retired: &[Vec<u8>]) -> Result<Self, String> {
        let retired = retired.iter().map(|k| key(k)).collect::<Result<_, _>>()?;
        Ok(Self { current: key(current)?, retired })
    }

    /// A random key of this process alone: its links open nowhere else, nor after a restart.
    pub fn random() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        // Without randomness the key is still private to the process (zeros are never used as
        // a shared key: a shared key comes from a file).
        let _ = SystemRandom::new().fill(&mut bytes);
        let current = key(&bytes).unwrap_or_else(|_| unreachable_key());
        Self { current, retired: Vec::new() }
    }

    /// `plain` sealed for links of the kind `format`/`aad`; `None` without randomness for the
    /// nonce.
    pub fn seal(&self, format: u8, aad: &[u8], mut plain: Vec<u8>) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        self.current.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut plain).ok()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len());
        out.push(format);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plain);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// What a value sealed by [`Self::seal`] with the same `format` and `aad` under any of the
    /// keys holds; `None` when it is not such a value (forged, altered, another kind, a key
    /// no longer accepted).
    pub fn open(&self, format: u8, aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != format || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, data) = rest.split_at(NONCE_LEN);
        std::iter::once(&self.current).chain(&self.retired).find_map(|key| {
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut data = data.to_vec();
            let plain = key.open_in_place(nonce, Aad::from(aad), &mut data).ok()?;
            Some(plain.to_vec())
        })
    }
}

/// Unix seconds now: the clock of link expiries.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A key of 32 bytes always makes an AES-256 key; this is never called.
fn unreachable_key() -> LessSafeKey {
    #[expect(clippy::expect_used, reason = "32 bytes always make an AES-256 key")]
    let key = UnboundKey::new(&AES_256_GCM, &[7u8; KEY_LEN]).expect("a 32-byte key");
    LessSafeKey::new(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_under_the_current_and_retired_keys_only_for_their_kind() -> Result<(), String> {
        let (old, new) = (vec![1u8; KEY_LEN], vec![2u8; KEY_LEN]);
        let before = Keys::new(&old, &[])?;
        let sealed_old = before.seal(1, b"a", b"state".to_vec()).ok_or("no seal")?;
        let rotated = Keys::new(&new, std::slice::from_ref(&old))?;
        assert_eq!(rotated.open(1, b"a", &sealed_old).as_deref(), Some(&b"state"[..]), "retired key accepted");
        let sealed_new = rotated.seal(1, b"a", b"next".to_vec()).ok_or("no seal")?;
        assert_eq!(before.open(1, b"a", &sealed_new), None, "a replica with the old key only cannot open it");
        assert_eq!(Keys::new(&new, &[])?.open(1, b"a", &sealed_old), None, "retired key dropped");
        assert_eq!(rotated.open(1, b"b", &sealed_new), None, "another kind of link");
        assert_eq!(rotated.open(2, b"a", &sealed_new), None, "another format");
        assert!(Keys::new(&[0; 16], &[]).is_err() && Keys::new(&new, &[vec![0; 31]]).is_err());
        assert_ne!(Keys::random().seal(1, b"a", vec![]), Keys::random().seal(1, b"a", vec![]));
        Ok(())
    }
}

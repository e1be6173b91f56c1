//! The development issuer: the server signs its own tokens (ES256) with a key generated once and
//! kept in the data directory (`local-issuer-key.p8`, PKCS#8, mode 0600, see [`crate::keyfile`])
//! or in the file `auth.local_issuer_key_file` names (one secret shared by every replica). It serves its
//! discovery document and JWKS, and `fhirgate token` signs with the same key.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::GatewayError;
use crate::keyfile;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "local-issuer-key.p8";

/// The local issuer: URL, audience and signing key.
pub struct LocalIssuer {
    pub issuer: String,
    pub audience: String,
    pkcs8: Vec<u8>,
    kid: String,
    x: String,
    y: String,
}

impl LocalIssuer {
    /// Loads the key (`auth.local_issuer_key_file`, default in the data directory), creating
    /// it on first use.
    pub fn open(config: &Config) -> Result<Self, GatewayError> {
        let path = config.auth.local_issuer_key_file.clone().unwrap_or_else(|| config.store.data_dir.join(KEY_FILE));
        Self::open_at(&path, config.local_issuer_url(), config.auth.local_audience.clone())
    }

    /// An issuer signing with the key at `path` (created on first use), as `issuer` for `audience`.
    pub fn open_at(path: &Path, issuer: String, audience: String) -> Result<Self, GatewayError> {
        let pkcs8 = load_or_create(path)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|e| GatewayError::LocalIssuer(format!("`{}` is no P-256 key: {e}", path.display())))?;
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(GatewayError::LocalIssuer("unexpected public key encoding".into())),
        };
        let kid = Sha256::digest(point).iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Self { issuer, audience, pkcs8, kid, x: URL_SAFE_NO_PAD.encode(x), y: URL_SAFE_NO_PAD.encode(y) })
    }

    /// The public keys as a JWKS document.
    pub fn jwks_json(&self) -> Value {
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
                         "kid": self.kid, "x": self.x, "y": self.y}]})
    }

    /// The public keys, parsed.
    pub fn jwks(&self) -> Result<JwkSet, GatewayError> {
        serde_json::from_value(self.jwks_json()).map_err(|e| GatewayError::LocalIssuer(e.to_string()))
    }

    /// The OIDC discovery document.
    pub fn discovery_json(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "id_token_signing_alg_values_supported": ["ES256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })
    }

    /// A signed token with the issuer, audience and times filled in around `claims`.
    pub fn sign(&self, claims: Value, ttl_seconds: u64) -> Result<String, GatewayError> {
        self.sign_for(claims, ttl_seconds, &self.audience)
    }

    /// [`LocalIssuer::sign`] for another audience (an OpenID Connect `id_token` for a client).
    pub fn sign_for(&self, mut claims: Value, ttl_seconds: u64, audience: &str) -> Result<String, GatewayError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| GatewayError::LocalIssuer(e.to_string()))?
            .as_secs();
        if let Some(map) = claims.as_object_mut() {
            map.insert("iss".into(), json!(self.issuer));
            map.insert("aud".into(), json!(audience));
            map.insert("iat".into(), json!(now));
            map.insert("nbf".into(), json!(now));
            map.insert("exp".into(), json!(now + ttl_seconds));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| GatewayError::LocalIssuer(format!("cannot sign: {e}")))
    }
}

/// Reads the key, or creates it ([`crate::keyfile::load_or_create`]: a regular file only,
/// created exclusively with mode 0600).
fn load_or_create(path: &Path) -> Result<Vec<u8>, GatewayError> {
    let generate = || {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|pkcs8| pkcs8.as_ref().to_vec())
            .map_err(|e| std::io::Error::other(format!("cannot generate a key: {e}")))
    };
    keyfile::load_or_create(path, generate).map_err(|e| GatewayError::LocalIssuer(format!("`{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fhirgate-local-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn the_key_is_created_once_owner_only_and_without_leftovers() -> Result<(), GatewayError> {
        let dir = dir("create");
        let path = dir.join(KEY_FILE);
        let first = load_or_create(&path)?;
        assert_eq!(load_or_create(&path)?, first, "read back, not made again");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map_err(|e| GatewayError::LocalIssuer(e.to_string()))?;
            assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| GatewayError::LocalIssuer(e.to_string()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [KEY_FILE], "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_place_of_the_key_is_refused_and_never_written_through() -> Result<(), GatewayError> {
        let io = |e: std::io::Error| GatewayError::LocalIssuer(e.to_string());
        let dir = dir("symlink");
        let path = dir.join(KEY_FILE);
        // Dangling: creating the key must not create the target through the link.
        let target = dir.join("planted");
        std::os::unix::fs::symlink(&target, &path).map_err(io)?;
        assert!(load_or_create(&path).is_err());
        assert!(!target.exists(), "nothing written through the symlink");
        // Pointing at a key someone else knows: refused, not used.
        let known = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|e| GatewayError::LocalIssuer(e.to_string()))?;
        std::fs::write(&target, known.as_ref()).map_err(io)?;
        let err = load_or_create(&path);
        assert!(matches!(&err, Err(GatewayError::LocalIssuer(m)) if m.contains("symlink")), "{err:?}");
        assert_eq!(std::fs::read(&target).map_err(io)?, known.as_ref(), "the target is untouched");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}

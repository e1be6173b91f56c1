//! The development issuer: the server signs its own tokens (ES256) with a key generated once and
//! kept in the data directory (`local-issuer-key.p8`, PKCS#8, mode 0600). It serves its
//! discovery document and JWKS, and `fhirgate token` signs with the same key.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Loads the key from the data directory, creating it on first use.
    pub fn open(config: &Config) -> Result<Self, GatewayError> {
        let path = config.store.data_dir.join(KEY_FILE);
        let pkcs8 = load_or_create(&path)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|e| GatewayError::LocalIssuer(format!("`{}` is no P-256 key: {e}", path.display())))?;
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(GatewayError::LocalIssuer("unexpected public key encoding".into())),
        };
        let kid = Sha256::digest(point).iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            issuer: config.local_issuer_url(),
            audience: config.auth.local_audience.clone(),
            pkcs8,
            kid,
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
        })
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
    pub fn sign(&self, mut claims: Value, ttl_seconds: u64) -> Result<String, GatewayError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| GatewayError::LocalIssuer(e.to_string()))?
            .as_secs();
        if let Some(map) = claims.as_object_mut() {
            map.insert("iss".into(), json!(self.issuer));
            map.insert("aud".into(), json!(self.audience));
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

fn load_or_create(path: &Path) -> Result<Vec<u8>, GatewayError> {
    let err = |e: std::io::Error| GatewayError::LocalIssuer(format!("`{}`: {e}", path.display()));
    if let Ok(bytes) = std::fs::read(path) {
        return Ok(bytes);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|e| GatewayError::LocalIssuer(format!("cannot generate a key: {e}")))?;
    // Write aside, then link into place: a concurrent creator's key wins and both read it.
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(err)?;
        file.write_all(pkcs8.as_ref()).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(key = %path.display(), "local issuer key created");
            Ok(pkcs8.as_ref().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path).map_err(err),
        Err(e) => Err(err(e)),
    }
}

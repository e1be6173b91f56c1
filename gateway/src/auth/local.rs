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

/// Reads the key, or creates it. The file must be a regular file (a symlink in its place is
/// refused: whoever placed it would know the key). Creation never writes through a path someone
/// else may have prepared: the key goes to a new file with an unpredictable name, created
/// exclusively (`O_CREAT|O_EXCL`, which also refuses a symlink there) with mode 0600, then is
/// linked to its final name, which fails if anything (a concurrent creator's key, a symlink) is
/// there already; such a key written by a concurrent creator wins and both read it.
fn load_or_create(path: &Path) -> Result<Vec<u8>, GatewayError> {
    let err = |e: std::io::Error| GatewayError::LocalIssuer(format!("`{}`: {e}", path.display()));
    match read_key(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|e| GatewayError::LocalIssuer(format!("cannot generate a key: {e}")))?;
    let tmp = temporary_name(path)?;
    let written = write_new(&tmp, pkcs8.as_ref());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // The new name survives a crash once the directory is on disk too.
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            tracing::info!(key = %path.display(), "local issuer key created");
            Ok(pkcs8.as_ref().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path).map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// The key file's bytes; a symlink or anything but a regular file is refused, and the file
/// opened is checked to be the one looked at (no swap in between).
fn read_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let seen = std::fs::symlink_metadata(path)?;
    if !seen.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file (a symlink here is refused); remove it"));
    }
    let file = std::fs::File::open(path)?;
    let opened = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
            return Err(std::io::Error::other("the file changed while it was opened"));
        }
        if opened.mode() & 0o077 != 0 {
            tracing::warn!(key = %path.display(), mode = format!("{:o}", opened.mode() & 0o777),
                "the local issuer key is readable by other users: `chmod 600` it");
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0).min(4096));
    file.take(64 * 1024).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `<key file>.<32 random hex digits>.tmp`, beside the key file.
fn temporary_name(path: &Path) -> Result<PathBuf, GatewayError> {
    let mut random = [0u8; 16];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut random)
        .map_err(|e| GatewayError::LocalIssuer(format!("no randomness for a temporary name: {e}")))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(PathBuf::from(format!("{}.{suffix}.tmp", path.display())))
}

/// Writes `bytes` to a file that must not exist yet, readable by its owner only.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn temporary_names_are_unpredictable() -> Result<(), GatewayError> {
        let path = Path::new("/x/key.p8");
        let (a, b) = (temporary_name(path)?, temporary_name(path)?);
        assert_ne!(a, b);
        assert!(a.display().to_string().starts_with("/x/key.p8.") && a.display().to_string().len() > 40);
        Ok(())
    }
}

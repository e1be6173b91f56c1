//! A token issuer for end-to-end tests: real RSA (RS256) and EC (ES256) keys generated in the
//! test, real signatures, and a loopback HTTP server with the OIDC discovery document and the
//! JWKS, whose keys the test can rotate and whose JWKS fetches it can count.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::TestResult;

/// A signing key with its `kid`.
pub enum Key {
    Rsa { kid: String, pair: RsaKeyPair },
    Ec { kid: String, pair: EcdsaKeyPair },
}

impl Key {
    /// A new RSA 2048 key.
    pub fn rsa(kid: &str) -> TestResult<Self> {
        Ok(Self::Rsa { kid: kid.into(), pair: RsaKeyPair::generate(KeySize::Rsa2048)? })
    }

    /// A new P-256 key.
    pub fn ec(kid: &str) -> TestResult<Self> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())?;
        Ok(Self::Ec { kid: kid.into(), pair })
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Rsa { kid, .. } | Self::Ec { kid, .. } => kid,
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Rsa { kid, pair } => {
                let public = pair.public_key();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
            Self::Ec { kid, pair } => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        }
    }

    /// The JWS algorithm of the key.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RS256",
            Self::Ec { .. } => "ES256",
        }
    }

    /// A signed compact JWT with this key's `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> TestResult<String> {
        self.sign_with_header(&json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid()}), claims)
    }

    /// A JWT with any header, signed by this key.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> TestResult<String> {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let signature = match self {
            Self::Rsa { pair, .. } => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)?;
                sig
            }
            Self::Ec { pair, .. } => pair.sign(&rng, input.as_bytes())?.as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&signature)))
    }
}

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The loopback OIDC provider.
pub struct Idp {
    pub base: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    /// While set, every request gets 503 (the issuer is down).
    down: Arc<AtomicBool>,
}

impl Idp {
    /// Serves discovery at `<base>/.well-known/openid-configuration` and the JWKS at `<base>/jwks`.
    pub fn start(keys: &[&Key]) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let jwks = Arc::new(Mutex::new(json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (served, count, issuer, is_down) = (jwks.clone(), fetches.clone(), base.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = if is_down.load(Ordering::SeqCst) {
                    None
                } else if path.ends_with("/.well-known/openid-configuration") {
                    Some(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string())
                } else if path == "/jwks" {
                    count.fetch_add(1, Ordering::SeqCst);
                    served.lock().ok().map(|j| j.to_string())
                } else {
                    None
                };
                let response = match body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                        b.len()
                    ),
                    None if is_down.load(Ordering::SeqCst) => {
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    }
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                };
                let mut stream = stream;
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Ok(Self { base, jwks, fetches, down })
    }

    /// Publishes a JWKS document as given (keys with any `use`, `key_ops`, ...).
    pub fn publish_document(&self, document: Value) -> TestResult {
        *self.jwks.lock().map_err(|_| "poisoned")? = document;
        Ok(())
    }

    /// Takes the issuer down (every request 503) or back up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Replaces the published keys (rotation).
    pub fn publish(&self, keys: &[&Key]) -> TestResult {
        let mut jwks = self.jwks.lock().map_err(|_| "poisoned")?;
        *jwks = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        Ok(())
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Standard claims for this issuer and audience, valid for an hour, plus `extra`.
    pub fn claims(&self, audience: &str, extra: Value) -> Value {
        let now = now();
        let mut claims = json!({"iss": self.base, "aud": audience, "sub": "user-1", "oid": "user-1",
                                "iat": now, "nbf": now, "exp": now + 3600});
        if let (Some(map), Value::Object(more)) = (claims.as_object_mut(), extra) {
            map.extend(more);
        }
        claims
    }
}

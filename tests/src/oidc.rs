//! A small OpenID Connect provider standing in for Entra ID in the SMART proxy's tests: real
//! RS256 signatures over a published JWKS, an `authorize` endpoint that signs in one configured
//! user at once (no page), and a `token` endpoint that redeems a code once, checking the client,
//! its secret, the `redirect_uri` and the PKCE verifier. Access tokens carry Entra's claims:
//! `scp` (the granted scopes without the API's prefix), `oid`, `tid`, and the user's extra
//! claims (`fhirUser`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Value, json};

use crate::TestResult;
use crate::idp::{Key, b64, now};

/// What the provider is configured with.
pub struct Settings {
    pub client_id: String,
    pub client_secret: String,
    /// `aud` of its access tokens (the FHIR API's application id URI).
    pub audience: String,
    /// The prefix of the API's scopes (`api://fhirgate/`).
    pub scope_prefix: String,
    /// Claims of the signed-in user (merged into the access token).
    pub user: Value,
    /// Scope names (without prefix) the user has consented to; requests for others are dropped.
    pub consented: Vec<String>,
}

struct Code {
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
}

struct State {
    settings: Settings,
    codes: HashMap<String, Code>,
    counter: u64,
}

/// The running provider.
pub struct Oidc {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl Oidc {
    pub fn start(key: Key, settings: Settings) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(Mutex::new(State { settings, codes: HashMap::new(), counter: 0 }));
        let (shared, issuer, key) = (state.clone(), base.clone(), Arc::new(key));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (shared, issuer, key) = (shared.clone(), issuer.clone(), key.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared, &issuer, &key);
                });
            }
        });
        Ok(Self { base, state })
    }

    /// Changes the signed-in user's claims.
    pub fn set_user(&self, user: Value) -> TestResult {
        self.state.lock().map_err(|_| "poisoned")?.settings.user = user;
        Ok(())
    }
}

fn serve(stream: TcpStream, shared: &Mutex<State>, issuer: &str, key: &Key) -> TestResult {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut state = shared.lock().map_err(|_| "poisoned")?;
    let (status, headers, text) = match (method, path) {
        ("GET", "/.well-known/openid-configuration") => (
            200,
            vec![("Content-Type", "application/json".to_string())],
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
                   "authorization_endpoint": format!("{issuer}/authorize"),
                   "token_endpoint": format!("{issuer}/token")})
            .to_string(),
        ),
        ("GET", "/jwks") => {
            (200, vec![("Content-Type", "application/json".to_string())], json!({"keys": [key.jwk()]}).to_string())
        }
        ("GET", "/authorize") => authorize(&mut state, &form(query)),
        ("POST", "/token") => token(&mut state, &form(&String::from_utf8_lossy(&body)), issuer, key),
        _ => (404, Vec::new(), String::new()),
    };
    drop(state);
    let mut response = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", text.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&text);
    let mut stream = stream;
    stream.write_all(response.as_bytes())?;
    Ok(())
}

type Answer = (u16, Vec<(&'static str, String)>, String);

fn authorize(state: &mut State, params: &HashMap<String, String>) -> Answer {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let s = &state.settings;
    if get("client_id") != s.client_id || get("response_type") != "code" || get("code_challenge_method") != "S256" {
        return (400, Vec::new(), "bad authorization request".into());
    }
    let scopes: Vec<String> = get("scope")
        .split_whitespace()
        .filter_map(|scope| match scope.strip_prefix(&s.scope_prefix) {
            Some(name) => s.consented.contains(&name.to_string()).then(|| name.to_string()),
            None => None,
        })
        .collect();
    state.counter += 1;
    let code = format!("upstream-code-{}", state.counter);
    let redirect_uri = get("redirect_uri");
    state
        .codes
        .insert(code.clone(), Code { redirect_uri: redirect_uri.clone(), challenge: get("code_challenge"), scopes });
    let location = format!("{redirect_uri}?code={code}&state={}", encode(&get("state")));
    (302, vec![("Location", location)], String::new())
}

fn token(state: &mut State, params: &HashMap<String, String>, issuer: &str, key: &Key) -> Answer {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let error =
        |e: &str| (400, vec![("Content-Type", "application/json".to_string())], json!({"error": e}).to_string());
    let Some(code) = state.codes.remove(&get("code")) else { return error("invalid_grant") };
    let s = &state.settings;
    if get("client_id") != s.client_id || get("client_secret") != s.client_secret {
        return error("invalid_client");
    }
    let challenge = b64(digest(&SHA256, get("code_verifier").as_bytes()).as_ref());
    if get("grant_type") != "authorization_code"
        || get("redirect_uri") != code.redirect_uri
        || challenge != code.challenge
    {
        return error("invalid_grant");
    }
    let now = now();
    let mut claims = json!({"iss": issuer, "aud": s.audience, "sub": "entra-sub-1", "oid": "entra-user-1",
                            "tid": "tenant-1", "iat": now, "nbf": now, "exp": now + 3600,
                            "scp": code.scopes.join(" "), "azp": s.client_id});
    if let (Some(map), Some(user)) = (claims.as_object_mut(), s.user.as_object()) {
        map.extend(user.clone());
    }
    match key.sign(&claims) {
        Ok(access) => (
            200,
            vec![("Content-Type", "application/json".to_string())],
            json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600}).to_string(),
        ),
        Err(_) => error("server_error"),
    }
}

/// A query string or form body, decoded.
pub fn form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding (`+` as a space).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of everything but unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

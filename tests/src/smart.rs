//! A fhirgate with the SMART authorization proxy on, in front of the test OpenID Connect
//! provider ([`crate::oidc`]), and a SMART app's side of a launch: the browser's redirects
//! followed by hand (every `Location` checked on the way) and the code redeemed at the proxy.

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Value, json};

use crate::idp::{Key, b64};
use crate::oidc::{Oidc, Settings, encode, form};
use crate::{Reply, Server, TestResult, temp_dir};

/// The registered public app and its redirect URI.
pub const APP: &str = "smart-app";
pub const REDIRECT: &str = "http://app.example/callback";
/// A registered confidential app and its secret.
pub const CONFIDENTIAL: &str = "smart-backend-app";
pub const CONFIDENTIAL_SECRET: &str = "app-secret-1";
/// The API's scope prefix in the provider (as in Entra: the application id URI).
pub const PREFIX: &str = "api://fhirgate/";

/// The server, its provider and the origin allowed to call it from a browser.
pub struct Setup {
    pub server: Server,
    pub oidc: Oidc,
}

/// The provider standing in for Entra: the user is `Patient/p1`, consented to reading
/// Observations and Patients.
pub fn provider() -> TestResult<Oidc> {
    Oidc::start(
        Key::rsa("entra-key-1")?,
        Settings {
            client_id: "fhirgate-proxy".into(),
            client_secret: "proxy-secret".into(),
            audience: "api://fhirgate".into(),
            scope_prefix: PREFIX.into(),
            user: json!({"fhirUser": "Patient/p1", "name": "Pat Example"}),
            consented: vec!["patient.Observation.rs".into(), "patient.Patient.rs".into()],
        },
    )
}

/// Starts the [`provider`] and a fhirgate trusting it with the proxy on; `cors_origin` is
/// allowed by CORS.
pub fn start(name: &str, cors_origin: &str) -> TestResult<Setup> {
    start_with(name, cors_origin, "")
}

/// [`start`], with `extra` appended to the configuration (more `[[smart.proxy.clients]]`).
pub fn start_with(name: &str, cors_origin: &str, extra: &str) -> TestResult<Setup> {
    let oidc = provider()?;
    let dir = temp_dir(name)?;
    let config = write_config(&dir, &oidc, cors_origin, extra)?;
    let server = Server::start_with(&dir, &[("FHIRGATE_CONFIG", config.to_str().ok_or("path")?)])?;
    Ok(Setup { server, oidc })
}

/// Writes, in `dir`, the configuration of a fhirgate with the proxy on in front of `oidc` (its
/// secrets in files beside it), with `extra` appended; its path.
pub fn write_config(
    dir: &std::path::Path,
    oidc: &Oidc,
    cors_origin: &str,
    extra: &str,
) -> TestResult<std::path::PathBuf> {
    let secret = dir.join("proxy-secret");
    std::fs::write(&secret, "proxy-secret\n")?;
    let app_secret = dir.join("app-secret");
    std::fs::write(&app_secret, CONFIDENTIAL_SECRET)?;
    let config = dir.join("fhirgate.toml");
    let base = &oidc.base;
    std::fs::write(
        &config,
        format!(
            r#"
[auth]
# The harness seeds data with development tokens, beside the real issuer.
local_issuer = true

[[auth.issuers]]
issuer = "{base}"
audiences = ["api://fhirgate"]

[cors]
allowed_origins = ["{cors_origin}"]

[smart.proxy]
enabled = true
upstream_authorize_url = "{base}/authorize"
upstream_token_url = "{base}/token"
client_id = "fhirgate-proxy"
client_secret_file = "{secret}"
scope_prefix = "{PREFIX}"
launch_roles = ["ehr"]

[[smart.proxy.clients]]
client_id = "{APP}"
redirect_uris = ["{REDIRECT}"]

[[smart.proxy.clients]]
client_id = "{CONFIDENTIAL}"
redirect_uris = ["{REDIRECT}"]
secret_file = "{app_secret}"
{extra}
"#,
            secret = secret.display(),
            app_secret = app_secret.display(),
        ),
    )?;
    Ok(config)
}

/// Two patients with one Observation each (`o1` of `p1`, `o2` of `p2`), written as `globalAdmin`.
pub fn seed(server: &Server) -> TestResult {
    for id in ["p1", "p2"] {
        let r = server.put(&format!("Patient/{id}"), &json!({"resourceType": "Patient", "id": id}))?;
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    }
    for (id, patient) in [("o1", "p1"), ("o2", "p2")] {
        let obs = json!({"resourceType": "Observation", "id": id, "status": "final",
                         "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}});
        let r = server.put(&format!("Observation/{id}"), &obs)?;
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    }
    Ok(())
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = b64(digest(&SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// An HTTP client that does not follow redirects.
pub fn browser() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A GET without following redirects: status and `Location`.
pub fn visit(url: &str) -> TestResult<(u16, Option<String>, String)> {
    let mut r = browser().get(url).call()?;
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let status = r.status().as_u16();
    Ok((status, location, r.body_mut().read_to_string().unwrap_or_default()))
}

/// The authorize URL of a launch with these parameters (over the defaults of a standalone
/// patient launch by [`APP`]); a value of `""` removes a default.
pub fn authorize_url(server: &Server, challenge: &str, overrides: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", APP),
        ("redirect_uri", REDIRECT),
        ("scope", "launch/patient openid fhirUser patient/Observation.rs patient/Patient.rs patient/Encounter.rs"),
        ("state", "app-state-1"),
        ("aud", ""),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    for (k, v) in params.iter_mut() {
        if k == "aud" {
            *v = server.base();
        }
        if let Some((_, o)) = overrides.iter().find(|(name, _)| name == k) {
            *v = (*o).to_string();
        }
    }
    for (k, v) in overrides {
        if !params.iter().any(|(name, _)| name == k) {
            params.push(((*k).to_string(), (*v).to_string()));
        }
    }
    let query: Vec<String> =
        params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
    server.url(&format!("auth/authorize?{}", query.join("&")))
}

/// Follows a launch from the authorize URL to the app's redirect URI: the query fhirgate sends
/// the app back with (`code` and `state`, or `error`).
pub fn follow(authorize: &str) -> TestResult<HashMap<String, String>> {
    let mut url = authorize.to_string();
    for _ in 0..4 {
        let (status, location, body) = visit(&url)?;
        let location = location.ok_or_else(|| format!("{url} answered {status} without Location: {body}"))?;
        if let Some(query) = location.strip_prefix(&format!("{REDIRECT}?")) {
            return Ok(form(query));
        }
        url = location;
    }
    Err("too many redirects".into())
}

/// `POST /auth/token` with a form; status and JSON body.
pub fn redeem(server: &Server, pairs: &[(&str, &str)], basic: Option<&str>) -> TestResult<(u16, Value)> {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    let mut request =
        browser().post(&server.url("auth/token")).header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(credentials) = basic {
        request = request.header("Authorization", format!("Basic {}", base64_standard(credentials)));
    }
    let mut r = request.send(body.join("&"))?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Redeems `code` as [`APP`] with its PKCE `verifier`: status and JSON body.
pub fn redeem_code(server: &Server, code: &str, verifier: &str) -> TestResult<(u16, Value)> {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", APP),
        ("code_verifier", verifier),
    ];
    redeem(server, &pairs, None)
}

/// `POST /auth/launch` of an EHR launch `context` (JSON), sent with `token` (the EHR's, with the
/// launch role, or any other to be refused).
pub fn post_launch(server: &Server, token: Option<&str>, context: &Value) -> TestResult<Reply> {
    let body = context.to_string();
    server.send_as(token, "POST", "auth/launch", Some(body.as_bytes()), &[("Content-Type", "application/json")])
}

/// A whole standalone launch by [`APP`]: the token response.
pub fn launch(server: &Server, seed: &str) -> TestResult<Value> {
    let (verifier, challenge) = pkce(seed);
    let back = follow(&authorize_url(server, &challenge, &[]))?;
    let code = back.get("code").ok_or_else(|| format!("no code: {back:?}"))?;
    let (status, body) = redeem_code(server, code, &verifier)?;
    if status != 200 {
        return Err(format!("token endpoint answered {status}: {body}").into());
    }
    Ok(body)
}

fn base64_standard(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Follows a launch from the authorize URL to the patient picker page's URL (a user who is no
/// patient, in a standalone launch).
pub fn to_picker(authorize: &str) -> TestResult<String> {
    let mut url = authorize.to_string();
    for _ in 0..3 {
        let (status, location, body) = visit(&url)?;
        url = location.ok_or_else(|| format!("{url} answered {status} without Location: {body}"))?;
        if url.contains("/auth/pick?") {
            return Ok(url);
        }
    }
    Err(format!("no picker: ended at {url}").into())
}

/// Submits the picker's form: status and `Location`.
pub fn choose(server: &Server, session: &str, patient: &str) -> TestResult<(u16, Option<String>)> {
    let body = format!("session={}&patient={}", encode(session), encode(patient));
    let r = browser()
        .post(&server.url("auth/pick"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body)?;
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok((r.status().as_u16(), location))
}

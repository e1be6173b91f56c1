//! End-to-end: bearer token authentication with real keys and signatures, from a loopback
//! OIDC provider (discovery + JWKS): every rejection is a 401 OperationOutcome with
//! `WWW-Authenticate`, keys rotate without restart, and unknown `kid`s cannot hammer the issuer;
//! the known keys survive an issuer outage and only signature keys count; the development issuer
//! is off beside real issuers unless kept explicitly; a multi-tenant issuer needs its tenants.

use std::path::Path;

use fhirgate_e2e::idp::{Idp, Key, b64, now};
use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use serde_json::json;

const AUDIENCE: &str = "api://fhirgate";

/// A server trusting `idp` (exactly, and in the Entra v2 form with tenant `tenant-a` allowed).
fn server(name: &str, idp: &Idp) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let config = dir.join("fhirgate.toml");
    write_config(&config, idp)?;
    Server::start_with(&dir, &[("FHIRGATE_CONFIG", config.to_str().ok_or("path")?)])
}

fn write_config(path: &Path, idp: &Idp) -> TestResult {
    let base = &idp.base;
    std::fs::write(
        path,
        format!(
            r#"
[auth]
clock_skew_seconds = 5
max_token_bytes = 4096
jwks_min_refresh_seconds = 2

[[auth.issuers]]
issuer = "{base}"
audiences = ["{AUDIENCE}"]

# The Entra v1 shape: a tenant path segment and a trailing slash, any tenant (explicitly).
[[auth.issuers]]
issuer = "{base}/sts/{{tenantid}}/"
audiences = ["{AUDIENCE}"]
allow_any_tenant = true

[[auth.issuers]]
issuer = "{base}/{{tenantid}}/v2.0"
audiences = ["{AUDIENCE}"]
allowed_tenants = ["tenant-a"]
discovery_url = "{base}/.well-known/openid-configuration"
"#
        ),
    )?;
    Ok(())
}

fn read_as(s: &Server, token: &str) -> TestResult<Reply> {
    s.send_as(Some(token), "GET", "Patient/nobody", None, &[])
}

fn assert_401(r: &Reply, why: &str) -> TestResult {
    assert_eq!(r.status, 401, "{why}: {}", r.body);
    let challenge = r.header("WWW-Authenticate").ok_or("no WWW-Authenticate")?;
    assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
    assert_eq!(r.outcome_issues()?[0]["code"], "login", "{why}");
    Ok(())
}

#[test]
fn valid_rsa_and_ec_tokens_are_accepted() -> TestResult {
    let (rsa, ec) = (Key::rsa("rsa-1")?, Key::ec("ec-1")?);
    let idp = Idp::start(&[&rsa, &ec])?;
    let s = server("auth-ok", &idp)?;
    let reader = idp.claims(AUDIENCE, json!({"roles": ["globalReader"]}));
    let r = read_as(&s, &rsa.sign(&reader)?)?;
    assert_eq!(r.status, 404, "authenticated and allowed; the patient does not exist: {}", r.body);
    assert_eq!(read_as(&s, &ec.sign(&reader)?)?.status, 404);
    // Entra v2 form, allowed tenant.
    let entra = json!({"iss": format!("{}/tenant-a/v2.0", idp.base), "tid": "tenant-a", "roles": ["globalReader"]});
    let mut claims = idp.claims(AUDIENCE, entra);
    assert_eq!(read_as(&s, &rsa.sign(&claims)?)?.status, 404);
    // The same token again comes from the cache.
    assert_eq!(read_as(&s, &rsa.sign(&claims)?)?.status, 404);
    // Entra v1 form, any tenant.
    let v1 = json!({"iss": format!("{}/sts/tenant-z/", idp.base), "tid": "tenant-z", "roles": ["globalReader"]});
    assert_eq!(read_as(&s, &ec.sign(&idp.claims(AUDIENCE, v1))?)?.status, 404);
    claims["roles"] = json!([]);
    let no_role = rsa.sign(&claims)?;
    assert_eq!(read_as(&s, &no_role)?.status, 404, "authenticated, no role: a denied read looks missing");
    let body = json!({"resourceType": "Patient"}).to_string();
    let r = s.send_as(Some(&no_role), "POST", "Patient", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "a denied write is forbidden: {}", r.body);
    Ok(())
}

#[test]
fn every_bad_token_is_401() -> TestResult {
    let rsa = Key::rsa("rsa-1")?;
    let idp = Idp::start(&[&rsa])?;
    let s = server("auth-bad", &idp)?;
    let good = idp.claims(AUDIENCE, json!({"roles": ["globalAdmin"]}));

    let r = s.send_as(None, "GET", "Patient/x", None, &[])?;
    assert_401(&r, "missing header")?;
    assert_eq!(r.header("WWW-Authenticate"), Some("Bearer realm=\"fhirgate\""));
    assert_401(&s.send_as(None, "GET", "Patient/x", None, &[("Authorization", "Basic dTpw")])?, "basic")?;
    assert_401(&read_as(&s, "not-a-jwt")?, "malformed")?;
    let r = read_as(&s, "a.b.c")?;
    assert_401(&r, "malformed parts")?;
    assert!(r.header("WWW-Authenticate").is_some_and(|c| c.contains("invalid_token")));

    // Bad signature: a valid token with its payload changed.
    let token = rsa.sign(&good)?;
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = good.clone();
    forged["sub"] = json!("someone-else");
    let tampered = format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2]);
    assert_401(&read_as(&s, &tampered)?, "tampered payload")?;

    // alg none.
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(good.to_string().as_bytes()));
    assert_401(&read_as(&s, &none)?, "alg none")?;

    // HS256 signed with the RSA public key as the HMAC secret (algorithm confusion).
    let jwk = rsa.jwk();
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).to_string().as_bytes()),
        b64(good.to_string().as_bytes())
    );
    let secret = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwk["n"].as_str().unwrap_or("").as_bytes());
    let mac = aws_lc_rs::hmac::sign(&secret, input.as_bytes());
    assert_401(&read_as(&s, &format!("{input}.{}", b64(mac.as_ref())))?, "HS256 against an RSA key")?;

    let mut expired = good.clone();
    expired["exp"] = json!(now() - 60);
    let r = read_as(&s, &rsa.sign(&expired)?)?;
    assert_401(&r, "expired")?;
    assert!(r.body.contains("expired"), "{}", r.body);
    let mut within_skew = good.clone();
    within_skew["exp"] = json!(now() - 2);
    assert_eq!(read_as(&s, &rsa.sign(&within_skew)?)?.status, 404, "expired within the clock skew");

    let mut early = good.clone();
    early["nbf"] = json!(now() + 120);
    assert_401(&read_as(&s, &rsa.sign(&early)?)?, "nbf in the future")?;

    let mut issuer = good.clone();
    issuer["iss"] = json!("https://evil.example");
    assert_401(&read_as(&s, &rsa.sign(&issuer)?)?, "wrong issuer")?;

    let mut audience = good.clone();
    audience["aud"] = json!("api://other");
    let r = read_as(&s, &rsa.sign(&audience)?)?;
    assert_401(&r, "wrong audience")?;
    assert!(r.body.contains("audience"), "{}", r.body);

    let stranger = Key::rsa("rsa-1")?; // same kid, other key
    assert_401(&read_as(&s, &stranger.sign(&good)?)?, "signed by another key")?;
    let unknown = Key::rsa("rsa-unknown")?;
    let r = read_as(&s, &unknown.sign(&good)?)?;
    assert_401(&r, "unknown kid")?;
    assert!(r.body.contains("rsa-unknown"), "{}", r.body);

    let tenant = |tid: &str, iss_tid: &str| {
        let mut c = good.clone();
        c["iss"] = json!(format!("{}/{iss_tid}/v2.0", idp.base));
        c["tid"] = json!(tid);
        c
    };
    let r = read_as(&s, &rsa.sign(&tenant("tenant-b", "tenant-b"))?)?;
    assert_401(&r, "tenant not allowed")?;
    assert!(r.body.contains("tenant"), "{}", r.body);
    assert_401(&read_as(&s, &rsa.sign(&tenant("tenant-b", "tenant-a"))?)?, "tid differs from the issuer's")?;

    let mut big = good.clone();
    big["padding"] = json!("x".repeat(5000));
    let r = read_as(&s, &rsa.sign(&big)?)?;
    assert_401(&r, "too large")?;
    assert!(r.body.contains("larger"), "{}", r.body);

    // The public endpoints need no token.
    assert_eq!(s.send_as(None, "GET", "health", None, &[])?.status, 200);
    assert_eq!(s.send_as(None, "GET", "metadata", None, &[])?.status, 200);
    Ok(())
}

#[test]
fn keys_rotate_without_restart_and_random_kids_cannot_hammer_the_issuer() -> TestResult {
    let old = Key::rsa("old")?;
    let idp = Idp::start(&[&old])?;
    let s = server("auth-rotate", &idp)?;
    let claims = idp.claims(AUDIENCE, json!({"roles": ["globalReader"]}));
    assert_eq!(read_as(&s, &old.sign(&claims)?)?.status, 404);
    let fetched = idp.jwks_fetches();
    assert_eq!(fetched, 1);

    // A flood of tokens with random kids: at most one refresh per interval.
    for n in 0..30 {
        let random = Key::ec(&format!("random-{n}"))?;
        assert_401(&read_as(&s, &random.sign(&claims)?)?, "random kid")?;
    }
    assert!(idp.jwks_fetches() <= fetched + 1, "{} fetches for 30 unknown kids", idp.jwks_fetches() - fetched);

    // Rotation: the issuer publishes a new key; tokens signed with it are accepted after the
    // refresh interval, without a restart.
    let new = Key::ec("new")?;
    idp.publish(&[&old, &new])?;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut fresh = claims.clone();
    fresh["jti"] = json!("rotated");
    assert_eq!(read_as(&s, &new.sign(&fresh)?)?.status, 404, "the new key is fetched on its unknown kid");
    assert_eq!(read_as(&s, &old.sign(&fresh)?)?.status, 404, "the old key still works while published");
    Ok(())
}

#[test]
fn authentication_off_is_explicit_and_logged() -> TestResult {
    let dir = temp_dir("auth-off")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_AUTH_ENABLED", "false")])?;
    assert!(s.token.is_none());
    assert_eq!(s.send_as(None, "GET", "Patient/x", None, &[])?.status, 404);
    assert!(s.log_text().contains("authentication and authorization are OFF"), "{}", s.log_text());
    Ok(())
}

#[test]
fn the_local_issuer_serves_discovery_and_signs_dev_tokens() -> TestResult {
    // A fixed public URL: the issuer (and so the tokens) must not depend on the port.
    let env = [("FHIRGATE_BASE_URL", "http://fhirgate.test")];
    let s = Server::start_with(&temp_dir("auth-local")?, &env)?;
    let discovery = s.send_as(None, "GET", ".well-known/openid-configuration", None, &[])?.json()?;
    assert_eq!(discovery["issuer"], "http://fhirgate.test");
    let jwks = s.send_as(None, "GET", ".well-known/jwks.json", None, &[])?.json()?;
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    // A reader token from `fhirgate token` reads but cannot write.
    let reader = s.mint(&["--role", "globalReader", "--sub", "alice"])?;
    assert_eq!(s.send_as(Some(&reader), "GET", "Patient/x", None, &[])?.status, 404);
    let body = json!({"resourceType": "Patient"}).to_string();
    let r = s.send_as(Some(&reader), "POST", "Patient", Some(body.as_bytes()), &[])?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.outcome_issues()?[0]["code"], "forbidden");
    // The key survives a restart: the same token keeps working.
    let mut s = s;
    s.terminate()?;
    let again = Server::start_with(&s.data_dir, &env)?;
    assert_eq!(again.send_as(Some(&reader), "GET", "Patient/x", None, &[])?.status, 404);
    Ok(())
}

#[test]
fn metadata_can_require_a_token_and_applications_are_principals_too() -> TestResult {
    let dir = temp_dir("auth-metadata")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_AUTH_ANONYMOUS_METADATA", "false")])?;
    assert_401(&s.send_as(None, "GET", "metadata", None, &[])?, "metadata needs a token")?;
    assert_eq!(s.get("metadata")?.status, 200, "the admin token reads it");
    assert_eq!(s.send_as(None, "GET", "health", None, &[])?.status, 200, "health stays public");
    let app = s.mint(&["--app", "--role", "globalReader", "--sub", "batch-job"])?;
    assert_eq!(s.send_as(Some(&app), "GET", "metadata", None, &[])?.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(s.log_text().contains("Fhir::Application::\\\"batch-job\\\""), "{}", s.log_text());
    Ok(())
}

/// A server with `config` as its TOML file.
fn server_with_config(name: &str, config: &str) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let path = dir.join("fhirgate.toml");
    std::fs::write(&path, config)?;
    Server::start_with(&dir, &[("FHIRGATE_CONFIG", path.to_str().ok_or("path")?)])
}

#[test]
fn a_real_issuer_turns_the_development_issuer_off_unless_kept_explicitly() -> TestResult {
    let rsa = Key::rsa("rsa-1")?;
    let idp = Idp::start(&[&rsa])?;
    let s = server("auth-local-off", &idp)?;
    assert!(s.token.is_none(), "`fhirgate token` refuses: its tokens would not be accepted");
    let out = s.cli(&["token", "--role", "globalAdmin"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the local issuer is off"));
    let r = s.send_as(None, "GET", ".well-known/jwks.json", None, &[])?;
    assert_ne!(r.status, 200, "no local keys published: {}", r.body);
    // A development key in the server's data directory (without the server's configuration,
    // `fhirgate token` makes one) signs nothing the server accepts.
    let out = std::process::Command::new(fhirgate_e2e::binary()?)
        .args(["token", "--role", "globalAdmin"])
        .env("FHIRGATE_LISTEN", format!("127.0.0.1:{}", s.port))
        .env("FHIRGATE_DATA_DIR", &s.data_dir)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dev = String::from_utf8(out.stdout)?.trim().to_string();
    assert_401(&read_as(&s, &dev)?, "a token from the development key")?;
    let reader = idp.claims(AUDIENCE, json!({"roles": ["globalReader"]}));
    assert_eq!(read_as(&s, &rsa.sign(&reader)?)?.status, 404, "the real issuer works");

    // Both, on purpose: `auth.local_issuer = true`, with a loud warning.
    let both = server_with_config(
        "auth-local-both",
        &format!(
            "[auth]\nlocal_issuer = true\n[[auth.issuers]]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\n",
            idp.base
        ),
    )?;
    let admin = both.token.clone().ok_or("the development issuer is kept")?;
    assert_eq!(read_as(&both, &admin)?.status, 404);
    assert_eq!(read_as(&both, &rsa.sign(&reader)?)?.status, 404);
    assert!(both.log_text().contains("BESIDE real issuers"), "{}", both.log_text());
    Ok(())
}

#[test]
fn a_multi_tenant_issuer_needs_allowed_tenants_or_an_explicit_any() -> TestResult {
    let rsa = Key::rsa("rsa-1")?;
    let idp = Idp::start(&[&rsa])?;
    let issuer =
        format!("[[auth.issuers]]\nissuer = \"{}/{{tenantid}}/v2.0\"\naudiences = [\"{AUDIENCE}\"]\n", idp.base);
    let discovery = format!("discovery_url = \"{}/.well-known/openid-configuration\"\n", idp.base);
    let refused = server_with_config("auth-any-refused", &format!("{issuer}{discovery}"));
    let message = refused.err().ok_or("a multi-tenant issuer without tenants must not start")?.to_string();
    assert!(message.contains("allowed_tenants") && message.contains("allow_any_tenant"), "{message}");

    let any = server_with_config("auth-any", &format!("{issuer}{discovery}allow_any_tenant = true\n"))?;
    assert!(any.log_text().contains("EVERY Entra tenant"), "{}", any.log_text());
    let claims = idp.claims(
        AUDIENCE,
        json!({"iss": format!("{}/tenant-q/v2.0", idp.base), "tid": "tenant-q", "roles": ["globalReader"]}),
    );
    assert_eq!(read_as(&any, &rsa.sign(&claims)?)?.status, 404, "any tenant, as configured");
    Ok(())
}

#[test]
fn known_keys_survive_an_issuer_outage_and_only_signature_keys_count() -> TestResult {
    let (k1, enc, k2) = (Key::rsa("k1")?, Key::rsa("enc-1")?, Key::ec("k2")?);
    let idp = Idp::start(&[&k1])?;
    let s = server_with_config(
        "auth-outage",
        &format!(
            "[auth]\njwks_max_age_seconds = 1\njwks_min_refresh_seconds = 1\n\
             [[auth.issuers]]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\n",
            idp.base
        ),
    )?;
    let token = |key: &Key, jti: &str| key.sign(&idp.claims(AUDIENCE, json!({"roles": ["globalReader"], "jti": jti})));
    assert_eq!(read_as(&s, &token(&k1, "a")?)?.status, 404);
    // The issuer goes down; the keys age past jwks_max_age_seconds; refreshes fail.
    idp.set_down(true);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for n in 0..3 {
        let r = read_as(&s, &token(&k1, &format!("down-{n}"))?)?;
        assert_eq!(r.status, 404, "the known key keeps serving while the issuer is down: {}", r.body);
        std::thread::sleep(std::time::Duration::from_millis(600));
    }
    assert!(s.log_text().contains("the keys already known stay in use"), "{}", s.log_text());

    // Back up, with an encryption key and a key whose operations exclude verify beside a new
    // signature key; k1 is gone from the document.
    let mut enc_jwk = enc.jwk();
    enc_jwk["use"] = json!("enc");
    let mut wrap_jwk = Key::rsa("wrap-1")?.jwk();
    if let Some(map) = wrap_jwk.as_object_mut() {
        map.remove("use");
    }
    wrap_jwk["key_ops"] = json!(["wrapKey"]);
    idp.publish_document(json!({"keys": [enc_jwk, wrap_jwk, k2.jwk()]}))?;
    idp.set_down(false);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(read_as(&s, &token(&k2, "k2")?)?.status, 404, "the new signature key");
    let r = read_as(&s, &token(&enc, "enc")?)?;
    assert_401(&r, "a key published for encryption")?;
    assert!(r.body.contains("enc-1"), "unknown, as if not published: {}", r.body);
    assert_401(&read_as(&s, &token(&k1, "after")?)?, "the old key, dropped once a refresh succeeded")?;
    Ok(())
}

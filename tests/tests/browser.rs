//! End-to-end in a real browser: a SMART app page served from another origin, in headless
//! Chromium (Debian's `chromium` and `chromium-driver`, driven over WebDriver), finds fhirgate
//! through `/.well-known/smart-configuration`, makes a PKCE pair with WebCrypto, runs a standalone
//! launch through the SMART proxy and the test OIDC provider, redeems its code at the token
//! endpoint and reads its patient, every call cross-origin under CORS (preflights included).
//! Skipped, saying why, where Chromium or its driver is not installed (`scripts/test.sh` installs
//! them when it runs as root).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fhirgate_e2e::smart;
use fhirgate_e2e::{TestResult, free_port};
use serde_json::{Value, json};

const CLIENT: &str = "browser-app";

/// The app: one page, which starts the launch, or finishes it when it comes back with a code.
const PAGE: &str = r#"<!doctype html><html><head><title>starting</title></head><body><script>
const fhir = "FHIR_BASE", client = "CLIENT_ID", redirect = location.origin + "/callback";
const b64url = bytes => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
async function start() {
  const conf = await (await fetch(fhir + "/.well-known/smart-configuration")).json();
  const verifier = random(), state = random();
  sessionStorage.setItem("verifier", verifier);
  sessionStorage.setItem("state", state);
  sessionStorage.setItem("token", conf.token_endpoint);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const query = new URLSearchParams({response_type: "code", client_id: client, redirect_uri: redirect, state, aud: fhir,
    scope: "launch/patient openid fhirUser patient/Patient.rs", code_challenge: challenge, code_challenge_method: "S256"});
  location.assign(conf.authorization_endpoint + "?" + query);
}
async function finish(q) {
  if (q.get("state") !== sessionStorage.getItem("state")) throw new Error("state mismatch");
  const body = new URLSearchParams({grant_type: "authorization_code", code: q.get("code"), redirect_uri: redirect,
    client_id: client, code_verifier: sessionStorage.getItem("verifier")});
  const token = await (await fetch(sessionStorage.getItem("token"), {method: "POST", body})).json();
  const r = await fetch(fhir + "/Patient/" + token.patient,
    {headers: {Authorization: "Bearer " + token.access_token, Accept: "application/fhir+json"}});
  const patient = await r.json();
  const other = await fetch(fhir + "/Patient/p2", {headers: {Authorization: "Bearer " + token.access_token}});
  document.title = ["patient", patient.id, patient.name[0].family, r.headers.get("ETag") ? "etag" : "no-etag", other.status].join(":");
}
const q = new URLSearchParams(location.search);
(q.has("code") ? finish(q) : q.has("error") ? Promise.reject(new Error(q.get("error"))) : start())
  .catch(e => document.title = "error:" + e.message);
</script></body></html>"#;

/// The app's origin: serves the page it receives on `page` (once fhirgate's base is known) for
/// every path.
fn serve_app(page: std::sync::mpsc::Receiver<String>) -> TestResult<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let origin = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    std::thread::spawn(move || {
        let Ok(page) = page.recv() else { return };
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(page.as_bytes()));
        }
    });
    Ok(origin)
}

/// A `chromedriver`, stopped when dropped.
struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> TestResult<Self> {
        let port = free_port()?;
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let driver = Self { child, base: format!("http://127.0.0.1:{port}"), agent };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if driver.agent.get(&format!("{}/status", driver.base)).call().is_ok() {
                return Ok(driver);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("chromedriver did not start".into())
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> TestResult<Value> {
        let url = format!("{}{path}", self.base);
        let mut response = match body {
            Some(body) => self.agent.post(&url).header("Content-Type", "application/json").send(body.to_string())?,
            None if method == "DELETE" => self.agent.delete(&url).call()?,
            None => self.agent.get(&url).call()?,
        };
        let value: Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
        if value["value"]["error"].is_string() {
            return Err(format!("WebDriver {path}: {}", value["value"]).into());
        }
        Ok(value["value"].clone())
    }
}

/// Why the browser test cannot run here, if it cannot.
fn missing_browser() -> Option<String> {
    for tool in ["chromium", "chromedriver"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !found.is_ok_and(|s| s.success()) {
            return Some(format!("`{tool}` is not installed (Debian: apt-get install chromium chromium-driver)"));
        }
    }
    None
}

#[test]
fn a_browser_app_from_another_origin_launches_and_reads_its_patient() -> TestResult {
    // The browser's side does not depend on the store: once, on the default run, is enough.
    if !matches!(fhirgate_e2e::backend().as_str(), "sqlite") {
        println!("skipped: runs on the SQLite pass only (FHIRGATE_E2E_STORE={})", fhirgate_e2e::backend());
        return Ok(());
    }
    if let Some(why) = missing_browser() {
        println!("skipped: {why}");
        return Ok(());
    }
    // The page needs fhirgate's base, and fhirgate's configuration the page's origin (CORS, the
    // client's redirect URI): the origin first, its page once the server runs.
    let (page, pending) = std::sync::mpsc::channel::<String>();
    let origin = serve_app(pending)?;
    let extra =
        format!("\n[[smart.proxy.clients]]\nclient_id = \"{CLIENT}\"\nredirect_uris = [\"{origin}/callback\"]\n");
    let setup = smart::start_with("smart-browser", &origin, &extra)?;
    let server = &setup.server;
    smart::seed(server)?;
    let named = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Browserpatient"}]});
    assert_eq!(server.put("Patient/p1", &named)?.status, 200);
    page.send(PAGE.replace("FHIR_BASE", &server.base()).replace("CLIENT_ID", CLIENT))?;

    let driver = Driver::start()?;
    let session = driver.call(
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}}}})),
    )?;
    let id = session["sessionId"].as_str().ok_or("no session")?.to_string();
    let result = (|| -> TestResult<String> {
        driver.call("POST", &format!("/session/{id}/url"), Some(json!({"url": format!("{origin}/")})))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let title = driver.call(
                "POST",
                &format!("/session/{id}/execute/sync"),
                Some(json!({"script": "return document.title", "args": []})),
            )?;
            let title = title.as_str().unwrap_or_default().to_string();
            if title.starts_with("patient:") || title.starts_with("error:") || Instant::now() > deadline {
                return Ok(title);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    let _ = driver.call("DELETE", &format!("/session/{id}"), None);
    let title = result?;
    assert_eq!(
        title,
        "patient:p1:Browserpatient:etag:404",
        "the page's outcome (server log: {})",
        server.log_text().lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    );
    Ok(())
}

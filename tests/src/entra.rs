//! A token endpoint like Entra ID's, for the gateway's `credentials = "azure"` targets: HTTPS on
//! loopback with a certificate from a test CA (its PEM written to a file the gateway is told to
//! trust), answering `POST /{tenant}/oauth2/v2.0/token` (the client-credentials grant
//! `azure_identity`'s `ClientSecretCredential` sends; it asks for no discovery document) with a
//! new access token each time (`tok-1`, `tok-2`, ...) valid for a chosen number of seconds.
//! Every request is recorded (path and form), so a test can check what the gateway asked for
//! and how often.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::TestResult;

/// One token request: the path and its form fields.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub path: String,
    pub form: BTreeMap<String, String>,
}

/// The running endpoint; stops accepting when dropped.
pub struct TokenEndpoint {
    pub port: u16,
    /// The test CA's certificate (PEM).
    pub ca_file: PathBuf,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stopped: Arc<AtomicBool>,
}

impl TokenEndpoint {
    /// Starts on a free loopback port; tokens are valid `expires_in` seconds; the CA's PEM is
    /// written to `dir/entra-ca.pem`.
    pub fn start(dir: &Path, expires_in: u64) -> TestResult<Self> {
        let ca = crate::tls::TestCa::new(dir, "entra-ca")?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(AtomicU64::new(0));
        let seen = requests.clone();
        let (port, stopped) = crate::tls::serve(&ca, move |mut stream| {
            let _ = stream.sock.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let _ = answer(&mut stream, &seen, &issued, expires_in);
        })?;
        let ca_file = ca.ca_file;
        Ok(Self { port, ca_file, requests, stopped })
    }

    /// The authority host, as `azure_authority`.
    pub fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request and answers it: a token for a well-formed client-credentials request on
/// the token path, else Entra's error shape with 400.
fn answer(
    stream: &mut (impl Read + Write),
    seen: &Mutex<Vec<TokenRequest>>,
    issued: &AtomicU64,
    expires_in: u64,
) -> TestResult {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body)?;
    let form: BTreeMap<String, String> = crate::oidc::form(&String::from_utf8_lossy(&body)).into_iter().collect();
    if let Ok(mut seen) = seen.lock() {
        seen.push(TokenRequest { path: path.clone(), form: form.clone() });
    }
    let good = line.starts_with("POST ")
        && path.ends_with("/oauth2/v2.0/token")
        && form.get("grant_type").map(String::as_str) == Some("client_credentials");
    let (status, body) = if good {
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
            "access_token": format!("tok-{n}")});
        ("200 OK", token.to_string())
    } else {
        let error = json!({"error": "invalid_request", "error_description": "not a token request",
            "error_codes": [900144]});
        ("400 Bad Request", error.to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    Ok(())
}

//! A FHIR upstream that misbehaves on demand, for the gateway's remote targets: a real TCP HTTP
//! server on loopback that answers well (a CapabilityStatement at `/metadata`, `Patient/1`, a
//! searchset of it), slowly, with garbage, not at all (closing before the status line), with a
//! 500 (with or without an OperationOutcome), or dies mid-response (a `Content-Length` larger
//! than what it sends). The mode switches at run time; every request is recorded (method, path,
//! `Authorization`), so a test can check which credentials reached the target.
//!
//! `GET /metadata` (the gateway's health check path) always answers well unless the mode is
//! [`Mode::Refuse`], so a misbehaving data path is not mistaken for a target that is down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::TestResult;

/// How the upstream answers requests (other than `GET /metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Minimal FHIR: `/metadata`, `Patient/1`, `Patient?…` (one match), else a 404 OperationOutcome.
    Good,
    /// Waits this long before answering well.
    Slow(Duration),
    /// Bytes that are not HTTP, then closes.
    Garbage,
    /// Reads the request and closes without a byte of answer.
    CloseEarly,
    /// 500 with an OperationOutcome body.
    ServerErrorOutcome,
    /// 500 with a plain text body.
    ServerErrorPlain,
    /// A 200 whose `Content-Length` promises more than is sent, then closes.
    Truncated,
    /// Every connection, `/metadata` included, is closed at once (the target looks down).
    Refuse,
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// The running upstream; stops accepting when dropped.
pub struct Upstream {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stopped: Arc<AtomicBool>,
}

impl Upstream {
    /// Starts on a free loopback port in `mode`.
    pub fn start(mode: Mode) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mode = Arc::new(Mutex::new(mode));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (m, r, s) = (mode.clone(), recorded.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (m, r) = (m.clone(), r.clone());
                std::thread::spawn(move || serve_connection(stream, &m, &r, port));
            }
        });
        Ok(Self { port, mode, recorded, stopped })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches the mode for the next requests.
    pub fn set_mode(&self, mode: Mode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    /// Every request received so far, `/metadata` health checks included.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The requests other than `GET /metadata` (the health checks).
    pub fn data_requests(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| !r.path.starts_with("/metadata")).collect()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        if let Ok(mut r) = self.recorded.lock() {
            r.clear();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves the requests of one connection (keep-alive) until the client closes it.
fn serve_connection(stream: TcpStream, mode: &Mutex<Mode>, recorded: &Mutex<Vec<Recorded>>, port: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let mut authorization = None;
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if !matches!(reader.read_line(&mut header), Ok(n) if n > 0) {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.to_string());
                } else if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0).min(16 * 1024 * 1024);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(mut r) = recorded.lock() {
            r.push(Recorded { method: method.clone(), path: path.clone(), authorization });
        }
        let current = mode.lock().map(|m| *m).unwrap_or(Mode::Good);
        let metadata = method == "GET" && path.starts_with("/metadata");
        let current = if metadata && current != Mode::Refuse { Mode::Good } else { current };
        let keep_open = match current {
            Mode::Good => writer.write_all(&good_answer(&method, &path, port)).is_ok(),
            Mode::Slow(wait) => {
                std::thread::sleep(wait);
                writer.write_all(&good_answer(&method, &path, port)).is_ok()
            }
            Mode::Garbage => {
                let _ = writer.write_all(b"\x00\x13garbage \xff\xfe not http at all\r\n\r\n{{{");
                false
            }
            Mode::CloseEarly | Mode::Refuse => false,
            Mode::ServerErrorOutcome => {
                let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
                    "code": "exception", "diagnostics": format!("upstream broke at http://127.0.0.1:{port}/boom")}]});
                writer.write_all(&answer(500, "application/fhir+json", &outcome.to_string(), &[])).is_ok()
            }
            Mode::ServerErrorPlain => writer
                .write_all(&answer(500, "text/plain", &format!("internal error on 127.0.0.1:{port}"), &[]))
                .is_ok(),
            Mode::Truncated => {
                let patient = patient(port).to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
                    patient.len() + 4096
                );
                let _ = writer.write_all(head.as_bytes());
                let _ = writer.write_all(&patient.as_bytes()[..patient.len() / 2]);
                let _ = writer.flush();
                false
            }
        };
        if !keep_open {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// The one Patient the well-behaved upstream has.
fn patient(port: u16) -> serde_json::Value {
    json!({"resourceType": "Patient", "id": "1", "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
           "name": [{"family": "Upstream"}],
           "managingOrganization": {"reference": format!("http://127.0.0.1:{port}/Organization/o1")}})
}

/// What the well-behaved upstream answers.
fn good_answer(method: &str, path: &str, port: u16) -> Vec<u8> {
    let base = format!("http://127.0.0.1:{port}");
    let (path, _query) = path.split_once('?').unwrap_or((path, ""));
    if path == "/metadata" {
        let cs = json!({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
            "date": "2024-01-01", "fhirVersion": "4.0.1", "format": ["json"],
            "implementation": {"description": "test upstream", "url": base},
            "rest": [{"mode": "server", "resource": [{"type": "Patient",
                "interaction": [{"code": "read"}, {"code": "search-type"}]}]}]});
        return answer(200, "application/fhir+json", &cs.to_string(), &[]);
    }
    if method == "GET" && (path == "/Patient/1" || path == "/Patient/1/_history/1") {
        let location = format!("{base}/Patient/1/_history/1");
        return answer(
            200,
            "application/fhir+json",
            &patient(port).to_string(),
            &[("ETag", "W/\"1\""), ("Content-Location", &location)],
        );
    }
    if method == "GET" && path == "/Patient" {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "total": 1,
            "link": [{"relation": "self", "url": format!("{base}/Patient")},
                     {"relation": "next", "url": format!("{base}/Patient?page=upstream-secret")}],
            "entry": [{"fullUrl": format!("{base}/Patient/1"), "resource": patient(port),
                       "search": {"mode": "match"}}]});
        return answer(200, "application/fhir+json", &bundle.to_string(), &[]);
    }
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
        "diagnostics": format!("no {path} here")}]});
    answer(404, "application/fhir+json", &outcome.to_string(), &[])
}

fn answer(status: u16, content_type: &str, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

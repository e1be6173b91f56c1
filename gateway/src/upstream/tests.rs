//! Tests of the remote-target client against real HTTP servers on 127.0.0.1: tiny tokio servers
//! written here that answer well, slowly, with garbage, cut short or not at all.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::interaction::{Method, Request};
use fhirgate_engine::remote::Upstream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::RemoteTarget;
use crate::config::TargetConfig;

/// What the server does with the requests of one connection.
#[derive(Clone)]
enum Reply {
    /// Answers every request on the connection with these bytes.
    Answer(Vec<u8>),
    /// Writes these bytes after the first request, then closes.
    AnswerAndClose(Vec<u8>),
    /// Reads the request and closes without a byte.
    Close,
    /// Reads the request and never answers.
    Silent,
}

struct TestServer {
    port: u16,
    /// Every request received: head and body.
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A server whose n-th connection gets `replies[n]` (the last one repeats).
async fn server(replies: Vec<Reply>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (requests.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let reply = replies[n.min(replies.len() - 1)].clone();
            tokio::spawn(connection(stream, reply, seen.clone()));
        }
    });
    TestServer { port, requests, connections }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: Reply, seen: Arc<Mutex<Vec<String>>>) {
    while let Some(request) = read_request(&mut stream).await {
        seen.lock().unwrap().push(request);
        match &reply {
            Reply::Answer(bytes) => {
                if stream.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Reply::AnswerAndClose(bytes) => {
                let _ = stream.write_all(bytes).await;
                return;
            }
            Reply::Close => return,
            Reply::Silent => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                return;
            }
        }
    }
}

/// Reads one request (head and `Content-Length` body); `None` at the end of the connection.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn json_answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/fhir+json\r\nETag: W/\"3\"\r\nLast-Modified: Sun, 06 Dec 2026 \
         04:00:00 GMT\r\nLocation: http://remote/fhir/Patient/1/_history/3\r\nX-Internal: secret\r\nContent-Length: \
         {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"1"}"#;

fn config(ports: &[u16]) -> TargetConfig {
    TargetConfig {
        id: "lab".into(),
        base_url: Some(format!("http://127.0.0.1:{}/fhir", ports[0])),
        addresses: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        connect_timeout_ms: 500,
        read_timeout_ms: 400,
        total_timeout_ms: 5_000,
        health_interval_seconds: 0,
        ..TargetConfig::default()
    }
}

/// A port nobody listens on.
async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn get(path: &str) -> Request {
    Request::new(Method::Get, path, "http://gateway")
}

fn post(path: &str) -> Request {
    let mut request = Request::new(Method::Post, path, "http://gateway");
    request.body = PATIENT.as_bytes().to_vec();
    request
}

/// A transport error, checked not to reveal the remote's address.
fn transport_error(result: fhirgate_engine::Result<fhirgate_engine::interaction::Response>) -> FhirError {
    let error = result.expect_err("a transport error");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    error
}

#[tokio::test]
async fn answers_pass_through_on_pooled_connections() {
    let s = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    assert_eq!(target.base_url(), format!("http://127.0.0.1:{}/fhir", s.port));
    let upstream = target.upstream(Some("caller-token"));

    let mut request = get("Patient");
    request.query = vec![("name".into(), "a b&c=é".into()), ("_count".into(), "2".into())];
    request.headers.if_none_match = Some("W/\"2\"".into());
    request.headers.accept = Some("application/fhir+xml".into());
    let response = upstream.send(&request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, PATIENT.as_bytes());
    let header = |name: &str| response.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("Content-Type"), Some("application/fhir+json"));
    assert_eq!(header("ETag"), Some("W/\"3\""));
    assert_eq!(header("Location"), Some("http://remote/fhir/Patient/1/_history/3"));
    assert_eq!(header("Last-Modified"), Some("Sun, 06 Dec 2026 04:00:00 GMT"));
    assert_eq!(header("X-Internal"), None, "only the headers the engine needs");

    let response = upstream.send(&post("Patient")).await.unwrap();
    assert_eq!(response.status, 200);

    let requests = s.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].to_lowercase();
    assert!(first.starts_with("get /fhir/patient?name=a%20b%26c%3d%c3%a9&_count=2 http/1.1\r\n"), "{first}");
    assert!(first.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", s.port)), "{first}");
    assert!(first.contains("\r\naccept: application/fhir+json\r\n"), "{first}");
    assert!(first.contains("\r\nif-none-match: w/\"2\"\r\n"), "{first}");
    assert!(!first.contains("authorization"), "credentials `none` sends no token: {first}");
    let second = &requests[1];
    assert!(second.to_lowercase().starts_with("post /fhir/patient http/1.1\r\n"), "{second}");
    assert!(second.to_lowercase().contains("\r\ncontent-type: application/fhir+json\r\n"), "{second}");
    assert!(second.ends_with(PATIENT), "{second}");
    assert_eq!(s.connections.load(Ordering::SeqCst), 1, "the second exchange reuses the pooled connection");
}

/// A pooled connection the server closed while it was idle is dropped, not used: even a POST
/// (never sent twice) goes out on a new connection and is answered.
#[tokio::test]
async fn a_connection_closed_while_idle_is_not_reused() {
    // A keep-alive answer (its length given), then the server closes the connection.
    let s = server(vec![Reply::AnswerAndClose(json_answer("200 OK", PATIENT))]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let upstream = target.upstream(None);
    assert_eq!(upstream.send(&get("Patient/1")).await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(upstream.send(&post("Patient")).await.unwrap().status, 200);
    assert_eq!(s.requests().len(), 2, "the POST was sent once");
    assert_eq!(s.connections.load(Ordering::SeqCst), 2, "on a new connection");
}

#[tokio::test]
async fn chunked_answers_are_read_whole() {
    let (head, tail) = PATIENT.split_at(5);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        head.len(),
        tail.len()
    )
    .into_bytes();
    let s = server(vec![Reply::Answer(chunked)]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(response.body, PATIENT.as_bytes());
    // Close-delimited (no length, no chunks): read to the end.
    let s = server(vec![Reply::AnswerAndClose(format!("HTTP/1.1 200 OK\r\n\r\n{PATIENT}").into_bytes())]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(response.body, PATIENT.as_bytes());
}

#[tokio::test]
async fn an_upstream_operation_outcome_is_an_answer() {
    let outcome = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}"#;
    let s = server(vec![Reply::Answer(json_answer("500 Internal Server Error", outcome))]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(response.status, 500);
    assert_eq!(response.body, outcome.as_bytes());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let s = server(vec![Reply::Silent]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let started = Instant::now();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::GatewayTimeout(_)), "{error:?}");
    assert_eq!(error.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3), "the read timeout, not the server, ended it");
    assert_eq!(s.requests().len(), 1, "a timeout is not retried");

    // The total timeout bounds the whole exchange even when each read may wait longer.
    let mut slow_reads = config(&[s.port]);
    slow_reads.read_timeout_ms = 60_000;
    slow_reads.total_timeout_ms = 300;
    let target = RemoteTarget::new(&slow_reads).unwrap();
    let started = Instant::now();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::GatewayTimeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn garbage_is_a_bad_gateway() {
    let s = server(vec![Reply::AnswerAndClose(b"SSH-2.0-OpenSSH_9.2\r\n\r\nnonsense".to_vec())]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    assert_eq!(error.status(), 502);
    assert_eq!(s.requests().len(), 1, "garbage is not retried");
}

#[tokio::test]
async fn a_close_before_the_status_line_is_retried_only_when_idempotent() {
    let ok = Reply::Answer(json_answer("200 OK", PATIENT));
    let s = server(vec![Reply::Close, ok.clone()]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(s.requests().len(), 2, "the GET was sent again");

    let s = server(vec![Reply::Close, ok.clone()]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let error = transport_error(target.upstream(None).send(&post("Patient")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    assert_eq!(s.requests().len(), 1, "a POST is never sent twice");

    // A PUT carrying If-Match is idempotent; without it, it is not.
    let s = server(vec![Reply::Close, ok.clone()]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let mut put = Request::new(Method::Put, "Patient/1", "http://gateway");
    put.body = PATIENT.as_bytes().to_vec();
    put.headers.if_match = Some("W/\"3\"".into());
    assert_eq!(target.upstream(None).send(&put).await.unwrap().status, 200);
    let s = server(vec![Reply::Close, ok]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    put.headers.if_match = None;
    let error = transport_error(target.upstream(None).send(&put).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");

    // `retries = 0`: not even a GET is sent twice.
    let s = server(vec![Reply::Close]).await;
    let mut no_retries = config(&[s.port]);
    no_retries.retries = 0;
    let target = RemoteTarget::new(&no_retries).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn a_body_cut_short_is_a_bad_gateway() {
    let cut =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{\"resourceType\":"
            .to_vec();
    let s = server(vec![Reply::AnswerAndClose(cut)]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    assert_eq!(s.requests().len(), 1, "part of the answer arrived: not retried");

    let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"resourceType\":".to_vec();
    let s = server(vec![Reply::AnswerAndClose(cut)]).await;
    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
}

#[tokio::test]
async fn an_answer_over_the_limit_is_a_bad_gateway() {
    let big = "x".repeat(5_000);
    let s = server(vec![Reply::Answer(json_answer("200 OK", &big))]).await;
    let mut limited = config(&[s.port]);
    limited.max_response_bytes = 1_000;
    let target = RemoteTarget::new(&limited).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");

    // Without a declared length, the limit stops the reading too.
    let chunked = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let s = server(vec![Reply::Answer(chunked.into_bytes())]).await;
    let mut limited = config(&[s.port]);
    limited.max_response_bytes = 1_000;
    let target = RemoteTarget::new(&limited).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    // At the limit exactly: accepted.
    limited.max_response_bytes = big.len();
    let target = RemoteTarget::new(&limited).unwrap();
    assert_eq!(target.upstream(None).send(&get("Patient/1")).await.unwrap().body.len(), big.len());
}

#[tokio::test]
async fn a_dead_address_fails_over_and_is_marked_down() {
    let live = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;
    let dead = dead_port().await;
    let target = RemoteTarget::new(&config(&[dead, live.port])).unwrap();
    for _ in 0..4 {
        assert_eq!(target.upstream(None).send(&get("Patient/1")).await.unwrap().status, 200);
        // Nothing was sent to the dead address: a POST moves on too.
        assert_eq!(target.upstream(None).send(&post("Patient")).await.unwrap().status, 200);
    }
    assert_eq!(live.requests().len(), 8);
    // Moving on from an address that refused the connection spends no retry.
    let mut no_retries = config(&[dead, live.port]);
    no_retries.retries = 0;
    let target_without_retries = RemoteTarget::new(&no_retries).unwrap();
    for _ in 0..4 {
        assert_eq!(target_without_retries.upstream(None).send(&post("Patient")).await.unwrap().status, 200);
    }

    target.check_health().await;
    assert!(target.is_up());
    let backends = target.inner.balancer.backends();
    let ready: Vec<(u16, bool)> =
        backends.get_backend().iter().map(|b| (b.addr.as_inet().unwrap().port(), backends.ready(b))).collect();
    assert!(ready.contains(&(dead, false)), "{ready:?}");
    assert!(ready.contains(&(live.port, true)), "{ready:?}");
    let health_checks = live.requests().iter().filter(|r| r.starts_with("GET /fhir/metadata ")).count();
    assert_eq!(live.requests().len(), 13);
    assert_eq!(health_checks, 1, "the live address was checked on `health_path`");
}

#[tokio::test]
async fn health_checks_start_with_the_first_request() {
    let live = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;
    let dead = dead_port().await;
    let mut checked = config(&[dead, live.port]);
    checked.health_interval_seconds = 1;
    let target = RemoteTarget::new(&checked).unwrap();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(live.requests().len(), 0, "no checks before the first request");
    target.upstream(None).send(&get("Patient/1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let backends = target.inner.balancer.backends();
    let down: Vec<u16> = backends
        .get_backend()
        .iter()
        .filter(|b| !backends.ready(b))
        .map(|b| b.addr.as_inet().unwrap().port())
        .collect();
    assert_eq!(down, vec![dead]);
    assert!(live.requests().iter().any(|r| r.starts_with("GET /fhir/metadata ")));
}

#[tokio::test]
async fn every_address_down_is_unavailable() {
    let target = RemoteTarget::new(&config(&[dead_port().await, dead_port().await])).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::StoreUnavailable(_)), "{error:?}");
    assert_eq!(error.status(), 503);

    target.check_health().await;
    assert!(!target.is_up());
    let error = transport_error(target.upstream(None).send(&post("Patient")).await);
    assert!(matches!(error, FhirError::StoreUnavailable(_)), "{error:?}");
}

fn authorization(request: &str) -> Option<String> {
    request.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
    })
}

#[tokio::test]
async fn credentials_are_sent_as_configured() {
    let s = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;

    let mut passthrough = config(&[s.port]);
    passthrough.credentials = "passthrough".into();
    let target = RemoteTarget::new(&passthrough).unwrap();
    target.upstream(Some("caller-token")).send(&get("Patient/1")).await.unwrap();
    assert_eq!(authorization(&s.requests()[0]).as_deref(), Some("Bearer caller-token"));

    let dir = std::env::temp_dir().join(format!("fhirgate-upstream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "  static-token-1\n").unwrap();
    let mut bearer = config(&[s.port]);
    bearer.credentials = "bearer-file".into();
    bearer.bearer_file = Some(file.clone());
    let target = RemoteTarget::new(&bearer).unwrap();
    target.upstream(Some("caller-token")).send(&get("Patient/1")).await.unwrap();
    assert_eq!(authorization(&s.requests()[1]).as_deref(), Some("Bearer static-token-1"));
    // A new token in the file is used once the file is looked at again (each second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&file, "static-token-2").unwrap();
    target.upstream(Some("caller-token")).send(&get("Patient/1")).await.unwrap();
    assert_eq!(authorization(&s.requests()[2]).as_deref(), Some("Bearer static-token-2"));

    let target = RemoteTarget::new(&config(&[s.port])).unwrap();
    target.upstream(Some("caller-token")).send(&get("Patient/1")).await.unwrap();
    assert_eq!(authorization(&s.requests()[3]), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_settings_are_refused_naming_the_target() {
    let bad = |f: &dyn Fn(&mut TargetConfig)| {
        let mut c = config(&[1]);
        f(&mut c);
        let error = RemoteTarget::new(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("target `lab`"), "{error}");
        error
    };
    assert!(bad(&|c| c.base_url = None).contains("base_url"));
    assert!(bad(&|c| c.base_url = Some("ftp://x".into())).contains("base_url"));
    assert!(bad(&|c| c.credentials = "basic".into()).contains("credentials"));
    assert!(bad(&|c| c.credentials = "bearer-file".into()).contains("bearer_file"));
    assert!(
        bad(&|c| {
            c.credentials = "bearer-file".into();
            c.bearer_file = Some("/nonexistent/token".into());
        })
        .contains("bearer_file")
    );
    assert!(bad(&|c| c.credentials = "azure".into()).contains("azure_scope"));
    assert!(bad(&|c| c.tls_ca_file = Some("/nonexistent/ca.pem".into())).contains("tls_ca_file"));
    assert!(bad(&|c| c.addresses = vec!["not an address".into()]).contains("addresses"));
}

/// A TLS server for `localhost` with a certificate from a test CA; returns its port and the
/// CA's PEM file.
async fn tls_server(dir: &std::path::Path) -> (u16, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    pingora::tls::install_default_crypto_provider();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let key = pingora::tls::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = pingora::tls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = pingora::tls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let reply = Reply::Answer(json_answer("200 OK", PATIENT));
                    connection(tls, reply, Arc::new(Mutex::new(Vec::new()))).await;
                }
            });
        }
    });
    (port, ca_file)
}

#[tokio::test]
async fn tls_verifies_the_certificate_against_the_configured_anchors() {
    let dir = std::env::temp_dir().join(format!("fhirgate-upstream-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, ca_file) = tls_server(&dir).await;
    let tls = |base: &str, ca: Option<&std::path::Path>| TargetConfig {
        base_url: Some(format!("https://{base}:{port}/fhir")),
        addresses: vec![format!("127.0.0.1:{port}")],
        tls_ca_file: ca.map(|p| p.to_path_buf()),
        ..config(&[port])
    };

    let target = RemoteTarget::new(&tls("localhost", Some(&ca_file))).unwrap();
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!((response.status, response.body.as_slice()), (200, PATIENT.as_bytes()));

    // The system's anchors do not know the test CA.
    let target = RemoteTarget::new(&tls("localhost", None)).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    // The health check verifies the same way.
    target.check_health().await;
    assert!(!target.is_up());
    let trusting = RemoteTarget::new(&tls("localhost", Some(&ca_file))).unwrap();
    trusting.check_health().await;
    assert!(trusting.is_up());

    // A trusted certificate for another name is refused too.
    let target = RemoteTarget::new(&tls("fhir.example.org", Some(&ca_file))).unwrap();
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert!(matches!(error, FhirError::BadGateway(_)), "{error:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn request_targets_and_idempotence() {
    use super::client::{idempotent, request_target};
    let mut request = get("/Patient/a b/");
    request.query =
        vec![("identifier".into(), "http://x|1+2".into()), ("_has:Observation:patient:code".into(), "1".into())];
    assert_eq!(
        request_target("/fhir", &request),
        "/fhir/Patient/a%20b?identifier=http://x|1%2B2&_has:Observation:patient:code=1"
    );
    assert_eq!(request_target("", &get("metadata")), "/metadata");
    assert_eq!(request_target("", &get("Patient/x%20y%zz")), "/Patient/x%20y%25zz", "escapes kept, a stray % escaped");
    assert!(idempotent(&get("Patient/1")));
    assert!(idempotent(&Request::new(Method::Head, "Patient/1", "http://gateway")));
    assert!(!idempotent(&post("Patient")));
    let mut delete = Request::new(Method::Delete, "Patient/1", "http://gateway");
    assert!(!idempotent(&delete));
    delete.headers.if_match = Some("W/\"1\"".into());
    assert!(idempotent(&delete));
    assert!(!idempotent(&Request::new(Method::Patch, "Patient/1", "http://gateway")));
}

/// A resolver whose answers the test sets.
fn settable_resolver() -> (super::resolve::Resolver, Arc<Mutex<std::io::Result<Vec<std::net::SocketAddr>>>>) {
    let answer: Arc<Mutex<std::io::Result<Vec<std::net::SocketAddr>>>> = Arc::new(Mutex::new(Ok(Vec::new())));
    let current = answer.clone();
    let resolver: super::resolve::Resolver = Arc::new(move |_name: String| {
        let result = match &*current.lock().unwrap() {
            Ok(addrs) => Ok(addrs.clone()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        Box::pin(async move { result })
    });
    (resolver, answer)
}

#[tokio::test]
async fn addresses_are_resolved_again_on_connect_failure_and_periodically() {
    let moved_to = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;
    let later = server(vec![Reply::Answer(json_answer("200 OK", PATIENT))]).await;
    let (resolver, answer) = settable_resolver();
    let at = |port: u16| vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))];
    // Named by a host name (resolved by the system at start) whose server is gone.
    let gone = dead_port().await;
    let config = TargetConfig { addresses: vec![format!("localhost:{gone}")], retries: 0, ..config(&[gone]) };
    let target = RemoteTarget::with_resolver(&config, resolver).unwrap();

    // The name now points elsewhere: the failing request resolves it again and is tried there.
    *answer.lock().unwrap() = Ok(at(moved_to.port));
    let response = target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(moved_to.requests().len(), 1, "sent to the new address");

    // Periodic resolution (the server's task calls the same) moves it again.
    *answer.lock().unwrap() = Ok(at(later.port));
    assert!(target.resolve_now().await, "the addresses changed");
    target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!((moved_to.requests().len(), later.requests().len()), (1, 1));

    // A resolution that fails or finds nothing keeps what is known.
    *answer.lock().unwrap() = Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"));
    assert!(!target.resolve_now().await);
    *answer.lock().unwrap() = Ok(Vec::new());
    assert!(!target.resolve_now().await);
    target.upstream(None).send(&get("Patient/1")).await.unwrap();
    assert_eq!(later.requests().len(), 2, "still the known address");

    // Failures re-resolve at most once per RETRY_AFTER_FAILURE: the name now points at nothing
    // that answers; the first failure re-resolves (and fails), the next one right after does not
    // resolve again.
    let nothing = dead_port().await;
    *answer.lock().unwrap() = Ok(at(nothing));
    assert!(target.resolve_now().await);
    *answer.lock().unwrap() = Ok(at(later.port));
    let error = transport_error(target.upstream(None).send(&get("Patient/1")).await);
    assert_eq!(error.status(), 503, "{error:?}");
    assert_eq!(later.requests().len(), 2, "not re-resolved within the gap after the last resolution");
}

#[test]
fn a_name_that_does_not_resolve_at_start_stops_the_start() {
    let config = TargetConfig { addresses: vec!["no-such-host.invalid:443".into()], ..config(&[1]) };
    let message = RemoteTarget::new(&config).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("no-such-host.invalid"), "{message}");
}

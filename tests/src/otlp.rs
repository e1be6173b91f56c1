//! An OTLP/HTTP trace receiver for the tests: a real TCP HTTP/1.1 server on loopback that takes
//! `POST /v1/traces` bodies, decodes them as OTLP protobuf (`ExportTraceServiceRequest`, with
//! the `opentelemetry-proto` types: the real wire format, whoever sent it) and keeps every span
//! with its service name, so a test can check the traces fhirgate exported.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use prost::Message as _;

use crate::TestResult;

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the resource that sent it.
    pub service: String,
    pub name: String,
    /// Lowercase hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// OTLP's `SpanKind` (2 server, 3 client, 1 internal).
    pub kind: i32,
    /// String, integer and boolean attributes, as text.
    pub attributes: HashMap<String, String>,
    /// OTLP's status code (2: error).
    pub status_code: i32,
}

impl ReceivedSpan {
    /// An attribute's value as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The running receiver; stops accepting when the test process ends.
pub struct Receiver {
    pub port: u16,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// Requests whose body did not decode.
    errors: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Starts on a free loopback port.
    pub fn start() -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, e) = (spans.clone(), errors.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, e) = (s.clone(), e.clone());
                std::thread::spawn(move || serve(stream, &s, &e));
            }
        });
        Ok(Self { port, spans, errors })
    }

    /// The endpoint to configure (`tracing.endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits (up to `within`) until `done` holds for the spans received, then returns them;
    /// an error naming what arrived otherwise, or when a body did not decode.
    pub fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> TestResult<Vec<ReceivedSpan>> {
        let deadline = Instant::now() + within;
        loop {
            let errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
            if !errors.is_empty() {
                return Err(format!("undecodable OTLP bodies: {errors:?}").into());
            }
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            if Instant::now() > deadline {
                let names: Vec<String> =
                    spans.iter().map(|s| format!("{}:{} ({})", s.service, s.name, s.trace_id)).collect();
                return Err(format!("{what}: not received within {within:?}; received {names:?}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One connection: HTTP/1.1 requests with `Content-Length` bodies, kept alive.
fn serve(stream: TcpStream, spans: &Mutex<Vec<ReceivedSpan>>, errors: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => value.trim().clone_into(&mut content_type),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if request_line.starts_with("POST /v1/traces") {
            if content_type != "application/x-protobuf" {
                push(errors, format!("content type `{content_type}`"));
            }
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(export) => {
                    let received = flatten(export);
                    if let Ok(mut all) = spans.lock() {
                        all.extend(received);
                    }
                }
                Err(e) => push(errors, e.to_string()),
            }
        }
        // An empty `ExportTraceServiceResponse`: full success.
        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn push(errors: &Mutex<Vec<String>>, error: String) {
    if let Ok(mut e) = errors.lock() {
        e.push(error);
    }
}

fn flatten(export: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    status_code: span.status.map_or(0, |s| s.code),
                });
            }
        }
    }
    out
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => s.clone(),
                any_value::Value::IntValue(i) => i.to_string(),
                any_value::Value::BoolValue(b) => b.to_string(),
                any_value::Value::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

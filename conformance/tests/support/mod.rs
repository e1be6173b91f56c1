//! A tiny in-memory FHIR server for the runner's tests: std `TcpListener`, one thread, one
//! request per connection. It does create, read, vread, update (with `If-Match`), delete,
//! search by type (optionally `family=`), history at three levels and `/metadata` — enough
//! for the corpus's scripts — plus canned answers to batch/transaction, PATCH, conditional
//! delete, `$validate` and `$everything`; it logs every request line with its content type.
//! Started with tokens ([`MiniFhir::start_with_tokens`]) it authenticates like a gateway: no
//! or an unknown bearer token is 401, the reader's token may only read (403 otherwise), and
//! `/metadata` is open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The versions of each resource; `None` is a deletion.
type Store = BTreeMap<(String, String), Vec<(Option<Value>, &'static str)>>;

/// A running server; it lives as long as the test process.
pub struct MiniFhir {
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl MiniFhir {
    pub fn start() -> std::io::Result<Self> {
        Self::start_auth(None)
    }

    /// A server that wants `Bearer <admin>` for everything and `Bearer <reader>` for reads.
    #[allow(dead_code, reason = "not every test binary starts an authenticating server")]
    pub fn start_with_tokens(admin: &str, reader: &str) -> std::io::Result<Self> {
        Self::start_auth(Some((admin.to_owned(), reader.to_owned())))
    }

    fn start_auth(tokens: Option<(String, String)>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut store = Store::new();
            let mut next_id = 1;
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &mut store, &mut next_id, &thread_log, tokens.as_ref());
            }
        });
        Ok(Self { base, log })
    }

    /// The request lines seen so far (`GET /Patient/1`).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|q| !q.is_empty())
        .filter_map(|q| q.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Request { method, path: path.to_owned(), query, headers, body })
}

fn serve(
    mut stream: TcpStream,
    store: &mut Store,
    next_id: &mut u32,
    log: &Mutex<Vec<String>>,
    tokens: Option<&(String, String)>,
) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    if let Ok(mut log) = log.lock() {
        let query: Vec<String> = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let content_type = request.header("Content-Type").map(|c| format!(" [{c}]")).unwrap_or_default();
        log.push(format!("{} {}{query}{content_type}", request.method, request.path));
    }
    let (status, headers, body) = match tokens.and_then(|t| refused(&request, t)) {
        Some(reply) => reply,
        None => handle(&request, store, next_id),
    };
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", text.len());
    if !text.is_empty() {
        head.push_str("Content-Type: application/fhir+json; charset=utf-8\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(text.as_bytes())?;
    stream.flush()
}

type Reply = (u16, Vec<(String, String)>, Option<Value>);

/// 401 without a known token, 403 for the reader's writes; `None` lets the request through.
fn refused(request: &Request, (admin, reader): &(String, String)) -> Option<Reply> {
    if request.path == "/metadata" {
        return None;
    }
    let token = request.header("Authorization").and_then(|a| a.strip_prefix("Bearer "));
    match token {
        Some(t) if t == admin => None,
        Some(t) if t == reader && request.method == "GET" => None,
        Some(t) if t == reader => Some(outcome(403, "forbidden")),
        _ => Some(outcome(401, "login")),
    }
}

fn outcome(status: u16, code: &str) -> Reply {
    (status, vec![], Some(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]})))
}

fn with_meta(resource: &Value, id: &str, version: usize) -> Value {
    let mut r = resource.clone();
    r["id"] = json!(id);
    r["meta"] = json!({"versionId": version.to_string(), "lastUpdated": "2024-01-01T00:00:00Z"});
    r
}

fn resource_reply(status: u16, resource: Value, location: bool) -> Reply {
    let version = resource["meta"]["versionId"].as_str().unwrap_or("1").to_owned();
    let mut headers = vec![("ETag".to_owned(), format!("W/\"{version}\""))];
    if location {
        let path = format!(
            "/{}/{}/_history/{version}",
            resource["resourceType"].as_str().unwrap_or(""),
            resource["id"].as_str().unwrap_or("")
        );
        headers.push(("Location".to_owned(), path));
    }
    (status, headers, Some(resource))
}

fn bundle(kind: &str, entries: Vec<Value>, self_url: &str) -> Reply {
    let total = entries.len();
    (
        200,
        vec![],
        Some(json!({
            "resourceType": "Bundle", "type": kind, "total": total,
            "link": [{"relation": "self", "url": self_url}, {"relation": "first", "url": self_url}, {"relation": "last", "url": self_url}],
            "entry": entries
        })),
    )
}

fn history(store: &Store, filter: impl Fn(&(String, String)) -> bool, count: Option<usize>) -> Vec<Value> {
    let mut entries = Vec::new();
    for (key, versions) in store.iter().filter(|(k, _)| filter(k)) {
        for (i, (resource, method)) in versions.iter().enumerate().rev() {
            let mut entry = json!({"request": {"method": method, "url": format!("{}/{}", key.0, key.1)}});
            if let Some(r) = resource {
                entry["resource"] = r.clone();
            }
            entry["response"] = json!({"status": if i == 0 { "201" } else { "200" }});
            entries.push(entry);
        }
    }
    entries.truncate(count.unwrap_or(usize::MAX));
    entries
}

fn handle(request: &Request, store: &mut Store, next_id: &mut u32) -> Reply {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let known = |t: &str| matches!(t, "Patient" | "Observation" | "Bundle");
    let count = request.query.iter().find(|(k, _)| k == "_count").and_then(|(_, v)| v.parse().ok());
    let strict = request.header("Prefer").is_some_and(|p| p.contains("handling=strict"));
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["metadata"]) => {
            // JSON only (and FHIR XML for the scripts in XML): other formats are a 406.
            if request.header("Accept").is_some_and(|a| a.contains("turtle")) {
                return outcome(406, "not-supported");
            }
            let interactions = json!([{"code": "read"}, {"code": "vread"}, {"code": "create"}, {"code": "update"}, {"code": "delete"}, {"code": "search-type"}]);
            (
                200,
                vec![],
                Some(
                    json!({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
                "format": ["json"], "rest": [{"mode": "server", "resource": [{"type": "Patient", "interaction": interactions}]}]}),
                ),
            )
        }
        ("POST", []) => {
            let kind = body(request).and_then(|b| b["type"].as_str().map(str::to_owned)).unwrap_or_default();
            (200, vec![], Some(json!({"resourceType": "Bundle", "type": format!("{kind}-response")})))
        }
        ("POST", [_, "$validate"]) => (
            200,
            vec![],
            Some(
                json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}),
            ),
        ),
        ("GET", [_, _, "$everything"]) => bundle("searchset", vec![], &request.path),
        ("PATCH", [t, id]) => match store.get(&((*t).to_owned(), (*id).to_owned())).and_then(|v| v.last()) {
            Some((Some(r), _)) => resource_reply(200, r.clone(), false),
            _ => outcome(404, "not-found"),
        },
        ("DELETE", [_]) if !request.query.is_empty() => (204, vec![], None),
        ("GET", ["moved"]) => (302, vec![("Location".to_owned(), "/metadata".to_owned())], None),
        // An operation it does not offer, as FHIR servers answer it: 400 not-supported.
        (_, [.., op]) if op.starts_with('$') => outcome(400, "not-supported"),
        ("GET", ["_history"]) => bundle("history", history(store, |_| true, count), &request.path),
        (_, [t, ..]) if !known(t) => outcome(404, "not-found"),
        ("POST", [t]) => {
            let Some(resource) = body(request) else { return outcome(400, "structure") };
            if resource["resourceType"] != *t {
                return outcome(400, "invalid");
            }
            let id = format!("id{next_id}");
            *next_id += 1;
            let stored = with_meta(&resource, &id, 1);
            store.insert(((*t).to_owned(), id), vec![(Some(stored.clone()), "POST")]);
            resource_reply(201, stored, true)
        }
        ("GET", [t]) => search(store, t, &request.query, &request.path, strict),
        ("POST", [t, "_search"]) => {
            let form = String::from_utf8_lossy(&request.body);
            let query: Vec<(String, String)> =
                form.split('&').filter_map(|q| q.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            search(store, t, &query, &request.path, strict)
        }
        ("GET", [t, "_history"]) => bundle("history", history(store, |k| k.0 == *t, count), &request.path),
        ("GET", [t, id, "_history"]) => {
            bundle("history", history(store, |k| k.0 == *t && k.1 == *id, count), &request.path)
        }
        ("GET", [t, id, "_history", vid]) => {
            let version = store
                .get(&((*t).to_owned(), (*id).to_owned()))
                .and_then(|v| vid.parse::<usize>().ok().and_then(|n| v.get(n.wrapping_sub(1))));
            match version {
                Some((Some(r), _)) => resource_reply(200, r.clone(), false),
                Some((None, _)) => outcome(410, "deleted"),
                None => outcome(404, "not-found"),
            }
        }
        ("GET", [t, id]) => match store.get(&((*t).to_owned(), (*id).to_owned())).and_then(|v| v.last()) {
            Some((Some(r), _)) => resource_reply(200, r.clone(), false),
            Some((None, _)) => outcome(410, "deleted"),
            None => outcome(404, "not-found"),
        },
        ("PUT", [t, id]) => {
            let Some(resource) = body(request) else { return outcome(400, "structure") };
            if resource["id"] != *id {
                return outcome(400, "invalid");
            }
            let versions = store.entry(((*t).to_owned(), (*id).to_owned())).or_default();
            if let Some(wanted) = request.header("If-Match") {
                if wanted != format!("W/\"{}\"", versions.len()) {
                    return outcome(412, "conflict");
                }
            }
            let created = versions.is_empty();
            let stored = with_meta(&resource, id, versions.len() + 1);
            versions.push((Some(stored.clone()), "PUT"));
            resource_reply(if created { 201 } else { 200 }, stored, created)
        }
        ("DELETE", [t, id]) => match store.get_mut(&((*t).to_owned(), (*id).to_owned())) {
            Some(versions) => {
                versions.push((None, "DELETE"));
                (204, vec![], None)
            }
            None => (204, vec![], None),
        },
        _ => outcome(405, "not-supported"),
    }
}

/// The request body as JSON, converted from FHIR XML (as the runner reads it) when sent as XML.
fn body(request: &Request) -> Option<Value> {
    let text = std::str::from_utf8(&request.body).ok()?;
    if request.header("Content-Type").is_some_and(|c| c.contains("xml")) {
        return fhirgate_engine::xml_to_json_lenient(text.as_bytes()).ok();
    }
    serde_json::from_str(text).ok()
}

/// Search by type, optionally by exact `family`; other parameters are ignored, or refused under
/// `handling=strict`.
fn search(store: &Store, t: &str, query: &[(String, String)], path: &str, strict: bool) -> Reply {
    if strict && query.iter().any(|(k, _)| !matches!(k.as_str(), "family" | "_count")) {
        return outcome(400, "not-supported");
    }
    let family = query.iter().find(|(k, _)| k == "family").map(|(_, v)| v.clone());
    let entries = store
        .iter()
        .filter(|((rt, _), _)| rt == t)
        .filter_map(|(_, versions)| versions.last().and_then(|(r, _)| r.clone()))
        .filter(|r| family.as_ref().is_none_or(|f| r["name"][0]["family"] == **f))
        .map(|r| json!({"resource": r, "search": {"mode": "match"}}))
        .collect();
    bundle("searchset", entries, path)
}

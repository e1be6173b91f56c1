//! One attack request, sent alone or as the single entry of a batch or transaction Bundle, and
//! its answer reduced to what a client can compare: status, the ids it names, total and issue
//! codes. Two answers that differ reveal something (the oracle property of the contract).

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use fhirgate_e2e::{Reply, TestResult};
use serde_json::{Value, json};

use super::scene::{Scene, clip, ensure};

/// How a request travels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Via {
    Alone,
    Batch,
    Transaction,
}

pub const ALL_WAYS: [Via; 3] = [Via::Alone, Via::Batch, Via::Transaction];

/// A request body.
#[derive(Clone, Debug)]
pub enum Body {
    Resource(Value),
    JsonPatch(Value),
    /// A FHIRPath Patch `Parameters` resource.
    FhirPathPatch(Value),
    /// `application/x-www-form-urlencoded` (a `POST _search`); alone only.
    Form(String),
}

#[derive(Clone, Debug)]
pub struct Req {
    pub method: &'static str,
    pub url: String,
    pub if_none_exist: Option<String>,
    pub body: Option<Body>,
}

impl Req {
    pub fn get(url: impl Into<String>) -> Self {
        Self { method: "GET", url: url.into(), if_none_exist: None, body: None }
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Self { method: "DELETE", url: url.into(), if_none_exist: None, body: None }
    }

    pub fn with(method: &'static str, url: impl Into<String>, body: Body) -> Self {
        Self { method, url: url.into(), if_none_exist: None, body: Some(body) }
    }

    /// `METHOD url [If-None-Exist: criteria]`, for messages.
    pub fn describe(&self) -> String {
        match (&self.if_none_exist, &self.body) {
            (Some(c), _) => format!("`{} {} If-None-Exist: {c}`", self.method, self.url),
            (None, Some(Body::Form(f))) => format!("`{} {}` with `{f}`", self.method, self.url),
            _ => format!("`{} {}`", self.method, self.url),
        }
    }

    pub fn create_if_none_exist(url: &str, criteria: impl Into<String>, resource: Value) -> Self {
        Self {
            method: "POST",
            url: url.into(),
            if_none_exist: Some(criteria.into()),
            body: Some(Body::Resource(resource)),
        }
    }
}

/// What a client learns from an answer. Ids of resources the suite did not seed (`hid-*`,
/// `vis-*`) are new ones and compare equal; versions are kept for seeded resources.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub resource: Option<String>,
    pub entries: Vec<String>,
    pub total: Option<u64>,
    pub issues: Vec<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What came back: the reply as sent over the wire and the answer to the one request.
pub struct Sent {
    pub reply: Reply,
    pub answer: Answer,
}

impl Sent {
    /// The whole Bundle was refused (the principal may not send batches or transactions): the
    /// entry never ran, which reveals and changes nothing.
    pub fn bundle_refused(&self, via: Via) -> bool {
        via != Via::Alone && self.reply.status == 403
    }
}

/// Sends `req` as `token`, the way `via` says, and fails when the reply shows a hidden resource.
pub fn send(scene: &Scene, token: &str, req: &Req, via: Via) -> TestResult<Sent> {
    let reply = match via {
        Via::Alone => {
            let (body, content_type) = match &req.body {
                None => (None, "application/fhir+json"),
                Some(Body::Resource(v) | Body::FhirPathPatch(v)) => (Some(v.to_string()), "application/fhir+json"),
                Some(Body::JsonPatch(v)) => (Some(v.to_string()), "application/json-patch+json"),
                Some(Body::Form(f)) => (Some(f.clone()), "application/x-www-form-urlencoded"),
            };
            let mut headers = vec![("Content-Type", content_type)];
            if let Some(criteria) = &req.if_none_exist {
                headers.push(("If-None-Exist", criteria.as_str()));
            }
            scene.s.send_as(Some(token), req.method, &req.url, body.as_ref().map(String::as_bytes), &headers)?
        }
        Via::Batch | Via::Transaction => {
            let bundle = bundle_of(req, via);
            scene.s.send_as(Some(token), "POST", "", Some(bundle.to_string().as_bytes()), &[])?
        }
    };
    scene.no_leak(&format!("{} ({via:?})", req.describe()), &reply, token)?;
    let answer = answer_of(&reply, via)?;
    Ok(Sent { reply, answer })
}

/// The request as the one entry of a batch or transaction Bundle.
pub fn bundle_of(req: &Req, via: Via) -> Value {
    let mut request = json!({ "method": req.method, "url": req.url });
    if let Some(criteria) = &req.if_none_exist {
        request["ifNoneExist"] = json!(criteria);
    }
    let mut entry = json!({ "request": request });
    match &req.body {
        None => {}
        Some(Body::Resource(v) | Body::FhirPathPatch(v)) => entry["resource"] = v.clone(),
        Some(Body::JsonPatch(v)) => {
            entry["resource"] = json!({ "resourceType": "Binary", "contentType": "application/json-patch+json",
                                        "data": BASE64_STANDARD.encode(v.to_string()) });
        }
        // A search by form has no bundle form: the entry is the same search as a GET.
        Some(Body::Form(f)) => {
            let base = req.url.trim_end_matches("/_search");
            entry["request"] = json!({ "method": "GET", "url": format!("{base}?{f}") });
        }
    }
    if req.method == "POST" {
        entry["fullUrl"] = json!("urn:uuid:6d1a4f8e-0c2b-4b7e-9a51-3f0e2d9c8b71");
    }
    let kind = if via == Via::Batch { "batch" } else { "transaction" };
    json!({ "resourceType": "Bundle", "type": kind, "entry": [entry] })
}

fn answer_of(reply: &Reply, via: Via) -> TestResult<Answer> {
    let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if via == Via::Alone || reply.status != 200 {
        return Ok(reduce(reply.status, &body));
    }
    ensure!(body["resourceType"] == "Bundle", "a bundle's answer is not a Bundle: {}", clip(&reply.body));
    let entry = &body["entry"][0];
    let status_text = entry["response"]["status"].as_str().unwrap_or("");
    let status: u16 = status_text.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let inner = if entry["resource"].is_object() { &entry["resource"] } else { &entry["response"]["outcome"] };
    let mut answer = reduce(status, inner);
    if answer.resource.is_none() {
        answer.resource =
            entry["response"]["location"].as_str().map(|l| normal(l.split("/_history").next().unwrap_or(l), None));
    }
    Ok(answer)
}

fn reduce(status: u16, body: &Value) -> Answer {
    let mut answer =
        Answer { status, resource: None, entries: Vec::new(), total: body["total"].as_u64(), issues: Vec::new() };
    match body["resourceType"].as_str() {
        Some("OperationOutcome") => {
            answer.issues = body["issue"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["code"].as_str().unwrap_or("").to_string())
                .collect();
        }
        Some("Bundle") => {
            answer.resource = Some("Bundle".into());
            answer.entries = body["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| match super::scene::reference_of(&e["resource"]) {
                    Some(r) => normal(&r, e["resource"]["meta"]["versionId"].as_str()),
                    None => format!(
                        "{}:{}",
                        e["request"]["method"].as_str().unwrap_or(""),
                        e["request"]["url"].as_str().unwrap_or("?")
                    ),
                })
                .collect();
            answer.entries.sort();
        }
        Some(_) => {
            answer.resource = super::scene::reference_of(body).map(|r| normal(&r, body["meta"]["versionId"].as_str()));
        }
        None => {}
    }
    answer
}

/// `Type/id@version` for seeded resources, `Type/<new>` for ids the server made.
fn normal(reference: &str, version: Option<&str>) -> String {
    let (kind, id) = reference.rsplit_once('/').unwrap_or(("", reference));
    let kind = kind.rsplit('/').next().unwrap_or(kind);
    if id.starts_with("hid-") || id.starts_with("vis-") {
        format!("{kind}/{id}@{}", version.unwrap_or("?"))
    } else {
        format!("{kind}/<new>")
    }
}

/// The oracle property: the answer to a guess that is true on hidden data equals the answer to
/// the same guess when false, and so does what `token` sees afterwards at each of `probes`
/// (paths read back after each guess, e.g. the visible resource a conditional delete could
/// remove). The false guess goes first, so a true guess that changes something shows.
pub fn oracle(scene: &Scene, token: &str, true_req: &Req, false_req: &Req, via: Via, probes: &[&str]) -> TestResult {
    let look = || -> TestResult<Vec<Answer>> {
        probes.iter().map(|p| Ok(send(scene, token, &Req::get(*p), Via::Alone)?.answer)).collect()
    };
    let f = send(scene, token, false_req, via)?;
    let after_false = look()?;
    let t = send(scene, token, true_req, via)?;
    let after_true = look()?;
    ensure!(
        t.answer == f.answer,
        "{via:?}: the true guess {} answers {:?} ({}), the false guess {} {:?}",
        true_req.describe(),
        t.answer,
        clip(&t.reply.body),
        false_req.describe(),
        f.answer
    );
    ensure!(
        after_true == after_false,
        "{via:?}: after the true guess {probes:?} read {after_true:?}, after the false {after_false:?}"
    );
    Ok(())
}

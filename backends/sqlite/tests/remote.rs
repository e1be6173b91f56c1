//! The remote path (`engine::remote::Remote`) enforces the same decisions as a local store. The
//! remote FHIR server is a real fhirgate engine on an in-memory SQLite store, reached through an
//! `Upstream` that hands it each request; the client's decisions come from a small `Access` with
//! a real data rule: resources labelled with the confidentiality code `R` (restricted) are
//! hidden, and no client may write one. What the remote stores afterwards is read from its
//! store directly, without any restriction.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fhirgate_engine::access::{Access, Grant, Phase, Target, Unrestricted};
use fhirgate_engine::interaction::{Method, Request, Response};
use fhirgate_engine::remote::{Remote, Upstream};
use fhirgate_engine::{Engine, EngineConfig};
use serde_json::{Value, json};

const BASE: &str = "http://gateway.test/fhir";

/// A remote FHIR server: a fhirgate engine answering every request without restriction.
struct Server {
    engine: Engine,
    /// Requests that are not reads (`GET`/`HEAD`) it received.
    writes: AtomicUsize,
    /// The `If-Match` of each of them.
    if_matches: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Upstream for Server {
    async fn send(&self, request: &Request) -> fhirgate_engine::Result<Response> {
        if !matches!(request.method, Method::Get | Method::Head) {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.if_matches.lock().expect("not poisoned").push(request.headers.if_match.clone());
        }
        Ok(self.engine.handle(request, &Unrestricted).await)
    }
}

/// A remote that answers 200 with `body` to everything.
struct Broken {
    body: &'static str,
}

#[async_trait]
impl Upstream for Broken {
    async fn send(&self, _request: &Request) -> fhirgate_engine::Result<Response> {
        Ok(Response::rendered(200, "application/fhir+json", self.body.as_bytes().to_vec()))
    }
}

/// A client that may not see or write resources labelled `R`, and may do nothing with
/// `Practitioner`.
struct Restricted;

impl Access for Restricted {
    fn decide(&self, target: &Target) -> Grant {
        if target.resource_type == "Practitioner" {
            Grant::Denied("practitioners are not for this client".into())
        } else {
            Grant::PerResource
        }
    }

    fn allows(&self, _target: &Target, resource: &Value, _phase: Phase) -> bool {
        let labels = resource.pointer("/meta/security").and_then(Value::as_array);
        !labels.is_some_and(|l| l.iter().any(|c| c["code"] == "R"))
    }
}

async fn server() -> Server {
    let store = Arc::new(fhirgate_sqlite::connect("sqlite::memory:").await.expect("open an in-memory store"));
    let server = Server {
        engine: Engine::new(EngineConfig::default(), store),
        writes: AtomicUsize::new(0),
        if_matches: Mutex::new(Vec::new()),
    };
    for (id, restricted, identifier) in [("p1", false, "1"), ("p2", true, "1"), ("p3", false, "3")] {
        let mut patient = json!({
            "resourceType": "Patient", "id": id, "gender": "female",
            "identifier": [{"system": "x", "value": identifier}],
            "name": [{"family": format!("Family-{id}")}]
        });
        if restricted {
            patient["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]});
        }
        put_direct(&server, &format!("Patient/{id}"), &patient).await;
    }
    // An observation about the visible patient, and one about the hidden one.
    for (id, subject) in [("o1", "p1"), ("o2", "p2")] {
        let observation = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{subject}")}});
        put_direct(&server, &format!("Observation/{id}"), &observation).await;
    }
    server.writes.store(0, Ordering::SeqCst);
    server.if_matches.lock().expect("not poisoned").clear();
    server
}

/// Writes on the remote directly, as its own administrator would.
async fn put_direct(server: &Server, path: &str, body: &Value) {
    let response = server.engine.handle(&request(Method::Put, path, "", Some(body)), &Unrestricted).await;
    assert!(response.status == 201 || response.status == 200, "{path}: {}", response.status);
}

/// The resource the remote stores now, read without restriction.
async fn stored(server: &Server, path: &str) -> (u16, Value) {
    let response = server.engine.handle(&request(Method::Get, path, "", None), &Unrestricted).await;
    (response.status, body(&response))
}

fn request(method: Method, path: &str, query: &str, body: Option<&Value>) -> Request {
    let mut request = Request::new(method, path, BASE);
    request.query = fhirgate_engine::interaction::parse_query(query);
    if let Some(body) = body {
        request.headers.content_type = Some("application/fhir+json".into());
        request.body = serde_json::to_vec(body).expect("serialise");
    }
    request
}

fn body(response: &Response) -> Value {
    if response.body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&response.body).expect("a JSON body")
}

async fn remote(server: &Server, request: &Request) -> Response {
    Remote::new(EngineConfig::default()).handle(server, request, &Restricted).await
}

fn ids(bundle: &Value) -> Vec<String> {
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    entries.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned)).collect()
}

fn diagnostics(response: &Response) -> String {
    body(response)["issue"][0]["diagnostics"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_hidden_resource_reads_as_a_missing_one() {
    let server = server().await;
    let visible = remote(&server, &request(Method::Get, "Patient/p1", "", None)).await;
    assert_eq!(visible.status, 200);
    assert_eq!(body(&visible)["id"], "p1");
    assert_eq!(visible.header("ETag"), Some("W/\"1\""));

    let hidden = remote(&server, &request(Method::Get, "Patient/p2", "", None)).await;
    let missing = remote(&server, &request(Method::Get, "Patient/p9", "", None)).await;
    assert_eq!((hidden.status, missing.status), (404, 404));
    assert_eq!(diagnostics(&hidden).replace("p2", "ID"), diagnostics(&missing).replace("p9", "ID"));
    assert_eq!(body(&hidden).as_object().map(|o| o.len()), body(&missing).as_object().map(|o| o.len()));

    // Not even a 304 or a version tells it exists.
    let mut cached = request(Method::Get, "Patient/p2", "", None);
    cached.headers.if_none_match = Some("*".into());
    assert_eq!(remote(&server, &cached).await.status, 404);
    assert_eq!(remote(&server, &request(Method::Get, "Patient/p2/_history/1", "", None)).await.status, 404);
    assert_eq!(remote(&server, &request(Method::Get, "Patient/p2/_history", "", None)).await.status, 404);
    let mut cached = request(Method::Get, "Patient/p1", "", None);
    cached.headers.if_none_match = Some("W/\"1\"".into());
    assert_eq!(remote(&server, &cached).await.status, 304);

    // `_elements` is applied here, after the decision on the whole resource.
    let subset = remote(&server, &request(Method::Get, "Patient/p1", "_elements=gender", None)).await;
    assert_eq!(subset.status, 200);
    assert!(body(&subset).get("name").is_none(), "{}", body(&subset));
    assert_eq!(body(&subset)["gender"], "female");
}

#[tokio::test]
async fn searches_show_only_what_the_client_may_see() {
    let server = server().await;
    let page = remote(&server, &request(Method::Get, "Patient", "_total=accurate&_sort=_id", None)).await;
    assert_eq!(page.status, 200);
    let bundle = body(&page);
    assert_eq!(ids(&bundle), ["p1", "p3"]);
    assert!(bundle.get("total").is_none(), "the total would count the hidden patient: {bundle}");
    assert!(bundle["link"].as_array().is_some_and(|l| l.iter().any(|l| l["relation"] == "self")), "{bundle}");

    // A parameter the engine does not understand is not sent (it could not be checked), and
    // the client is told so.
    let unknown = remote(&server, &request(Method::Get, "Patient", "nonsense=1&_sort=_id", None)).await;
    let bundle = body(&unknown);
    assert_eq!(ids(&bundle), ["p1", "p3"]);
    let notes =
        bundle["entry"].as_array().expect("entries").iter().filter(|e| e["search"]["mode"] == "outcome").count();
    assert_eq!(notes, 1, "{bundle}");

    // A client that may see everything gets the remote's answer, total included.
    let all = Remote::new(EngineConfig::default())
        .handle(&server, &request(Method::Get, "Patient", "_total=accurate", None), &Unrestricted)
        .await;
    assert_eq!(body(&all)["total"], 3);

    // Included resources are decided too.
    let included =
        remote(&server, &request(Method::Get, "Observation", "_include=Observation:subject&_sort=_id", None)).await;
    assert_eq!(included.status, 200);
    assert_eq!(ids(&body(&included)), ["o1", "o2", "p1"]);

    // `_elements` is applied after the decision (the remote was asked for whole resources).
    let subset = remote(&server, &request(Method::Get, "Patient", "_elements=gender", None)).await;
    let bundle = body(&subset);
    assert_eq!(ids(&bundle).len(), 2);
    assert!(bundle["entry"][0]["resource"].get("name").is_none(), "{bundle}");

    // History entries are decided one by one.
    let history = remote(&server, &request(Method::Get, "Patient/_history", "", None)).await;
    assert_eq!(history.status, 200);
    let mut seen = ids(&body(&history));
    seen.sort();
    assert_eq!(seen, ["p1", "p3"]);
}

#[tokio::test]
async fn next_links_lead_to_a_match_the_client_may_see() {
    let server = server().await;
    // Hidden patients sorting after the last visible one (p1, [p2 hidden], p3, [p4 to p7 hidden]).
    for n in 4..8 {
        let patient = json!({"resourceType": "Patient", "id": format!("p{n}"),
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}});
        put_direct(&server, &format!("Patient/p{n}"), &patient).await;
    }
    for path in ["Patient", "Patient/_history"] {
        let mut pages = Vec::new();
        let mut next = Some(format!("{BASE}/{path}?_sort=_id&_count=1"));
        while let Some(url) = next.take() {
            assert!(pages.len() < 10, "{path}: a search of two visible matches pages on: {pages:?}");
            let below = url.strip_prefix(BASE).expect("a link on the remote's base").trim_start_matches('/');
            let (path, query) = below.split_once('?').unwrap_or((below, ""));
            let page = remote(&server, &request(Method::Get, path, query, None)).await;
            assert_eq!(page.status, 200, "{url}: {}", diagnostics(&page));
            let bundle = body(&page);
            pages.push(ids(&bundle));
            let links = bundle["link"].as_array().cloned().unwrap_or_default();
            next = links.iter().find(|l| l["relation"] == "next").and_then(|l| l["url"].as_str()).map(str::to_owned);
        }
        // Each page shows a match: none of the hidden ones' pages is served empty, and the last
        // visible match's page has no next link (only hidden ones follow).
        assert!(pages.iter().all(|p| !p.is_empty()), "{path}: {pages:?}");
        let mut seen = pages.concat();
        seen.sort();
        assert_eq!(seen, ["p1", "p3"], "{path}: {pages:?}");
        assert_eq!(pages.len(), 2, "{path}: {pages:?}");
    }
}

#[tokio::test]
async fn counts_and_chains_that_would_reveal_hidden_data_are_refused() {
    let server = server().await;
    let count = remote(&server, &request(Method::Get, "Patient", "_summary=count", None)).await;
    assert_eq!(count.status, 403, "{}", diagnostics(&count));
    let chain = remote(&server, &request(Method::Get, "Observation", "subject.family=Family-p2", None)).await;
    assert_eq!(chain.status, 403, "{}", diagnostics(&chain));
    let has = remote(&server, &request(Method::Get, "Patient", "_has:Observation:subject:status=final", None)).await;
    assert_eq!(has.status, 403);
    let denied = remote(&server, &request(Method::Get, "Practitioner", "", None)).await;
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn hidden_resources_are_never_replaced_or_deleted() {
    let server = server().await;
    let replacement = json!({"resourceType": "Patient", "id": "p2", "gender": "male"});
    let update = remote(&server, &request(Method::Put, "Patient/p2", "", Some(&replacement))).await;
    assert_eq!(update.status, 403, "{}", diagnostics(&update));
    let delete = remote(&server, &request(Method::Delete, "Patient/p2", "", None)).await;
    assert_eq!(delete.status, 403);
    let mut patch = request(Method::Patch, "Patient/p2", "", None);
    patch.headers.content_type = Some("application/json-patch+json".into());
    patch.body = br#"[{"op":"replace","path":"/gender","value":"male"}]"#.to_vec();
    assert_eq!(remote(&server, &patch).await.status, 403);

    assert_eq!(server.writes.load(Ordering::SeqCst), 0, "nothing was sent to the remote");
    let (status, p2) = stored(&server, "Patient/p2").await;
    assert_eq!((status, p2["meta"]["versionId"].as_str(), p2["gender"].as_str()), (200, Some("1"), Some("female")));

    // Nor may a client write a resource it could not see.
    let mut labelled = json!({"resourceType": "Patient", "id": "p1", "gender": "male"});
    labelled["meta"] = json!({"security": [{"code": "R"}]});
    assert_eq!(remote(&server, &request(Method::Put, "Patient/p1", "", Some(&labelled))).await.status, 403);
    assert_eq!(remote(&server, &request(Method::Post, "Patient", "", Some(&labelled))).await.status, 403);
    assert_eq!(server.writes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn patches_are_decided_on_their_result_and_sent_with_the_version_decided() {
    let server = server().await;
    let mut hide = request(Method::Patch, "Patient/p1", "", None);
    hide.headers.content_type = Some("application/json-patch+json".into());
    hide.body = br#"[{"op":"add","path":"/meta","value":{"security":[{"code":"R"}]}}]"#.to_vec();
    let refused = remote(&server, &hide).await;
    assert_eq!(refused.status, 403, "{}", diagnostics(&refused));
    assert_eq!(server.writes.load(Ordering::SeqCst), 0);
    assert_eq!(stored(&server, "Patient/p1").await.1["meta"]["versionId"], "1");

    let mut change = request(Method::Patch, "Patient/p1", "", None);
    change.headers.content_type = Some("application/json-patch+json".into());
    change.body = br#"[{"op":"replace","path":"/gender","value":"other"}]"#.to_vec();
    let patched = remote(&server, &change).await;
    assert_eq!(patched.status, 200, "{}", diagnostics(&patched));
    let (_, p1) = stored(&server, "Patient/p1").await;
    assert_eq!((p1["gender"].as_str(), p1["meta"]["versionId"].as_str()), (Some("other"), Some("2")));
    // Sent as an update of the version decided.
    assert_eq!(*server.if_matches.lock().expect("not poisoned"), [Some("W/\"1\"".to_owned())]);

    // A client `If-Match` that is not the current version: 412, nothing sent.
    let before = server.writes.load(Ordering::SeqCst);
    change.headers.if_match = Some("W/\"1\"".into());
    assert_eq!(remote(&server, &change).await.status, 412);
    let update = json!({"resourceType": "Patient", "id": "p1", "gender": "male"});
    let mut stale = request(Method::Put, "Patient/p1", "", Some(&update));
    stale.headers.if_match = Some("W/\"1\"".into());
    assert_eq!(remote(&server, &stale).await.status, 412);
    assert_eq!(server.writes.load(Ordering::SeqCst), before);

    // Visible resources are updated and deleted.
    stale.headers.if_match = Some("W/\"2\"".into());
    assert_eq!(remote(&server, &stale).await.status, 200);
    assert_eq!(stored(&server, "Patient/p1").await.1["gender"], "male");
    assert_eq!(remote(&server, &request(Method::Delete, "Patient/p3", "", None)).await.status, 204);
    assert_eq!(stored(&server, "Patient/p3").await.0, 410);

    // The deletion of a hidden resource is hidden from the history too; a visible one is not.
    let deleted = server.engine.handle(&request(Method::Delete, "Patient/p2", "", None), &Unrestricted).await;
    assert_eq!(deleted.status, 204);
    // A deleted resource the client could see is gone (410); one it could not see is not found.
    assert_eq!(remote(&server, &request(Method::Get, "Patient/p3", "", None)).await.status, 410);
    let hidden = remote(&server, &request(Method::Get, "Patient/p2", "", None)).await;
    assert_eq!(hidden.status, 404, "{}", diagnostics(&hidden));
    let history = remote(&server, &request(Method::Get, "Patient/_history", "", None)).await;
    let bundle = body(&history);
    let deletions: Vec<&str> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["request"]["method"] == "DELETE")
        .filter_map(|e| e["request"]["url"].as_str())
        .collect();
    assert_eq!(deletions, ["Patient/p3"], "{bundle}");
}

#[tokio::test]
async fn conditional_writes_never_touch_hidden_matches() {
    let server = server().await;
    // `identifier=x|1` matches p1 (visible) and p2 (hidden): one visible match, no ambiguity.
    let update = json!({"resourceType": "Patient", "gender": "unknown", "identifier": [{"system": "x", "value": "1"}]});
    let updated = remote(&server, &request(Method::Put, "Patient", "identifier=x|1", Some(&update))).await;
    assert_eq!(updated.status, 200, "{}", diagnostics(&updated));
    assert_eq!(stored(&server, "Patient/p1").await.1["gender"], "unknown");
    assert_eq!(stored(&server, "Patient/p2").await.1["meta"]["versionId"], "1");

    let deleted = remote(&server, &request(Method::Delete, "Patient", "identifier=x|1", None)).await;
    assert_eq!(deleted.status, 204, "{}", diagnostics(&deleted));
    assert_eq!(stored(&server, "Patient/p1").await.0, 410);
    assert_eq!(stored(&server, "Patient/p2").await.0, 200, "the hidden match is not deleted");

    // Only the hidden one matches now: nothing to delete, a conditional update creates.
    assert_eq!(remote(&server, &request(Method::Delete, "Patient", "identifier=x|1", None)).await.status, 204);
    assert_eq!(stored(&server, "Patient/p2").await.0, 200);
    let created = remote(&server, &request(Method::Put, "Patient", "identifier=x|1", Some(&update))).await;
    assert_eq!(created.status, 201, "{}", diagnostics(&created));
    assert_eq!(stored(&server, "Patient/p2").await.1["meta"]["versionId"], "1");

    // Conditional create does not report the hidden match either.
    let mut create = request(Method::Post, "Patient", "", Some(&update));
    create.headers.if_none_exist = Some("identifier=x|3".into());
    let existing = remote(&server, &create).await;
    assert_eq!((existing.status, body(&existing)["id"].as_str()), (200, Some("p3")));
}

#[tokio::test]
async fn transactions_are_refused_whole_before_anything_is_sent() {
    let server = server().await;
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Practitioner"}, "request": {"method": "POST", "url": "Practitioner"}}
    ]});
    let denied = remote(&server, &request(Method::Post, "", "", Some(&transaction))).await;
    assert_eq!(denied.status, 403, "{}", diagnostics(&denied));
    // Writes decided per resource cannot be enforced inside the remote's transaction.
    let writes = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let refused = remote(&server, &request(Method::Post, "", "", Some(&writes))).await;
    assert_eq!(refused.status, 403, "{}", diagnostics(&refused));
    assert!(diagnostics(&refused).contains("batch"), "{}", diagnostics(&refused));
    assert_eq!(server.writes.load(Ordering::SeqCst), 0);
    let (_, all) = stored(&server, "Patient").await;
    assert_eq!(ids(&all).len(), 3);

    // Read entries are decided on what the remote answers.
    let reads = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/p2"}},
        {"request": {"method": "GET", "url": "Patient?_sort=_id"}}
    ]});
    let response = remote(&server, &request(Method::Post, "", "", Some(&reads))).await;
    assert_eq!(response.status, 200, "{}", diagnostics(&response));
    let bundle = body(&response);
    assert_eq!(bundle["entry"][0]["resource"]["id"], "p1");
    assert!(bundle["entry"][1]["response"]["status"].as_str().is_some_and(|s| s.starts_with("404")), "{bundle}");
    assert!(bundle["entry"][1].get("resource").is_none());
    assert_eq!(ids(&bundle["entry"][2]["resource"]), ["p1", "p3"]);
}

#[tokio::test]
async fn batch_entries_go_through_the_same_decisions() {
    let server = server().await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/p2"}},
        {"request": {"method": "DELETE", "url": "Patient/p2"}},
        {"request": {"method": "GET", "url": "Practitioner/x"}},
        {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let response = remote(&server, &request(Method::Post, "", "", Some(&batch))).await;
    assert_eq!(response.status, 200);
    let bundle = body(&response);
    assert_eq!(bundle["type"], "batch-response");
    let statuses: Vec<&str> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["response"]["status"].as_str())
        .map(|s| &s[..3])
        .collect();
    assert_eq!(statuses, ["200", "404", "403", "404", "201"]);
    assert_eq!(stored(&server, "Patient/p2").await.0, 200);
}

#[tokio::test]
async fn an_unusable_answer_is_a_bad_gateway() {
    for garbage in ["not json", "[1, 2]", r#"{"resourceType": "Patient", "id": "p1"}"#] {
        let broken = Broken { body: garbage };
        let search = Remote::new(EngineConfig::default())
            .handle(&broken, &request(Method::Get, "Patient", "", None), &Restricted)
            .await;
        assert_eq!(search.status, 502, "{garbage}");
        assert_eq!(body(&search)["resourceType"], "OperationOutcome");
    }
    let broken = Broken { body: "{" };
    let read = Remote::new(EngineConfig::default())
        .handle(&broken, &request(Method::Get, "Patient/p1", "", None), &Unrestricted)
        .await;
    assert_eq!(read.status, 502);
    let broken = Broken { body: r#"{"resourceType": "Observation", "id": "p1"}"# };
    let read = Remote::new(EngineConfig::default())
        .handle(&broken, &request(Method::Get, "Patient/p1", "", None), &Unrestricted)
        .await;
    assert_eq!(read.status, 502);
}

#[tokio::test]
async fn the_remotes_operation_outcomes_pass_through() {
    let server = server().await;
    let invalid = json!({"resourceType": "Patient", "id": "another"});
    // Forwarded as it is (the unrestricted client): the remote's own 400 comes back.
    let response = Remote::new(EngineConfig::default())
        .handle(&server, &request(Method::Put, "Patient/p1", "", Some(&invalid)), &Unrestricted)
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(body(&response)["resourceType"], "OperationOutcome");
    assert!(diagnostics(&response).contains("does not match"), "{}", diagnostics(&response));
}

#[tokio::test]
async fn operations_run_only_on_instances_the_client_may_see() {
    let server = server().await;
    // The hidden instance is not found, before anything is sent.
    let hidden = remote(&server, &request(Method::Post, "Patient/p2/$meta-delete", "", None)).await;
    assert_eq!(hidden.status, 404, "{}", diagnostics(&hidden));
    assert_eq!(server.writes.load(Ordering::SeqCst), 0);
    // On a visible one it is sent, and the remote's answer (this remote has no such operation)
    // comes back as the remote wrote it.
    let visible = remote(&server, &request(Method::Post, "Patient/p1/$meta-delete", "", None)).await;
    assert_eq!(visible.status, 400, "{}", diagnostics(&visible));
    assert_eq!(server.writes.load(Ordering::SeqCst), 1);
    // A resource given to an operation is decided like any resource sent.
    let mut labelled = json!({"resourceType": "Patient", "gender": "male"});
    labelled["meta"] = json!({"security": [{"code": "R"}]});
    let given = remote(&server, &request(Method::Post, "Patient/$validate", "", Some(&labelled))).await;
    assert_eq!(given.status, 403, "{}", diagnostics(&given));
    assert_eq!(server.writes.load(Ordering::SeqCst), 1);
}

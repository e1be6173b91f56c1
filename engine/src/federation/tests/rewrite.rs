//! [`Rewrite`] both ways: paths, search parameters, bodies, headers, and the round trip.

#![expect(clippy::panic, reason = "a test fails by panicking")]

use serde_json::{Value, json};

use crate::federation::Rewrite;
use crate::federation::body::{Stop, Walk};
use crate::federation::ids::{Ids, Way};
use crate::interaction::{Method, Request, Response};

const CLIENT: &str = "https://gw.example/lab";
const TARGET: &str = "https://lab.internal/fhir";

fn lab() -> Rewrite {
    Rewrite { id_prefix: "LAB-".into(), target_base: TARGET.into(), client_base: CLIENT.into() }
}

fn get(path_and_query: &str) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut r = Request::new(Method::Get, path, CLIENT);
    r.query = crate::interaction::parse_query(query);
    r
}

fn with_body(method: Method, path: &str, body: Value) -> Request {
    let mut r = Request::new(method, path, CLIENT);
    r.headers.content_type = Some("application/fhir+json".into());
    r.body = serde_json::to_vec(&body).unwrap_or_default();
    r
}

fn target(request: &Request) -> Option<Request> {
    match lab().to_target(request) {
        Ok(r) => r,
        Err(e) => panic!("to_target failed: {e}"),
    }
}

fn query_of(request: &Request) -> Vec<(&str, &str)> {
    request.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::rendered(status, "application/fhir+json; charset=utf-8", serde_json::to_vec(body).unwrap_or_default())
}

fn client_body(response: Response) -> Value {
    let r = lab().to_client(response);
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[test]
fn path_ids_lose_the_prefix_and_other_ids_are_not_this_targets() {
    let cases = [
        ("Patient/LAB-123", Some("Patient/123")),
        ("Patient/LAB-123/_history/2", Some("Patient/123/_history/2")),
        ("Patient/LAB-1/$everything", Some("Patient/1/$everything")),
        ("Patient/LAB-1/Observation", Some("Patient/1/Observation")),
        ("Patient", Some("Patient")),
        ("Patient/_history", Some("Patient/_history")),
        ("Patient/$validate", Some("Patient/$validate")),
        ("metadata", Some("metadata")),
        ("Patient/123", None),
        ("Patient/CARD-9/_history/1", None),
        ("Patient/LAB-", None),
    ];
    for (path, expected) in cases {
        let out = target(&get(path));
        assert_eq!(out.as_ref().map(|r| r.path.as_str()), expected, "{path}");
        if let Some(out) = out {
            assert_eq!(out.base_url, TARGET, "{path}: the target's base");
        }
    }
}

#[test]
fn id_and_reference_parameters_lose_the_prefix() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("Patient?_id=LAB-1,LAB-2", &[("_id", "1,2")]),
        ("Patient?_id=LAB-1,CARD-2", &[("_id", "1")]),
        ("Observation?subject=Patient/LAB-1", &[("subject", "Patient/1")]),
        ("Observation?patient=LAB-1", &[("patient", "1")]),
        ("Observation?subject:Patient=LAB-7", &[("subject:Patient", "7")]),
        (
            "Observation?subject=https://gw.example/lab/Patient/LAB-1",
            &[("subject", "https://lab.internal/fhir/Patient/1")],
        ),
        // An absolute reference to another target's resource is stored and searched as written.
        (
            "Observation?subject=https://gw.example/lab/Patient/CARD-1",
            &[("subject", "https://gw.example/lab/Patient/CARD-1")],
        ),
        ("Observation?subject=http://elsewhere.org/Patient/5", &[("subject", "http://elsewhere.org/Patient/5")]),
        ("Observation?code=LAB-1", &[("code", "LAB-1")]),
        ("Observation?subject:Patient._id=LAB-1", &[("subject:Patient._id", "1")]),
        ("Observation?subject._id=LAB-1", &[("subject._id", "1")]),
        ("Observation?subject:Patient.name=LAB-x", &[("subject:Patient.name", "LAB-x")]),
        ("Observation?subject:Patient.organization=LAB-o", &[("subject:Patient.organization", "o")]),
        ("Patient?_has:Observation:patient:_id=LAB-o1", &[("_has:Observation:patient:_id", "o1")]),
        (
            "Patient?_has:Observation:patient:subject=Patient/LAB-3",
            &[("_has:Observation:patient:subject", "Patient/3")],
        ),
        ("Patient?_id:not=CARD-1&gender=male", &[("gender", "male")]),
        ("Patient?_id:not=LAB-1,CARD-1", &[("_id:not", "1")]),
        ("Observation?subject:missing=true", &[("subject:missing", "true")]),
        ("Observation?subject:identifier=urn:x|LAB-1", &[("subject:identifier", "urn:x|LAB-1")]),
        (
            "Observation?_include=Observation:subject&_sort=-date",
            &[("_include", "Observation:subject"), ("_sort", "-date")],
        ),
        ("?_type=Observation&subject=Patient/LAB-1", &[("_type", "Observation"), ("subject", "Patient/1")]),
        ("Patient/LAB-1/Observation?performer=Practitioner/LAB-p", &[("performer", "Practitioner/p")]),
    ];
    for (url, expected) in cases {
        let out = target(&get(url));
        assert_eq!(out.as_ref().map(query_of), Some(expected.to_vec()), "{url}");
    }
}

#[test]
fn a_search_that_can_match_nothing_here_is_not_this_targets() {
    for url in [
        "Patient?_id=CARD-2",
        "Observation?subject=Patient/1",
        "Observation?patient=CARD-1,CARD-2",
        "Observation?subject:Patient._id=9",
    ] {
        assert_eq!(target(&get(url)), None, "{url}");
    }
    // An operation's parameters are its own.
    let out = target(&get("Patient/LAB-1/$everything?_since=2020&start=CARD-1"));
    assert_eq!(out.as_ref().map(query_of), Some(vec![("_since", "2020"), ("start", "CARD-1")]));
}

#[test]
fn conditional_criteria_and_search_forms_lose_the_prefix() {
    let mut create = with_body(Method::Post, "Observation", json!({"resourceType": "Observation"}));
    create.headers.if_none_exist = Some("subject=Patient/LAB-1&code=x".into());
    let out = target(&create);
    assert_eq!(out.and_then(|r| r.headers.if_none_exist).as_deref(), Some("subject=Patient/1&code=x"));
    create.headers.if_none_exist = Some("_id=CARD-1".into());
    assert_eq!(target(&create), None);

    let mut form = Request::new(Method::Post, "Observation/_search", CLIENT);
    form.headers.content_type = Some("application/x-www-form-urlencoded".into());
    form.body = b"subject=Patient%2FLAB-1&code=a%20b".to_vec();
    let out = target(&form).map(|r| String::from_utf8_lossy(&r.body).into_owned());
    assert_eq!(out.as_deref(), Some("subject=Patient/1&code=a%20b"));
}

#[test]
fn bodies_lose_prefixes_and_the_client_base() {
    let observation = json!({
        "resourceType": "Observation", "id": "LAB-o1",
        "subject": {"reference": "Patient/LAB-1"},
        "performer": [
            {"reference": "https://gw.example/lab/Practitioner/LAB-p/_history/2"},
            {"reference": "https://gw.example/lab/Practitioner/CARD-p"},
            {"reference": "http://elsewhere.org/Practitioner/1"},
            {"reference": "#c1"},
            {"reference": "urn:uuid:0d0b6c1e-8d4e-4c4e-9f5e-2a1b3c4d5e6f"},
            {"reference": "Practitioner?identifier=urn:x|LAB-1"},
        ],
        "contained": [{"resourceType": "Organization", "id": "c1", "partOf": {"reference": "Organization/LAB-9"}}],
        "note": [{"text": "see https://gw.example/lab/Patient/LAB-1 and https://gw.example/labx/1"}],
    });
    let out = target(&with_body(Method::Put, "Observation/LAB-o1", observation)).map(|r| body_of(&r));
    let expected = json!({
        "resourceType": "Observation", "id": "o1",
        "subject": {"reference": "Patient/1"},
        "performer": [
            {"reference": "https://lab.internal/fhir/Practitioner/p/_history/2"},
            {"reference": "https://gw.example/lab/Practitioner/CARD-p"},
            {"reference": "http://elsewhere.org/Practitioner/1"},
            {"reference": "#c1"},
            {"reference": "urn:uuid:0d0b6c1e-8d4e-4c4e-9f5e-2a1b3c4d5e6f"},
            {"reference": "Practitioner?identifier=urn:x|LAB-1"},
        ],
        "contained": [{"resourceType": "Organization", "id": "c1", "partOf": {"reference": "Organization/9"}}],
        "note": [{"text": "see https://lab.internal/fhir/Patient/1 and https://gw.example/labx/1"}],
    });
    assert_eq!(out, Some(expected));
}

#[test]
fn bodies_that_cannot_go_to_this_target_are_refused() {
    let relative_to_other = json!({"resourceType": "Observation", "subject": {"reference": "Patient/CARD-1"}});
    let err = lab().to_target(&with_body(Method::Post, "Observation", relative_to_other));
    assert!(
        matches!(&err, Err(e) if e.status() == 400 && e.to_string().contains("https://gw.example/lab/Patient/CARD-1")),
        "{err:?}"
    );
    let update_without_prefix = json!({"resourceType": "Patient", "id": "1"});
    let err = lab().to_target(&with_body(Method::Put, "Patient/LAB-1", update_without_prefix.clone()));
    assert!(matches!(&err, Err(e) if e.status() == 400), "{err:?}");
    // A create's id is the server's to choose: left as it is.
    let out = target(&with_body(Method::Post, "Patient", update_without_prefix.clone())).map(|r| body_of(&r));
    assert_eq!(out, Some(update_without_prefix));
    // Not JSON: the target answers it.
    let mut garbage = Request::new(Method::Post, "Patient", CLIENT);
    garbage.body = b"<Patient/>".to_vec();
    assert_eq!(target(&garbage).map(|r| r.body), Some(b"<Patient/>".to_vec()));
}

#[test]
fn a_local_target_cannot_store_urls_of_other_targets() {
    let local = Rewrite { id_prefix: "LAB-".into(), target_base: CLIENT.into(), client_base: CLIENT.into() };
    let body =
        json!({"resourceType": "Observation", "subject": {"reference": "https://gw.example/lab/Patient/CARD-1"}});
    let err = local.to_target(&with_body(Method::Post, "Observation", body));
    assert!(matches!(&err, Err(e) if e.status() == 400), "{err:?}");
}

#[test]
fn transaction_bundles_lose_prefixes_and_entries_of_other_targets_are_not_this_targets() {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a7c2b1e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Observation", "subject": {"reference": "Patient/LAB-1"}},
         "request": {"method": "POST", "url": "Observation", "ifNoneExist": "_id=LAB-o"}},
        {"fullUrl": "https://gw.example/lab/Patient/LAB-1",
         "resource": {"resourceType": "Patient", "id": "LAB-1"},
         "request": {"method": "PUT", "url": "Patient/LAB-1"}},
        {"request": {"method": "DELETE", "url": "Observation?subject=Patient/LAB-1"}},
    ]});
    let out = target(&with_body(Method::Post, "", bundle)).map(|r| body_of(&r));
    let expected = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a7c2b1e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Observation", "subject": {"reference": "Patient/1"}},
         "request": {"method": "POST", "url": "Observation", "ifNoneExist": "_id=o"}},
        {"fullUrl": "https://lab.internal/fhir/Patient/1",
         "resource": {"resourceType": "Patient", "id": "1"},
         "request": {"method": "PUT", "url": "Patient/1"}},
        {"request": {"method": "DELETE", "url": "Observation?subject=Patient/1"}},
    ]});
    assert_eq!(out, Some(expected));
    for other in ["Patient/CARD-1", "https://gw.example/lab/Patient/CARD-1", "Observation?_id=CARD-1"] {
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": other}}]});
        assert_eq!(target(&with_body(Method::Post, "", bundle)), None, "{other}");
    }
    let mismatched = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "1"}, "request": {"method": "PUT", "url": "Patient/LAB-1"}}]});
    assert!(lab().to_target(&with_body(Method::Post, "", mismatched)).is_err());
}

#[test]
fn json_patch_values_at_references_lose_the_prefix() {
    let patch = json!([
        {"op": "replace", "path": "/subject/reference", "value": "Patient/LAB-2"},
        {"op": "add", "path": "/performer/-", "value": {"reference": "Practitioner/LAB-p"}},
        {"op": "replace", "path": "/status", "value": "final"},
    ]);
    let mut r = with_body(Method::Patch, "Observation/LAB-o", patch);
    r.headers.content_type = Some("application/json-patch+json".into());
    let out = target(&r).map(|r| body_of(&r));
    assert_eq!(
        out,
        Some(json!([
            {"op": "replace", "path": "/subject/reference", "value": "Patient/2"},
            {"op": "add", "path": "/performer/-", "value": {"reference": "Practitioner/p"}},
            {"op": "replace", "path": "/status", "value": "final"},
        ]))
    );
}

#[test]
fn responses_gain_prefixes_and_the_client_base() {
    let read = json_response(200, &json!({
        "resourceType": "Observation", "id": "o1", "meta": {"versionId": "2"},
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "https://lab.internal/fhir/Practitioner/p"}, {"reference": "#c"}],
        "contained": [{"resourceType": "Practitioner", "id": "c"}],
        "basedOn": [{"reference": "https://lab.internal/fhir2/ServiceRequest/1"}],
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"https://lab.internal/fhir/Patient/1\">x</a></div>"},
    }))
    .with_header("Location", "https://lab.internal/fhir/Observation/o1/_history/2")
    .with_header("Content-Location", "Observation/o1/_history/2")
    .with_header("ETag", "W/\"2\"");
    let r = lab().to_client(read);
    assert_eq!(r.header("Location"), Some("https://gw.example/lab/Observation/LAB-o1/_history/2"));
    assert_eq!(r.header("Content-Location"), Some("Observation/LAB-o1/_history/2"));
    assert_eq!(r.header("ETag"), Some("W/\"2\""));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(
        body,
        json!({
            "resourceType": "Observation", "id": "LAB-o1", "meta": {"versionId": "2"},
            "subject": {"reference": "Patient/LAB-1"},
            "performer": [{"reference": "https://gw.example/lab/Practitioner/LAB-p"}, {"reference": "#c"}],
            "contained": [{"resourceType": "Practitioner", "id": "c"}],
            "basedOn": [{"reference": "https://lab.internal/fhir2/ServiceRequest/1"}],
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"https://gw.example/lab/Patient/LAB-1\">x</a></div>"},
        })
    );
}

#[test]
fn searchsets_and_histories_gain_prefixes_in_entries_and_links() {
    let searchset = json!({
        "resourceType": "Bundle", "id": "b1", "type": "searchset", "total": 1,
        "link": [
            {"relation": "self", "url": "https://lab.internal/fhir/Observation?subject=Patient/1&_id=o1,o2"},
            {"relation": "next", "url": "https://lab.internal/fhir?_getpages=abc&_getpagesoffset=10"},
        ],
        "entry": [
            {"fullUrl": "https://lab.internal/fhir/Observation/o1", "resource": {"resourceType": "Observation", "id": "o1"}, "search": {"mode": "match"}},
            {"fullUrl": "https://lab.internal/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "OperationOutcome", "id": "oo", "issue": [{"severity": "warning", "code": "processing",
                "diagnostics": "ignored `foo` at https://lab.internal/fhir/Observation"}]}, "search": {"mode": "outcome"}},
        ],
    });
    let body = client_body(json_response(200, &searchset));
    assert_eq!(
        body,
        json!({
            "resourceType": "Bundle", "id": "b1", "type": "searchset", "total": 1,
            "link": [
                {"relation": "self", "url": "https://gw.example/lab/Observation?subject=Patient/LAB-1&_id=LAB-o1,LAB-o2"},
                {"relation": "next", "url": "https://gw.example/lab?_getpages=abc&_getpagesoffset=10"},
            ],
            "entry": [
                {"fullUrl": "https://gw.example/lab/Observation/LAB-o1", "resource": {"resourceType": "Observation", "id": "LAB-o1"}, "search": {"mode": "match"}},
                {"fullUrl": "https://gw.example/lab/Patient/LAB-1", "resource": {"resourceType": "Patient", "id": "LAB-1"}, "search": {"mode": "include"}},
                {"resource": {"resourceType": "OperationOutcome", "id": "oo", "issue": [{"severity": "warning", "code": "processing",
                    "diagnostics": "ignored `foo` at https://gw.example/lab/Observation"}]}, "search": {"mode": "outcome"}},
            ],
        })
    );

    let history = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created", "location": "Patient/7/_history/1",
                      "outcome": {"resourceType": "OperationOutcome", "issue": []}}},
        {"response": {"status": "200 OK", "location": "https://lab.internal/fhir/Patient/8/_history/3"}},
        {"request": {"method": "PUT", "url": "Patient/8"}},
    ]});
    let body = client_body(json_response(200, &history));
    assert_eq!(body["entry"][0]["response"]["location"], "Patient/LAB-7/_history/1");
    assert_eq!(body["entry"][1]["response"]["location"], "https://gw.example/lab/Patient/LAB-8/_history/3");
    assert_eq!(body["entry"][2]["request"]["url"], "Patient/LAB-8");
}

#[test]
fn an_empty_prefix_rewrites_urls_only() {
    let plain = Rewrite { id_prefix: String::new(), target_base: TARGET.into(), client_base: CLIENT.into() };
    let resource = json!({"resourceType": "Patient", "id": "1", "link": [{"other": {"reference": "Patient/2"}}],
                          "managingOrganization": {"reference": "https://lab.internal/fhir/Organization/3"}});
    let r =
        plain.to_client(json_response(200, &resource).with_header("Location", "https://lab.internal/fhir/Patient/1"));
    assert_eq!(r.header("Location"), Some("https://gw.example/lab/Patient/1"));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(
        body,
        json!({"resourceType": "Patient", "id": "1", "link": [{"other": {"reference": "Patient/2"}}],
                            "managingOrganization": {"reference": "https://gw.example/lab/Organization/3"}})
    );
    let back = plain.to_target(&get("Observation?subject=Patient/2&_id=9"));
    assert_eq!(back.ok().flatten().map(|r| r.query), Some(get("Observation?subject=Patient/2&_id=9").query));
}

#[test]
fn a_body_an_empty_prefix_leaves_alone_passes_as_written() {
    let plain = Rewrite { id_prefix: String::new(), target_base: TARGET.into(), client_base: CLIENT.into() };
    // Member order and spacing as the target wrote them: the text was not parsed and rendered.
    let written = br#"{"resourceType":"Patient",  "id":"1","gender":"female"}"#.to_vec();
    let r = plain.to_client(Response::rendered(200, "application/fhir+json", written.clone()));
    assert_eq!(r.body, written);
    // The target's base, even escaped, is still rewritten; broken JSON is still a 502.
    let escaped = br#"{"resourceType":"Patient","id":"1","managingOrganization":{"reference":"https:\/\/lab.internal\/fhir/Organization/3"}}"#;
    let r = plain.to_client(Response::rendered(200, "application/fhir+json", escaped.to_vec()));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(body["managingOrganization"]["reference"], "https://gw.example/lab/Organization/3");
    let broken = plain.to_client(Response::rendered(200, "application/fhir+json", b"{\"id\": 1".to_vec()));
    assert_eq!(broken.status, 502);
    // With a prefix, every id changes: always parsed.
    let r = lab().to_client(Response::rendered(200, "application/fhir+json", written));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(body["id"], "LAB-1");
}

#[test]
fn non_json_bodies_pass_unchanged_and_broken_json_is_a_bad_gateway() {
    let text = Response::rendered(200, "text/plain", b"https://lab.internal/fhir/Patient/1".to_vec());
    assert_eq!(lab().to_client(text.clone()), text);
    let broken = Response::rendered(200, "application/fhir+json", b"{\"id\": \"https://lab.internal/fhir".to_vec());
    let r = lab().to_client(broken);
    assert_eq!(r.status, 502);
    assert!(!String::from_utf8_lossy(&r.body).contains("lab.internal"), "no target URL in the error");
}

#[test]
fn pretty_bodies_stay_pretty_and_lengths_follow() {
    let body = serde_json::to_vec_pretty(&json!({"resourceType": "Patient", "id": "1"})).unwrap_or_default();
    let response = Response::rendered(200, "application/fhir+json", body).with_header("Content-Length", "999");
    let r = lab().to_client(response);
    assert!(r.body.contains(&b'\n'));
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
}

#[test]
fn bodies_nested_too_deep_are_refused_both_ways() {
    let mut deep = json!("https://lab.internal/fhir/Patient/1");
    for _ in 0..200 {
        deep = json!({ "extension": [deep] });
    }
    let mut resource = json!({"resourceType": "Patient", "id": "1", "extension": [deep]});
    for way in [Way::ToClient, Way::ToTarget] {
        let walk = Walk { ids: Ids { way, prefix: "LAB-", from_base: TARGET, to_base: CLIENT } };
        assert_eq!(walk.body(&mut resource, false), Err(Stop::TooDeep), "{way:?}");
    }
}

#[test]
fn a_resource_read_back_through_both_ways_is_what_the_target_stored() {
    let stored = json!({
        "resourceType": "Observation", "id": "o1",
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "https://lab.internal/fhir/Practitioner/p"}, {"reference": "http://x.org/Practitioner/1"}],
        "derivedFrom": [{"reference": "Observation/o0/_history/3"}],
        "note": [{"text": "https://lab.internal/fhir/Patient/1/$everything"}],
    });
    let client = client_body(json_response(200, &stored));
    assert_ne!(client, stored);
    let back = target(&with_body(Method::Put, "Observation/LAB-o1", client)).map(|r| body_of(&r));
    assert_eq!(back, Some(stored));
}

#[test]
fn prefixes_and_bases_are_checked() {
    assert!(lab().check().is_ok());
    for prefix in ["LAB/", "L B", &"x".repeat(33)] {
        let r = Rewrite { id_prefix: prefix.to_owned(), ..lab() };
        assert!(r.check().is_err(), "{prefix}");
    }
    assert!(Rewrite { target_base: "lab.internal".into(), ..lab() }.check().is_err());
}

/// A remote's answer rewritten while its body is still a value (parsed once, rendered once)
/// is what the rendered answer rewritten again would be; a value that cannot be rewritten is
/// the same 502; a rendered body is left to `to_client`.
#[test]
fn a_pending_body_is_rewritten_as_a_rendered_one_would_be() {
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset",
        "link": [{"relation": "next", "url": "https://lab.internal/fhir/Patient?_page=x&_id=1"}],
        "entry": [{"fullUrl": "https://lab.internal/fhir/Patient/1",
                   "resource": {"resourceType": "Patient", "id": "1", "link": [{"other": {"reference": "Patient/2"}}]}}],
    });
    let pending = || Response::json(200, bundle.clone()).with_header("Location", "https://lab.internal/fhir/Patient/1");
    let mut once = pending();
    assert!(lab().pending_to_client(&mut once));
    once.finish(crate::format::MediaType::FhirJson, false);
    let mut rendered = pending();
    rendered.finish(crate::format::MediaType::FhirJson, false);
    let twice = lab().to_client(rendered);
    assert_eq!((once.header("Location"), once.status), (twice.header("Location"), twice.status));
    let parsed = |r: &Response| serde_json::from_slice::<Value>(&r.body).unwrap_or(Value::Null);
    assert_eq!(parsed(&once), parsed(&twice));
    assert!(!String::from_utf8_lossy(&once.body).contains("lab.internal"), "no target URL left");

    let mut deep = json!("x");
    for _ in 0..200 {
        deep = json!({ "extension": [deep] });
    }
    let mut too_deep = Response::json(200, json!({"resourceType": "Patient", "id": "1", "extension": [deep]}));
    assert!(lab().pending_to_client(&mut too_deep));
    assert_eq!(too_deep.status, 502);

    let mut already = json_response(200, &bundle);
    assert!(!lab().pending_to_client(&mut already), "rendered: left to to_client");
}

//! Writes through the engine store the index entries the engine extracts, and deletions none.

#![expect(clippy::expect_used, reason = "tests: a failed expectation is a failed test")]

use std::sync::Arc;

use fhirgate_engine::access::Unrestricted;
use fhirgate_engine::interaction::{Method, Request};
use fhirgate_engine::storage::{IndexValue, Store};
use fhirgate_engine::{Engine, EngineConfig};

fn request(method: Method, path: &str, body: &str) -> Request {
    let mut request = Request::new(method, path, "http://localhost/fhir");
    request.headers.content_type = Some("application/fhir+json".into());
    request.body = body.as_bytes().to_vec();
    request
}

#[tokio::test]
async fn put_stores_extracted_entries_and_delete_none() {
    let store = Arc::new(fhirgate_sqlite::connect("sqlite::memory:").await.expect("open an in-memory store"));
    let engine = Engine::new(EngineConfig::default(), store.clone());
    let body = r#"{"resourceType": "Patient", "id": "p1", "name": [{"family": "Müller"}], "birthDate": "1974-12"}"#;
    let created = engine.handle(&request(Method::Put, "Patient/p1", body), &Unrestricted).await;
    assert_eq!(created.status, 201);

    let index = store.index("Patient", "p1", 1).await.expect("index").expect("version 1");
    let family: Vec<_> = index.iter().filter(|e| e.param == "family").map(|e| &e.value).collect();
    assert_eq!(family, [&IndexValue::String { value: "muller".into(), exact: "Müller".into() }]);
    let birthdate: Vec<_> = index.iter().filter(|e| e.param == "birthdate").map(|e| &e.value).collect();
    assert_eq!(
        birthdate,
        [&IndexValue::Date { start: "1974-12-01T00:00:00.000Z".into(), end: "1974-12-31T23:59:59.999Z".into() }]
    );
    // Extraction sees the stored resource, meta included.
    assert!(index.iter().any(|e| e.param == "_lastUpdated"), "{index:?}");

    let deleted = engine.handle(&request(Method::Delete, "Patient/p1", ""), &Unrestricted).await;
    assert!(deleted.status == 200 || deleted.status == 204, "delete: {}", deleted.status);
    assert_eq!(store.index("Patient", "p1", 2).await.expect("index"), Some(Vec::new()));
}

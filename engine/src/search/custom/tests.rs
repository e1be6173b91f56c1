//! Custom search parameters: what a SearchParameter must be to be taken, and how one in force
//! joins extraction and query parsing (pending, then ready). The definitions are process-wide:
//! each test uses codes and URLs of its own.
#![expect(clippy::panic, reason = "a test fails by panicking")]

use serde_json::{Value, json};

use super::definition;
use crate::definitions::Definitions;
use crate::search::index::extract;
use crate::search::query::parse;
use crate::storage::IndexValue;

fn sp(code: &str, base: &[&str], kind: &str, expression: &str) -> Value {
    json!({
        "resourceType": "SearchParameter",
        "url": format!("http://example.org/SearchParameter/{code}"),
        "name": code, "status": "active", "description": "test",
        "code": code, "base": base, "type": kind, "expression": expression,
    })
}

fn refused(resource: &Value) -> String {
    match definition(resource) {
        Ok(p) => panic!("taken: {p:?}"),
        Err(message) => message,
    }
}

#[test]
fn bad_definitions_are_refused_with_the_reason() {
    let expression = "Patient.extension.where(url='http://example.org/eye').value";
    assert!(refused(&sp("eye1", &["Patient"], "special", expression)).contains("special"));
    assert!(refused(&sp("eye1", &["Nonsense"], "token", expression)).contains("`Nonsense`"));
    assert!(refused(&sp("name", &["Patient"], "string", "Patient.name")).contains("already has"));
    assert!(refused(&sp("eye1", &["Patient"], "token", "Patient.name.where(")).contains("FHIRPath"));
    assert!(refused(&sp("eye1", &["Patient"], "token", "Patient.descendants()")).contains("costly"));
    assert!(refused(&sp("eye1", &["Patient"], "token", "Observation.code")).contains("no part"));
    assert!(refused(&sp("eye1", &["Patient"], "token", "Patient.name.nosuchfunction()")).contains("fails"));
    assert!(refused(&sp("_eye", &["Patient"], "token", expression)).contains("not a search parameter name"));
    assert!(refused(&sp("eye1", &["Patient"], "kind-of", expression)).contains("type"));
    let mut missing = sp("eye1", &["Patient"], "token", expression);
    missing.as_object_mut().map(|m| m.remove("expression"));
    assert!(refused(&missing).contains("`expression` is missing"));
    assert!(definition(&sp("eye1", &["Patient"], "token", expression)).is_ok());
}

#[test]
fn a_parameter_in_force_is_extracted_at_once_and_searchable_once_ready() {
    let defs = Definitions::r4();
    let resource = sp("eye2", &["Patient"], "token", "Patient.extension.where(url='http://example.org/eye').value");
    let param = definition(&resource).unwrap_or_else(|e| panic!("{e}"));
    let url = param.url.clone();
    defs.register_custom(param, false).unwrap_or_else(|e| panic!("{e}"));
    let patient = json!({
        "resourceType": "Patient", "id": "p",
        "extension": [{ "url": "http://example.org/eye", "valueCode": "blue" }]
    });
    let entries = extract(defs, &patient);
    let eye: Vec<_> = entries.iter().filter(|e| e.param == "eye2").collect();
    assert_eq!(eye.len(), 1, "{entries:?}");
    assert!(matches!(&eye[0].value, IndexValue::Token { code: Some(c), .. } if c == "blue"));

    // Pending: searches do not use it, and say why (a 400 when strict).
    let pairs = vec![("eye2".to_owned(), "blue".to_owned())];
    let lenient = parse(defs, Some("Patient"), &pairs, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(lenient.query.clauses.is_empty());
    assert!(lenient.ignored[0].2.contains("reindexed"), "{:?}", lenient.ignored);
    assert!(parse(defs, Some("Patient"), &pairs, true).is_err());

    let (param, ready) = defs.custom_by_url(&url).unwrap_or_else(|| panic!("not registered"));
    assert!(!ready);
    defs.mark_custom_ready(param);
    let strict = parse(defs, Some("Patient"), &pairs, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(strict.query.clauses[0].param, "eye2");

    // Another URL cannot take the same code; deleting it frees it.
    let mut other = sp("eye2", &["Patient"], "token", "Patient.gender");
    other["url"] = json!("http://example.org/SearchParameter/other");
    assert!(refused(&other).contains("already has the custom"));
    defs.unregister_custom(&url);
    assert!(defs.search_param("Patient", "eye2").is_none());
    assert!(extract(defs, &patient).iter().all(|e| e.param != "eye2"));
}

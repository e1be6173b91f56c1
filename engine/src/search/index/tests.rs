//! Extraction over whole resources: parameters resolved per type, specials skipped.

use serde_json::json;

use super::*;

#[test]
fn extracts_by_the_spec_expressions_only() {
    let patient = json!({"resourceType": "Patient", "id": "x", "active": true, "name": [{"family": "Müller"}]});
    let entries = extract(Definitions::r4(), &patient);
    let family: Vec<_> = entries.iter().filter(|e| e.param == "family").map(|e| &e.value).collect();
    assert_eq!(family, [&IndexValue::String { value: "muller".into(), exact: "Müller".into() }]);
    assert!(entries.contains(&IndexEntry {
        param: "_id".into(),
        value: IndexValue::Token { system: None, code: Some("x".into()), text: None }
    }));
    assert!(entries.iter().all(|e| e.param != "_text" && e.param != "_content"));
}

#[test]
fn no_resource_type_no_entries() {
    assert!(extract(Definitions::r4(), &json!({"name": "x"})).is_empty());
}

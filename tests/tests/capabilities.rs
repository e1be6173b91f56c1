//! End-to-end: the CapabilityStatement at `/metadata` describes what the server really does.

use fhirgate_e2e::{Server, TestResult};

#[test]
fn metadata_lists_every_resource_type_and_real_interactions() -> TestResult {
    let s = Server::start("metadata")?;
    let r = s.get("metadata")?;
    assert_eq!(r.status, 200);
    let c = r.json()?;
    assert_eq!(c["resourceType"], "CapabilityStatement");
    assert_eq!(c["fhirVersion"], "4.0.1");
    assert_eq!(c["kind"], "instance");
    let store = format!("({} store)", fhirgate_e2e::backend());
    assert!(c["implementation"]["description"].as_str().is_some_and(|d| d.contains(&store)), "runs on {store}");
    let resources = c["rest"][0]["resource"].as_array().ok_or("no resources")?;
    assert_eq!(resources.len(), 146, "every concrete R4 resource type");
    let patient = resources.iter().find(|r| r["type"] == "Patient").ok_or("no Patient")?;
    let codes: Vec<&str> =
        patient["interaction"].as_array().ok_or("no interactions")?.iter().filter_map(|i| i["code"].as_str()).collect();
    for expected in ["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"] {
        assert!(codes.contains(&expected), "{expected} missing from {codes:?}");
    }
    let system: Vec<&str> = c["rest"][0]["interaction"]
        .as_array()
        .ok_or("no system interactions")?
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert_eq!(system, ["transaction", "batch", "history-system", "search-system"]);
    assert_eq!(patient["conditionalCreate"], true);
    assert_eq!(patient["conditionalUpdate"], true);
    assert_eq!(patient["conditionalDelete"], "multiple");
    // The store says what it can do: Cosmos DB's transactional batch limit is stated, other
    // stores have none.
    let documentation = c["rest"][0]["documentation"].as_str().ok_or("no documentation")?;
    let cosmos = fhirgate_e2e::backend() == "cosmos";
    assert_eq!(documentation.contains("atomic batch of at most 49 resources"), cosmos, "{documentation}");
    // Each interaction the statement claims really answers.
    let created = s.post("Patient", &serde_json::json!({"resourceType": "Patient"}))?;
    assert_eq!(created.status, 201);
    assert_eq!(s.get("Patient/_history")?.status, 200);
    assert_eq!(s.get("_history")?.status, 200);
    assert_eq!(s.get("Patient?_count=1")?.status, 200);
    assert_eq!(s.get("?_type=Patient")?.status, 200);
    let batch = serde_json::json!({"resourceType": "Bundle", "type": "batch"});
    assert_eq!(s.post("", &batch)?.status, 200);
    Ok(())
}

//! Id prefixes (`L-` for the local store, `R-` for the remote fhirgate): ids, references,
//! `fullUrl`s, `Location`, `Content-Location` and links carry the prefix and the route's base,
//! never the remote's address; writes go to the one target the id (or `write_target`) names;
//! a transaction whose entries need both targets is refused and writes nothing.

use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::{expect, expect_outcome, expect_written, link, no_upstream_address, references, runs_here};

fn front(remote: &RemoteFhirgate) -> TestResult<Server> {
    let dir = temp_dir("gw-prefix")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("p", "", &["local", "remote"], "id_prefixes = { local = \"L-\", remote = \"R-\" }"),
    ]
    .concat();
    topology::start(&dir, &toml, &[])
}

/// Every string in the body that is an id or names one (`Type/id` in a reference or URL) of the
/// two seeded types, without its prefix: these must not be there.
fn unprefixed(body: &Value, found: &mut Vec<String>) {
    match body {
        Value::Object(map) => {
            if map.get("resourceType").and_then(Value::as_str).is_some_and(|t| t == "Patient" || t == "Observation") {
                if let Some(id) = map.get("id").and_then(Value::as_str) {
                    if !id.starts_with("L-") && !id.starts_with("R-") {
                        found.push(format!("id {id}"));
                    }
                }
            }
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("reference" | "fullUrl" | "location", Value::String(s)) => {
                        for t in ["Patient/", "Observation/"] {
                            if let Some(at) = s.find(t) {
                                let rest = &s[at + t.len()..];
                                if !rest.starts_with("L-") && !rest.starts_with("R-") && !rest.is_empty() {
                                    found.push(format!("{k} {s}"));
                                }
                            }
                        }
                    }
                    _ => unprefixed(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| unprefixed(i, found)),
        _ => {}
    }
}

fn all_prefixed(what: &str, r: &Reply, ports: &[u16]) -> TestResult {
    no_upstream_address(what, r, ports)?;
    let mut found = Vec::new();
    let body = match r.header("Content-Type") {
        Some(t) if t.contains("xml") => fhirgate_engine::xml_to_json(r.body.as_bytes()).map_err(|e| e.to_string())?,
        _ => r.json()?,
    };
    unprefixed(&body, &mut found);
    if !found.is_empty() {
        return Err(format!("{what}: ids without their target's prefix: {found:?} in {}", r.body).into());
    }
    Ok(())
}

#[test]
fn prefixed_ids_round_trip_everywhere_without_the_remote_address() -> TestResult {
    if !runs_here("id prefixes") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-prefix-remote")?;
    let s = front(&remote)?;
    let ports = [remote.server.port];

    // A create without an id goes to `write_target` (the first: local) and comes back prefixed.
    let r = s.post("Patient", &json!({"resourceType": "Patient", "name": [{"family": "Created"}]}))?;
    expect("POST /Patient", &r, 201)?;
    let id = r.json()?["id"].as_str().ok_or("an id")?.to_string();
    assert!(id.starts_with("L-"), "the local target's prefix: {id}");
    let location = r.header("Location").ok_or("a Location")?;
    assert!(location.starts_with(&s.url(&format!("Patient/{id}/_history/"))), "Location: {location}");
    all_prefixed("POST /Patient", &r, &ports)?;

    // A PUT to an `R-` id goes to the remote, without the prefix.
    let r =
        s.put("Patient/R-pat1", &json!({"resourceType": "Patient", "id": "R-pat1", "name": [{"family": "Remote"}]}))?;
    expect_written("PUT /Patient/R-pat1", &r)?;
    assert_eq!(r.json()?["id"], "R-pat1");
    if let Some(location) = r.header("Location") {
        assert!(location.starts_with(&s.url("Patient/R-pat1/_history/")), "Location: {location}");
    }
    all_prefixed("PUT /Patient/R-pat1", &r, &ports)?;
    let stored = remote.server.get("Patient/pat1")?;
    expect("the remote stores pat1 without the prefix", &stored, 200)?;
    expect("and nothing local has it", &s.get("Patient/L-pat1")?, 404)?;

    // References in bodies both ways.
    let observation = json!({"resourceType": "Observation", "id": "R-obs1", "status": "final", "code": {"text": "x"},
                             "subject": {"reference": "Patient/R-pat1"}});
    expect_written("PUT /Observation/R-obs1", &s.put("Observation/R-obs1", &observation)?)?;
    let on_remote = remote.server.get("Observation/obs1")?;
    expect("the remote's obs1", &on_remote, 200)?;
    assert_eq!(on_remote.json()?["subject"]["reference"], "Patient/pat1", "the prefix is removed on the way in");
    // An absolute reference to the remote's own base, written there directly.
    let absolute = json!({"resourceType": "Observation", "id": "obs2", "status": "final", "code": {"text": "y"},
                          "subject": {"reference": format!("{}/Patient/pat1", remote.base())}});
    expect_written("PUT obs2 on the remote", &remote.server.put("Observation/obs2", &absolute)?)?;

    let r = s.get("Observation/R-obs1")?;
    expect("GET /Observation/R-obs1", &r, 200)?;
    assert_eq!(r.json()?["subject"]["reference"], "Patient/R-pat1");
    all_prefixed("GET /Observation/R-obs1", &r, &ports)?;
    let r = s.get("Observation/R-obs2")?;
    expect("GET /Observation/R-obs2", &r, 200)?;
    let subject = r.json()?["subject"]["reference"].as_str().unwrap_or_default().to_string();
    assert!(
        subject == "Patient/R-pat1" || subject == s.url("Patient/R-pat1"),
        "an absolute reference to the remote's base is on the route's base: {subject}"
    );
    all_prefixed("GET /Observation/R-obs2", &r, &ports)?;

    // Searches: reference parameters, includes, fullUrls and links.
    let r = s.get("Observation?subject=Patient/R-pat1&_include=Observation:subject&_count=1")?;
    expect("search by a prefixed reference", &r, 200)?;
    all_prefixed("search with _include", &r, &ports)?;
    let bundle = r.json()?;
    let refs = references(&bundle);
    assert!(refs.contains(&"Patient/R-pat1".to_string()), "the included Patient: {refs:?}");
    for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
        if let Some(full) = entry["fullUrl"].as_str() {
            assert!(full.starts_with(&s.base()), "fullUrl on the front's base: {full}");
        }
    }
    for relation in ["self", "next"] {
        if let Some(url) = link(&bundle, relation) {
            assert!(url.starts_with(&s.base()), "{relation} link on the front's base: {url}");
        }
    }
    // The same in FHIR XML: converted at the front, after the ids and URLs are the route's.
    let xml = [("Accept", "application/fhir+xml")];
    let r = s.get_with("Observation/R-obs1", &xml)?;
    expect("GET /Observation/R-obs1 as XML", &r, 200)?;
    assert!(r.body.contains(r#"<reference value="Patient/R-pat1"/>"#), "{}", r.body);
    all_prefixed("GET /Observation/R-obs1 as XML", &r, &ports)?;
    let r = s.get_with("Observation?subject=Patient/R-pat1&_include=Observation:subject", &xml)?;
    expect("search with _include as XML", &r, 200)?;
    assert!(r.body.contains(r#"<id value="R-pat1"/>"#), "{}", r.body);
    all_prefixed("search with _include as XML", &r, &ports)?;
    let body = r#"<Observation xmlns="http://hl7.org/fhir"><id value="R-obs9"/><status value="final"/><code><text value="xml"/></code><subject><reference value="Patient/R-pat1"/></subject></Observation>"#;
    let r = s.send(
        "PUT",
        "Observation/R-obs9",
        Some(body.as_bytes()),
        &[("Content-Type", "application/fhir+xml"), xml[0]],
    )?;
    expect_written("PUT an XML Observation to the remote by its prefixed id", &r)?;
    assert!(r.body.contains(r#"<reference value="Patient/R-pat1"/>"#), "{}", r.body);
    all_prefixed("PUT as XML", &r, &ports)?;
    let stored = remote.server.get("Observation/obs9")?.json()?;
    assert_eq!(stored["subject"]["reference"], "Patient/pat1", "the remote got JSON in its own terms");

    let r = s.get("Observation?_id=R-obs1")?;
    expect("search by a prefixed _id", &r, 200)?;
    assert_eq!(references(&r.json()?), vec!["Observation/R-obs1".to_string()]);

    // History and vread: fullUrls, Content-Location.
    let r = s.get("Patient/R-pat1/_history")?;
    expect("instance history", &r, 200)?;
    all_prefixed("instance history", &r, &ports)?;
    let r = s.get("Patient/R-pat1/_history/1")?;
    expect("vread", &r, 200)?;
    all_prefixed("vread", &r, &ports)?;
    if let Some(cl) = r.header("Content-Location") {
        assert!(cl.starts_with(&s.url("Patient/R-pat1")), "Content-Location: {cl}");
    }

    // An id without a known prefix is no target's.
    expect_outcome("an id without prefix", &s.get("Patient/pat1")?, 404)?;
    expect_outcome("an unknown prefix", &s.get("Patient/X-pat1")?, 404)?;

    // Update and delete go to the prefixed id's target only.
    let r = s.put("Patient/R-pat1", &json!({"resourceType": "Patient", "id": "R-pat1", "active": true}))?;
    expect("update on the remote", &r, 200)?;
    assert_eq!(remote.server.get("Patient/pat1")?.json()?["active"], true);
    expect("delete on the local store", &s.delete(&format!("Patient/{id}"))?, 204)?;
    expect("the remote's pat1 is still there", &remote.server.get("Patient/pat1")?, 200)?;
    Ok(())
}

fn transaction(entries: &[(&str, &str)]) -> Value {
    let entry: Vec<Value> = entries
        .iter()
        .map(|(id, family)| {
            json!({"fullUrl": format!("urn:uuid:00000000-0000-0000-0000-00000000000{}", family.len()),
                   "resource": {"resourceType": "Patient", "id": id, "name": [{"family": family}]},
                   "request": {"method": "PUT", "url": format!("Patient/{id}")}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entry})
}

#[test]
fn a_transaction_needing_two_targets_is_refused_and_writes_nothing() -> TestResult {
    if !runs_here("two-target transaction") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-tx-remote")?;
    let s = front(&remote)?;
    let ports = [remote.server.port];

    let r = s.post("", &transaction(&[("L-t1", "A"), ("R-t2", "BB")]))?;
    expect_outcome("a transaction over both targets", &r, 400)?;
    no_upstream_address("the refusal", &r, &ports)?;
    expect("L-t1 not written", &s.get("Patient/L-t1")?, 404)?;
    expect("R-t2 not written", &s.get("Patient/R-t2")?, 404)?;
    expect("t2 not on the remote", &remote.server.get("Patient/t2")?, 404)?;

    let r = s.post("", &transaction(&[("R-t3", "C"), ("R-t4", "DD")]))?;
    expect("a transaction on the remote alone", &r, 200)?;
    all_prefixed("the transaction-response", &r, &ports)?;
    let bundle = r.json()?;
    for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
        let location = entry["response"]["location"].as_str().unwrap_or_default();
        assert!(location.contains("Patient/R-t"), "entry location prefixed: {location}");
    }
    expect("t3 on the remote", &remote.server.get("Patient/t3")?, 200)?;
    expect("t4 on the remote", &remote.server.get("Patient/t4")?, 200)?;
    expect("not in the local store", &s.get("Patient/L-t3")?, 404)?;
    Ok(())
}

//! End-to-end: create, read, vread, update, delete through the real binary (http.html).

use fhirgate_e2e::{Server, TestResult};
use serde_json::json;

fn patient(family: &str) -> serde_json::Value {
    json!({"resourceType": "Patient", "active": true, "name": [{"family": family, "given": ["Ann"]}]})
}

#[test]
fn create_assigns_id_version_and_headers() -> TestResult {
    let s = Server::start("create")?;
    let mut body = patient("Smith");
    body["id"] = json!("client-chosen");
    body["meta"] = json!({"versionId": "77", "lastUpdated": "2000-01-01T00:00:00Z", "tag": [{"code": "t"}]});
    let r = s.post("Patient", &body)?;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json()?;
    let id = created["id"].as_str().ok_or("no id")?.to_string();
    assert_ne!(id, "client-chosen", "the server assigns the id on create");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_ne!(created["meta"]["lastUpdated"], "2000-01-01T00:00:00Z");
    assert_eq!(created["meta"]["tag"][0]["code"], "t", "other meta is kept");
    assert_eq!(r.header("ETag"), Some("W/\"1\""));
    assert!(r.header("Last-Modified").is_some());
    assert_eq!(r.header("Location"), Some(s.url(&format!("Patient/{id}/_history/1")).as_str()));
    assert!(r.header("Content-Type").is_some_and(|c| c.starts_with("application/fhir+json")));

    let read = s.get(&format!("Patient/{id}"))?;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()?, created);
    assert_eq!(read.header("ETag"), Some("W/\"1\""));
    Ok(())
}

#[test]
fn read_unknown_is_404_and_unknown_type_is_404() -> TestResult {
    let s = Server::start("read404")?;
    let r = s.get("Patient/nope")?;
    assert_eq!(r.status, 404);
    assert_eq!(r.outcome_issues()?[0]["code"], "not-found");
    let r = s.get("Patient/bad$id")?;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = s.get("Pateint/1")?;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("Pateint"), "{}", r.body);
    Ok(())
}

#[test]
fn update_versions_if_match_and_update_as_create() -> TestResult {
    let s = Server::start("update")?;
    let mut body = patient("Jones");
    body["id"] = json!("p1");
    let r = s.put("Patient/p1", &body)?;
    assert_eq!(r.status, 201, "update-as-create: {}", r.body);
    assert_eq!(r.header("ETag"), Some("W/\"1\""));

    body["active"] = json!(false);
    let r = s.put("Patient/p1", &body)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?["meta"]["versionId"], "2");
    assert_eq!(r.header("Location"), Some(s.url("Patient/p1/_history/2").as_str()));

    // Unchanged content: no new version (the documented default).
    let r = s.put("Patient/p1", &body)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?["meta"]["versionId"], "2");

    // Stale If-Match: 412, nothing written.
    body["gender"] = json!("female");
    let body_text = body.to_string();
    let r = s.send("PUT", "Patient/p1", Some(body_text.as_bytes()), &[("If-Match", "W/\"1\"")])?;
    assert_eq!(r.status, 412, "{}", r.body);
    assert_eq!(r.outcome_issues()?.len(), 1);
    assert_eq!(s.get("Patient/p1")?.json()?["meta"]["versionId"], "2");
    let r = s.send("PUT", "Patient/p1", Some(body_text.as_bytes()), &[("If-Match", "W/\"2\"")])?;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?["meta"]["versionId"], "3");
    assert_eq!(r.json()?["gender"], "female");

    // vread of each version.
    let v1 = s.get("Patient/p1/_history/1")?;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.json()?["active"], true);
    assert_eq!(v1.header("ETag"), Some("W/\"1\""));
    assert_eq!(s.get("Patient/p1/_history/2")?.json()?["active"], false);
    assert_eq!(s.get("Patient/p1/_history/9")?.status, 404);
    assert_eq!(s.get("Patient/p1/_history/x")?.status, 404);
    Ok(())
}

#[test]
fn update_rejects_id_mismatch_and_missing_id() -> TestResult {
    let s = Server::start("update400")?;
    let mut body = patient("Lee");
    body["id"] = json!("other");
    let r = s.put("Patient/p2", &body)?;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("other"), "{}", r.body);
    let r = s.put("Patient/p2", &patient("Lee"))?;
    assert_eq!(r.status, 400);
    let r = s.put("Observation/p2", &json!({"resourceType": "Patient", "id": "p2"}))?;
    assert_eq!(r.status, 400);
    assert_eq!(s.get("Patient/p2")?.status, 404, "nothing was stored");
    Ok(())
}

#[test]
fn update_as_create_can_be_turned_off() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("nocreate")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_UPDATE_CREATE", "false")])?;
    let r = s.put("Patient/p3", &json!({"resourceType": "Patient", "id": "p3"}))?;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(s.get("Patient/p3")?.status, 404);
    let caps = s.get("metadata")?.json()?;
    assert_eq!(caps["rest"][0]["resource"][0]["updateCreate"], false);
    Ok(())
}

#[test]
fn delete_then_gone_and_history_keeps_it() -> TestResult {
    let s = Server::start("delete")?;
    let id = s.post("Patient", &patient("Gone"))?.json()?["id"].as_str().ok_or("id")?.to_string();
    let r = s.delete(&format!("Patient/{id}"))?;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("ETag"), Some("W/\"2\""));
    let r = s.get(&format!("Patient/{id}"))?;
    assert_eq!(r.status, 410);
    assert_eq!(r.outcome_issues()?[0]["code"], "deleted");
    // Deleting twice, or something that never existed, is not an error.
    assert_eq!(s.delete(&format!("Patient/{id}"))?.status, 204);
    assert_eq!(s.delete("Patient/never-there")?.status, 204);
    let h = s.get(&format!("Patient/{id}/_history"))?.json()?;
    assert_eq!(h["total"], 2, "a second delete adds no version: {h}");
    assert_eq!(h["entry"][0]["request"]["method"], "DELETE");
    assert!(h["entry"][0].get("resource").is_none());
    assert_eq!(h["entry"][1]["request"]["method"], "POST");
    // The old version stays readable; the deletion version is gone.
    assert_eq!(s.get(&format!("Patient/{id}/_history/1"))?.status, 200);
    assert_eq!(s.get(&format!("Patient/{id}/_history/2"))?.status, 410);
    // Update after delete brings it back as version 3.
    let mut body = patient("Back");
    body["id"] = json!(id);
    let r = s.put(&format!("Patient/{id}"), &body)?;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("ETag"), Some("W/\"3\""));
    Ok(())
}

#[test]
fn delete_with_if_match_deletes_only_that_version() -> TestResult {
    let s = Server::start("delete-if-match")?;
    let id = s.post("Patient", &patient("Guarded"))?.json()?["id"].as_str().ok_or("id")?.to_string();
    let path = format!("Patient/{id}");
    // A stale version: 412, nothing deleted.
    let r = s.send("DELETE", &path, None, &[("If-Match", "W/\"2\"")])?;
    assert_eq!(r.status, 412, "{}", r.body);
    assert_eq!(s.get(&path)?.status, 200);
    let r = s.send("DELETE", &path, None, &[("If-Match", "not-a-version")])?;
    assert_eq!(r.status, 400, "{}", r.body);
    // The current version: deleted.
    let r = s.send("DELETE", &path, None, &[("If-Match", "W/\"1\"")])?;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.get(&path)?.status, 410);
    // Nothing is at version 1 any more.
    assert_eq!(s.send("DELETE", &path, None, &[("If-Match", "W/\"1\"")])?.status, 412);
    Ok(())
}

#[test]
fn conditional_read() -> TestResult {
    let s = Server::start("condread")?;
    let r = s.post("Patient", &patient("Cache"))?;
    let id = r.json()?["id"].as_str().ok_or("id")?.to_string();
    let modified = r.header("Last-Modified").ok_or("no Last-Modified")?.to_string();
    let path = format!("Patient/{id}");
    let r = s.get_with(&path, &[("If-None-Match", "W/\"1\"")])?;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(s.get_with(&path, &[("If-None-Match", "W/\"0\"")])?.status, 200);
    assert_eq!(s.get_with(&path, &[("If-Modified-Since", &modified)])?.status, 304);
    assert_eq!(s.get_with(&path, &[("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")])?.status, 200);
    Ok(())
}

#[test]
fn prefer_return() -> TestResult {
    let s = Server::start("prefer")?;
    let body = patient("Pref").to_string();
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[("Prefer", "return=minimal")])?;
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty(), "{}", r.body);
    assert!(r.header("Location").is_some());
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[("Prefer", "return=OperationOutcome")])?;
    assert_eq!(r.status, 201);
    assert_eq!(r.outcome_issues()?[0]["severity"], "information");
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[("Prefer", "return=representation")])?;
    assert_eq!(r.json()?["resourceType"], "Patient");
    Ok(())
}

#[test]
fn summary_and_elements() -> TestResult {
    let s = Server::start("summary")?;
    let body = json!({"resourceType": "Patient", "id": "s1", "active": true, "gender": "male",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "photo": [{"contentType": "image/png"}], "name": [{"family": "Sum"}]});
    assert_eq!(s.put("Patient/s1", &body)?.status, 201);
    let r = s.get("Patient/s1?_elements=gender")?.json()?;
    assert_eq!(r["gender"], "male");
    assert!(r.get("active").is_none() && r.get("name").is_none(), "{r}");
    assert_eq!(r["meta"]["tag"][0]["code"], "SUBSETTED");
    let r = s.get("Patient/s1?_summary=true")?.json()?;
    assert_eq!(r["name"][0]["family"], "Sum", "name is a summary element: {r}");
    assert!(r.get("photo").is_none(), "photo is not a summary element: {r}");
    assert!(r.get("text").is_none());
    let r = s.get("Patient/s1?_summary=text")?.json()?;
    assert!(r.get("text").is_some() && r.get("gender").is_none(), "{r}");
    let r = s.get("Patient/s1?_summary=data")?.json()?;
    assert!(r.get("text").is_none() && r.get("photo").is_some(), "{r}");
    assert_eq!(s.get("Patient/s1?_summary=bogus")?.status, 400);
    Ok(())
}

#[test]
fn head_gives_headers_without_a_body() -> TestResult {
    let s = Server::start("head")?;
    let created = s.post("Patient", &patient("Head"))?;
    let id = created.json()?["id"].as_str().ok_or("id")?.to_string();
    for path in [format!("Patient/{id}"), format!("Patient/{id}/_history/1"), "metadata".to_string()] {
        let r = s.send("HEAD", &path, None, &[])?;
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path} has no body");
    }
    let r = s.send("HEAD", &format!("Patient/{id}"), None, &[])?;
    assert_eq!(r.header("ETag"), Some("W/\"1\""));
    assert_eq!(s.send("HEAD", "Patient/nobody", None, &[])?.status, 404);
    Ok(())
}

#[test]
fn concurrent_if_match_updates_lose_nothing() -> TestResult {
    let s = Server::start("race")?;
    assert_eq!(s.put("Patient/race", &json!({"resourceType": "Patient", "id": "race"}))?.status, 201);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let body = json!({"resourceType": "Patient", "id": "race", "gender": "other",
                        "name": [{"family": format!("writer{i}")}]})
                    .to_string();
                    s.send("PUT", "Patient/race", Some(body.as_bytes()), &[("If-Match", "W/\"1\"")])
                        .map(|r| r.status)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "thread panicked")?.map_err(|e| e.to_string()))
            .collect::<Result<_, String>>()
    })?;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "exactly one writer wins: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 7, "{statuses:?}");
    assert_eq!(s.get("Patient/race/_history")?.json()?["total"], 2);

    // Without If-Match every update lands, each as its own version.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let body =
                        json!({"resourceType": "Patient", "id": "race", "name": [{"family": format!("free{i}")}]});
                    s.put("Patient/race", &body).map(|r| r.status).unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(s.get("Patient/race/_history")?.json()?["total"], 10, "no lost updates");
    Ok(())
}

#[test]
fn unchanged_updates_can_be_versioned() -> TestResult {
    let dir = fhirgate_e2e::temp_dir("versionsame")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_VERSION_UNCHANGED_UPDATES", "true")])?;
    let body = json!({"resourceType": "Patient", "id": "same", "active": true});
    assert_eq!(s.put("Patient/same", &body)?.status, 201);
    let r = s.put("Patient/same", &body)?;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ETag"), Some("W/\"2\""), "configured: every update is a version");
    Ok(())
}

#[test]
fn cosmos_request_charges_are_in_the_access_log_and_metrics() -> TestResult {
    let s = Server::start("charge")?;
    let r = s.post("Patient", &patient("Charge"))?;
    assert_eq!(r.status, 201, "{}", r.body);
    let request_id = r.header("X-Request-Id").ok_or("no request id")?.to_owned();
    // The access log line is written after the response is sent: wait for it.
    let mut done = None;
    for _ in 0..100 {
        done = s.log_text().lines().find(|l| l.contains(&request_id) && l.contains("request done")).map(str::to_owned);
        if done.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let done = done.ok_or_else(|| format!("no access log line for {request_id}: {}", s.log_text()))?;
    // Cosmos DB charges request units for every call; the other stores have no such cost.
    let cosmos = fhirgate_e2e::backend() == "cosmos";
    assert_eq!(done.contains("request_charge="), cosmos, "{done}");
    // And the process total is a Prometheus counter (for the harness's globalAdmin).
    let metrics = s.get("metrics")?;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let total: f64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("fhirgate_cosmos_request_units_total "))
        .ok_or_else(|| format!("no counter: {}", metrics.body))?
        .trim()
        .parse()?;
    assert_eq!(total > 0.0, cosmos, "{}", metrics.body);
    Ok(())
}

//! End-to-end: conditional create, update and delete (http.html), including the race that
//! matters: many clients creating "the same" resource at once make exactly one.

use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

fn patient(mrn: &str, family: &str) -> Value {
    json!({ "resourceType": "Patient", "identifier": [{ "system": "urn:mrn", "value": mrn }], "name": [{ "family": family }] })
}

fn total(s: &Server, search: &str) -> TestResult<u64> {
    let bundle = s.get(&format!("{search}&_summary=count"))?.json()?;
    bundle["total"].as_u64().ok_or_else(|| format!("no total: {bundle}").into())
}

#[test]
fn conditional_create_makes_one_resource() -> TestResult {
    let s = Server::start("cond-create")?;
    let body = patient("1", "Once").to_string();
    let if_none_exist = [("If-None-Exist", "identifier=urn:mrn|1")];
    let first = s.send("POST", "Patient", Some(body.as_bytes()), &if_none_exist)?;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.json()?["id"].clone();
    let again = s.send("POST", "Patient", Some(body.as_bytes()), &if_none_exist)?;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()?["id"], id, "the existing resource comes back");
    assert_eq!(total(&s, "Patient?identifier=urn:mrn|1")?, 1);

    s.post("Patient", &patient("2", "Twin"))?;
    s.post("Patient", &patient("2", "Twin"))?;
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[("If-None-Exist", "identifier=urn:mrn|2")])?;
    assert_eq!(r.status, 412, "two matches: {}", r.body);
    let r = s.send("POST", "Patient", Some(body.as_bytes()), &[("If-None-Exist", "frobnicate=1")])?;
    assert_eq!(r.status, 400, "criteria the server does not understand never match everything: {}", r.body);
    Ok(())
}

#[test]
fn concurrent_conditional_creates_make_exactly_one() -> TestResult {
    let s = Server::start("cond-race")?;
    for round in 0..5 {
        let mrn = format!("race-{round}");
        let body = patient(&mrn, "Racer").to_string();
        let criteria = format!("identifier=urn:mrn|{mrn}");
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        s.send("POST", "Patient", Some(body.as_bytes()), &[("If-None-Exist", criteria.as_str())])
                            .map(|r| r.status)
                            .unwrap_or(0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 201), "round {round}: {statuses:?}");
        assert_eq!(total(&s, &format!("Patient?{criteria}"))?, 1, "round {round}");
    }
    Ok(())
}

#[test]
fn conditional_update_creates_updates_or_refuses() -> TestResult {
    let s = Server::start("cond-update")?;
    let created = s.put("Patient?identifier=urn:mrn|7", &patient("7", "First"))?;
    assert_eq!(created.status, 201, "no match creates: {}", created.body);
    let id = created.json()?["id"].as_str().ok_or("no id")?.to_owned();
    let updated = s.put("Patient?identifier=urn:mrn|7", &patient("7", "Second"))?;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()?["id"], id.as_str());
    assert_eq!(updated.json()?["meta"]["versionId"], "2");
    let mut wrong = patient("7", "Third");
    wrong["id"] = json!("someone-else");
    assert_eq!(s.put("Patient?identifier=urn:mrn|7", &wrong)?.status, 400, "body id must be the match's");
    s.post("Patient", &patient("7", "Clone"))?;
    let r = s.put("Patient?identifier=urn:mrn|7", &patient("7", "Fourth"))?;
    assert_eq!(r.status, 412, "{}", r.body);
    assert_eq!(s.get(&format!("Patient/{id}"))?.json()?["name"][0]["family"], "Second", "nothing changed");
    Ok(())
}

#[test]
fn conditional_delete_single_and_multiple() -> TestResult {
    let s = Server::start("cond-delete")?;
    for family in ["Del", "Del", "Del", "Keep"] {
        s.post("Patient", &patient(family, family))?;
    }
    assert_eq!(s.delete("Patient?identifier=urn:mrn|none")?.status, 204, "no match: nothing to do");
    let r = s.delete("Patient?identifier=urn:mrn|Del")?;
    assert_eq!(r.status, 412, "several matches without _count: {}", r.body);
    assert_eq!(total(&s, "Patient?identifier=urn:mrn|Del")?, 3, "nothing was deleted");
    let r = s.delete("Patient?identifier=urn:mrn|Del&_count=2")?;
    assert_eq!(r.status, 412, "more matches than _count allows: {}", r.body);
    assert_eq!(total(&s, "Patient?identifier=urn:mrn|Del")?, 3);
    assert_eq!(s.delete("Patient?identifier=urn:mrn|Del&_count=3")?.status, 204);
    assert_eq!(total(&s, "Patient?identifier=urn:mrn|Del")?, 0);
    assert_eq!(s.delete("Patient?identifier=urn:mrn|Keep")?.status, 204, "one match");
    assert_eq!(total(&s, "Patient?_id:missing=false")?, 0);
    assert_eq!(s.delete("Patient?identifier=urn:mrn|x&_count=100000")?.status, 400);
    Ok(())
}

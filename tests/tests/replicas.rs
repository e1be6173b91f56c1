//! Three gateway replicas on one PostgreSQL database, with a client that sends each request to
//! another replica: search and history paging with writes arriving meanwhile (nothing repeated,
//! skipped or lost), one replica killed mid-paging and its links followed on the others,
//! conditional creates racing across replicas (one resource), a token of one replica's issuer
//! accepted by all. Runs in the PostgreSQL pass of `scripts/test.sh`; skipped (saying so)
//! on other stores.

use std::collections::BTreeSet;

use fhirgate_e2e::replicas::{Replicas, skipped};
use fhirgate_e2e::{Reply, TestResult};
use serde_json::{Value, json};

fn ok(reply: Reply, what: &str) -> TestResult<Value> {
    if reply.status != 200 {
        return Err(format!("{what}: {} {}", reply.status, reply.body).into());
    }
    reply.json()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == relation)?["url"].as_str().map(Replicas::path_of)
}

fn ids(bundle: &Value) -> Vec<String> {
    fhirgate_e2e::entry_keys(bundle, "match")
}

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]})
}

#[test]
fn search_pages_move_between_replicas_and_survive_a_killed_one() -> TestResult {
    let Some(mut r) = Replicas::start("replicas-search", 3)? else {
        skipped("search_pages_move_between_replicas_and_survive_a_killed_one");
        return Ok(());
    };
    for n in 0..30 {
        r.nth(n)?.put_resource(&patient(&format!("r{n:02}"), "Replica"))?;
    }
    let all: BTreeSet<String> = (0..30).map(|n| format!("Patient/r{n:02}")).collect();
    let first = ok(r.nth(0)?.get("Patient?family=replica&_count=4")?, "first page")?;
    let mut pages = vec![first];
    let mut request = 1;
    // Between pages: delete one not yet seen, add one that sorts among those not yet seen,
    // rename one not yet seen (it matches no more), and change one already seen.
    let mut written = false;
    while let Some(next) = link(pages.last().ok_or("no page")?, "next") {
        if pages.len() == 2 && !written {
            let writer = r.nth(request)?;
            assert_eq!(writer.delete("Patient/r20")?.status, 204);
            writer.put_resource(&patient("r15a", "Replica"))?;
            writer.put_resource(&patient("r25", "Elsewhere"))?;
            writer.put_resource(&patient("r00", "Replica"))?;
            written = true;
        }
        if pages.len() == 4 {
            // The replica that served the last page dies; its links go on elsewhere.
            let served = (request - 1) % 3;
            let port = r.kill(served)?;
            println!("killed the replica on port {port} after it served page 4");
        }
        let page = ok(r.nth(request)?.get(&next)?, &format!("page {}", pages.len() + 1))?;
        request += 1;
        pages.push(page);
        assert!(pages.len() < 40, "paging ends");
    }
    let seen: Vec<String> = pages.iter().flat_map(ids).collect();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated: {seen:?}");
    let kept: BTreeSet<String> =
        all.iter().filter(|id| !["Patient/r20", "Patient/r25"].contains(&id.as_str())).cloned().collect();
    assert!(unique.is_superset(&kept), "nothing that matched all along skipped: {:?}", kept.difference(&unique));
    let may = ["Patient/r20", "Patient/r25", "Patient/r15a"];
    assert!(unique.iter().all(|id| all.contains(id) || may.contains(&id.as_str())), "nothing else: {unique:?}");
    let sorted: Vec<String> = {
        let mut s = seen.clone();
        s.sort();
        s
    };
    assert_eq!(seen, sorted, "the default order holds across replicas");

    // `previous` and `first` from the last page, each on another replica.
    let last = pages.last().ok_or("no page")?;
    let previous = link(last, "previous").ok_or("the last page has a previous link")?;
    let back = ok(r.nth(request)?.get(&previous)?, "previous")?;
    assert!(!ids(&back).is_empty() && ids(&back).iter().all(|id| id < &ids(last)[0]), "{:?}", ids(&back));
    let first = ok(r.nth(request + 1)?.get(&link(last, "first").ok_or("no first link")?)?, "first")?;
    assert_eq!(ids(&first)[0], "Patient/r00");
    Ok(())
}

#[test]
fn sorted_searches_and_everything_page_on_any_replica() -> TestResult {
    let Some(r) = Replicas::start("replicas-sorted", 3)? else {
        skipped("sorted_searches_and_everything_page_on_any_replica");
        return Ok(());
    };
    r.nth(0)?.put_resource(&patient("owner", "Owner"))?;
    for n in 0..9 {
        r.nth(n)?.put_resource(&patient(&format!("s{n}"), &format!("Sorted{}", 9 - n)))?;
        let obs = json!({"resourceType": "Observation", "id": format!("o{n}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/owner"}});
        r.nth(n)?.put_resource(&obs)?;
    }
    let mut page = ok(r.nth(0)?.get("Patient?family:contains=sorted&_sort=family&_count=2")?, "sorted")?;
    let mut seen = ids(&page);
    // Between the pages: one that sorts ahead of the first page, one after every other, and a
    // change to one already seen that keeps its family. Paged by offset, the other replicas
    // would show the first page's last match again; by key, nothing is repeated or skipped.
    let writer = r.nth(1)?;
    writer.put_resource(&patient("s9", "Sorted0"))?;
    writer.put_resource(&patient("s10", "Sorted99"))?;
    writer.put_resource(
        &json!({"resourceType": "Patient", "id": "s8", "name": [{"family": "Sorted1", "given": ["Seen"]}]}),
    )?;
    let mut n = 1;
    while let Some(next) = link(&page, "next") {
        page = ok(r.nth(n)?.get(&next)?, "sorted page")?;
        seen.extend(ids(&page));
        n += 1;
    }
    assert!(n >= 5, "pages served by every replica: {n}");
    let expected: Vec<String> = (0..9).rev().map(|n| format!("Patient/s{n}")).collect();
    let old: Vec<String> = seen.iter().filter(|id| *id != "Patient/s10").cloned().collect();
    assert_eq!(old, expected, "by family, each once, the one written ahead of the page not shown: {seen:?}");
    assert!(seen.iter().filter(|id| *id == "Patient/s10").count() <= 1, "{seen:?}");

    let mut page = ok(r.nth(1)?.get("Patient/owner/$everything?_count=3")?, "everything")?;
    let mut seen = ids(&page);
    let mut n = 2;
    while let Some(next) = link(&page, "next") {
        page = ok(r.nth(n)?.get(&next)?, "everything page")?;
        seen.extend(ids(&page));
        n += 1;
    }
    assert_eq!(seen.len(), 10, "the owner and its 9 observations: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 10, "each once: {seen:?}");
    Ok(())
}

#[test]
fn history_pages_move_between_replicas_while_writes_arrive() -> TestResult {
    let Some(r) = Replicas::start("replicas-history", 3)? else {
        skipped("history_pages_move_between_replicas_while_writes_arrive");
        return Ok(());
    };
    for n in 0..12 {
        r.nth(n)?.put_resource(&patient(&format!("h{n:02}"), "History"))?;
    }
    let key = |e: &Value| format!("{}@{}", e["resource"]["id"].as_str().unwrap_or(""), e["response"]["etag"]);
    let first = ok(r.nth(0)?.get("Patient/_history?_count=5")?, "history")?;
    assert_eq!(first["total"], 12);
    let mut seen: Vec<String> = first["entry"].as_array().into_iter().flatten().map(key).collect();
    let mut page = first;
    let mut n = 1;
    while let Some(next) = link(&page, "next") {
        // Writes from every replica between pages.
        r.nth(n + 1)?.put_resource(&patient(&format!("late{n}"), "History"))?;
        r.nth(n + 2)?.put_resource(&patient("h00", &format!("Changed{n}")))?;
        page = ok(r.nth(n)?.get(&next)?, "history page")?;
        assert_eq!(page["total"], 12, "the total of the snapshot");
        seen.extend(page["entry"].as_array().into_iter().flatten().map(key));
        n += 1;
    }
    assert_eq!(seen.len(), 12, "every version of the snapshot: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 12, "none twice: {seen:?}");
    assert!(seen.iter().all(|k| k.starts_with('h') && k.ends_with("@\"W/\\\"1\\\"\"")), "none written later: {seen:?}");
    Ok(())
}

#[test]
fn conditional_creates_racing_across_replicas_make_one_resource() -> TestResult {
    let Some(r) = Replicas::start("replicas-race", 3)? else {
        skipped("conditional_creates_racing_across_replicas_make_one_resource");
        return Ok(());
    };
    for round in 0..3 {
        let criteria = format!("identifier=urn:race|{round}");
        let body =
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": round.to_string()}]})
                .to_string();
        let servers = (0..6).map(|i| r.nth(i)).collect::<TestResult<Vec<_>>>()?;
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = servers
                .iter()
                .map(|server| {
                    let (criteria, body) = (criteria.as_str(), body.as_str());
                    scope.spawn(move || {
                        let reply =
                            server.send("POST", "Patient", Some(body.as_bytes()), &[("If-None-Exist", criteria)]);
                        reply.map(|r| r.status).map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| "a client thread panicked".to_owned())?)
                .collect::<Result<Vec<u16>, String>>()
        })?;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "one create: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 200), "{statuses:?}");
        for i in 0..3 {
            let found = ok(r.nth(i)?.get(&format!("Patient?{criteria}&_total=accurate"))?, "search")?;
            assert_eq!(found["total"], 1, "replica {i} finds one");
        }
    }
    Ok(())
}

#[test]
fn a_token_of_one_replica_is_accepted_by_every_replica() -> TestResult {
    let Some(r) = Replicas::start("replicas-token", 3)? else {
        skipped("a_token_of_one_replica_is_accepted_by_every_replica");
        return Ok(());
    };
    for minter in 0..3 {
        let token = r.nth(minter)?.mint(&["--role", "globalReader", "--sub", &format!("reader-{minter}")])?;
        for i in 0..3 {
            let reply = r.nth(i)?.send_as(Some(&token), "GET", "Patient", None, &[])?;
            assert_eq!(reply.status, 200, "a token of replica {minter} on replica {i}: {}", reply.body);
        }
    }
    // The issuer's discovery is the same everywhere: one issuer, one key.
    let jwks: Vec<String> = (0..3)
        .map(|i| Ok(ok(r.nth(i)?.get(".well-known/jwks.json")?, "jwks")?.to_string()))
        .collect::<TestResult<_>>()?;
    assert!(jwks.iter().all(|j| j == &jwks[0]), "{jwks:?}");
    Ok(())
}

//! Attacks on page links that any replica serves: another caller's link replayed on another
//! replica, a link altered or forged, a link moved to another search path, and a restricted
//! caller's own links followed on replicas that did not run its search (they decide every
//! match again). Each is a 410 OperationOutcome that shows nothing, never a page. Three
//! replicas on one PostgreSQL database; skipped (saying so) on other stores.

use fhirgate_e2e::replicas::{Replicas, skipped};
use fhirgate_e2e::{Reply, TestResult};
use serde_json::{Value, json};

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == relation)?["url"].as_str().map(Replicas::path_of)
}

fn gone(reply: &Reply, what: &str) -> TestResult {
    assert_eq!(reply.status, 410, "{what}: {}", reply.body);
    let issues = reply.outcome_issues()?;
    assert_eq!(issues[0]["severity"], "error", "{what}");
    assert!(!reply.body.contains("Secret"), "{what} shows nothing: {}", reply.body);
    Ok(())
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"text": "Secret"}, "subject": {"reference": format!("Patient/{patient}")}})
}

#[test]
fn page_links_open_only_for_their_caller_on_their_path_unaltered() -> TestResult {
    let Some(r) = Replicas::start("attack-replicas", 3)? else {
        skipped("page_links_open_only_for_their_caller_on_their_path_unaltered");
        return Ok(());
    };
    for n in 0..6 {
        r.nth(n)?.put_resource(&json!({"resourceType": "Patient", "id": format!("a{n}"),
                                       "name": [{"family": "Secret"}]}))?;
    }
    let admin = r.nth(0)?;
    let first = admin.get("Patient?family=secret&_count=2")?.json()?;
    let next = link(&first, "next").ok_or("no next link")?;
    let page2 = r.nth(1)?.get(&next)?.json()?;
    let previous = link(&page2, "previous").ok_or("no previous link")?;

    // Another caller (a reader of everything, even) replays them on the other replicas.
    let other = r.nth(2)?.mint(&["--role", "globalAdmin", "--sub", "someone-else"])?;
    for (i, path) in [&next, &previous].into_iter().enumerate() {
        for replica in 0..3 {
            let reply = r.nth(replica)?.send_as(Some(&other), "GET", path, None, &[])?;
            gone(&reply, &format!("link {i} replayed by another caller on replica {replica}"))?;
        }
    }

    // Altered anywhere, truncated, or forged: gone on every replica.
    let (head, value) = next.split_once("_page=").ok_or("not a page link")?;
    let mut altered = Vec::new();
    for at in [0, value.len() / 2, value.len() - 1] {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        altered.push(format!("{head}_page={}", String::from_utf8(bytes)?));
    }
    altered.push(format!("{head}_page={}", &value[..value.len() - 4]));
    altered.push(format!("{head}_page=AQ{}", "A".repeat(80)));
    altered.push(format!("{head}_page=%00%ff"));
    for (i, path) in altered.iter().enumerate() {
        gone(&r.nth(i)?.get(path)?, &format!("altered link {i}"))?;
    }
    // The caller's own link, moved to another search path.
    let moved = next.replacen("Patient?", "Observation?", 1);
    gone(&r.nth(2)?.get(&moved)?, "a Patient link on Observation")?;
    // The real link still works everywhere.
    for replica in 0..3 {
        assert_eq!(r.nth(replica)?.get(&next)?.status, 200);
    }
    Ok(())
}

#[test]
fn a_restricted_callers_pages_are_decided_again_on_every_replica() -> TestResult {
    let Some(r) = Replicas::start("attack-replicas-rerun", 3)? else {
        skipped("a_restricted_callers_pages_are_decided_again_on_every_replica");
        return Ok(());
    };
    for (n, owner) in ["p1", "p2", "p1", "p2", "p1", "p2", "p1"].into_iter().enumerate() {
        r.nth(n)?.put_resource(&json!({"resourceType": "Patient", "id": owner}))?;
        r.nth(n)?.put_resource(&observation(&format!("o{n}"), owner))?;
    }
    let patient = r.nth(0)?.mint(&["--scope", "patient/Observation.rs", "--patient", "p1", "--sub", "p1-app"])?;
    let reply = r.nth(0)?.send_as(Some(&patient), "GET", "Observation?_count=1", None, &[])?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut page = reply.json()?;
    let mut seen = fhirgate_e2e::entry_keys(&page, "match");
    let mut n = 1;
    while let Some(next) = link(&page, "next") {
        let reply = r.nth(n)?.send_as(Some(&patient), "GET", &next, None, &[])?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        page = reply.json()?;
        seen.extend(fhirgate_e2e::entry_keys(&page, "match"));
        n += 1;
        assert!(n < 20, "paging ends");
    }
    assert_eq!(seen, ["Observation/o0", "Observation/o2", "Observation/o4", "Observation/o6"], "only p1's");
    Ok(())
}

/// A history page link carries the store's write positions sealed (`_snapshot`): altered,
/// truncated, forged, or written as a plain position, it is a 410 on every replica, never a
/// page at some other point of the store's history; the real link pages on any replica.
#[test]
fn history_snapshots_open_only_unaltered() -> TestResult {
    let Some(r) = Replicas::start("attack-replicas-history", 3)? else {
        skipped("history_snapshots_open_only_unaltered");
        return Ok(());
    };
    for n in 0..4 {
        r.nth(n)?.put_resource(&json!({"resourceType": "Patient", "id": format!("h{n}"),
                                       "name": [{"family": "Secret"}]}))?;
    }
    let first = r.nth(0)?.get("Patient/_history?_count=2")?.json()?;
    let next = link(&first, "next").ok_or("no next link")?;
    let (head, rest) = next.split_once("_snapshot=").ok_or("no snapshot in the link")?;
    let (value, tail) = rest.split_once('&').unwrap_or((rest, ""));
    let with = |v: &str| format!("{head}_snapshot={v}&{tail}");
    let mut altered = Vec::new();
    for at in [0, value.len() / 2, value.len() - 1] {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        altered.push(with(&String::from_utf8(bytes)?));
    }
    altered.push(with(&value[..value.len() - 4]));
    altered.push(with(&format!("AQ{}", "A".repeat(60))));
    altered.push(with("99999999"));
    altered.push(with("%00%ff"));
    for (i, path) in altered.iter().enumerate() {
        let reply = r.nth(i)?.get(path)?;
        assert_eq!(reply.status, 410, "altered history link {i}: {}", reply.body);
        assert!(!reply.body.contains("Secret"), "altered history link {i} shows nothing: {}", reply.body);
    }
    for replica in 0..3 {
        let page = r.nth(replica)?.get(&next)?;
        assert_eq!(page.status, 200, "replica {replica}: {}", page.body);
        assert_eq!(page.json()?["entry"].as_array().map(Vec::len), Some(2), "replica {replica}");
    }
    Ok(())
}

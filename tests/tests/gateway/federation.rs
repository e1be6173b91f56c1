//! A route over a local store and a remote fhirgate, without id prefixes: a read fans out and the
//! target that has the resource answers; a search merges both targets' matches — `_sort` across
//! targets, `_count` per page, `total` summed — and pages through fhirgate's own sealed
//! `_getpages` links, which another caller or a changed link cannot use.

use fhirgate_e2e::topology::{self, RemoteFhirgate, local_target, remote_target, route};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::{expect, expect_outcome, expect_written, link, no_upstream_address, path_on, resources, runs_here};

/// Patients `Fam01`..`Fam07`: odd ones in the local store, even ones on the remote.
pub(super) fn seeded() -> TestResult<(RemoteFhirgate, Server)> {
    let remote = RemoteFhirgate::start("gw-fed-remote")?;
    let dir = temp_dir("gw-fed")?;
    let toml = [
        local_target("local", &dir),
        remote_target("remote", &remote.base(), &remote.credentials(), ""),
        route("both", "", &["local", "remote"], ""),
    ]
    .concat();
    let s = topology::start(&dir, &toml, &[])?;
    for n in 1..=7 {
        let id = format!("fed{n}");
        let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": format!("Fam{n:02}")}]});
        let r = if n % 2 == 1 {
            s.put(&format!("Patient/{id}"), &body)?
        } else {
            remote.server.put(&format!("Patient/{id}"), &body)?
        };
        expect_written(&format!("seeding Patient/{id}"), &r)?;
        // `meta.lastUpdated` has millisecond precision: two writes to the two processes in one
        // millisecond would tie, and a tie has no newest (it failed a run so).
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    Ok((remote, s))
}

pub(super) fn families(bundle: &Value) -> Vec<String> {
    resources(bundle).iter().filter_map(|r| r["name"][0]["family"].as_str().map(str::to_string)).collect()
}

/// Follows `next` links from `first` (a path on the front), with `token`; returns every page.
fn pages(s: &Server, first: &str, ports: &[u16]) -> TestResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut path = first.to_string();
    for _ in 0..20 {
        let r = s.get(&path)?;
        expect(&format!("GET {path}"), &r, 200)?;
        no_upstream_address(&format!("GET {path}"), &r, ports)?;
        let bundle = r.json()?;
        let next = link(&bundle, "next");
        out.push(bundle);
        match next {
            Some(url) => {
                assert!(url.contains("_getpages="), "the next link is fhirgate's own: {url}");
                path = path_on(s, &url)?;
            }
            None => return Ok(out),
        }
    }
    Err("more than 20 pages".into())
}

#[test]
fn a_read_fans_out_and_the_target_that_has_it_answers() -> TestResult {
    if !runs_here("fan-out read") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    for (id, family) in [("fed1", "Fam01"), ("fed2", "Fam02")] {
        let r = s.get(&format!("Patient/{id}"))?;
        expect(&format!("GET Patient/{id}"), &r, 200)?;
        assert_eq!(r.json()?["name"][0]["family"], family);
        no_upstream_address(&format!("GET Patient/{id}"), &r, &[remote.server.port])?;
        let r = s.get(&format!("Patient/{id}/_history/1"))?;
        expect(&format!("vread Patient/{id}"), &r, 200)?;
        no_upstream_address(&format!("vread Patient/{id}"), &r, &[remote.server.port])?;
    }
    expect_outcome("a Patient neither target has", &s.get("Patient/none")?, 404)?;
    Ok(())
}

#[test]
fn a_search_merges_both_targets_sorted_counted_and_paged() -> TestResult {
    if !runs_here("merged search") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    let ports = [remote.server.port];
    let all: Vec<String> = (1..=7).map(|n| format!("Fam{n:02}")).collect();

    let sorted = pages(&s, "Patient?_sort=family&_count=2&_total=accurate", &ports)?;
    assert_eq!(sorted[0]["total"], 7, "total summed over the targets: {}", sorted[0]);
    for page in &sorted {
        assert!(families(page).len() <= 2, "_count respected: {page}");
        assert_eq!(page["total"], 7, "every page's total is the search's, also once a target is done: {page}");
    }
    let got: Vec<String> = sorted.iter().flat_map(families).collect();
    assert_eq!(got, all, "every match once, in `_sort` order across targets");

    let descending = pages(&s, "Patient?_sort=-family&_count=3", &ports)?;
    let got: Vec<String> = descending.iter().flat_map(families).collect();
    let mut expected = all.clone();
    expected.reverse();
    assert_eq!(got, expected, "descending across targets");

    // Without `_sort`: the targets one after the other, each match once.
    let plain = pages(&s, "Patient?_count=3", &ports)?;
    let mut got: Vec<String> = plain.iter().flat_map(families).collect();
    got.sort();
    assert_eq!(got, all, "every match once without _sort");
    Ok(())
}

#[test]
fn page_links_are_sealed_and_bound_to_their_caller() -> TestResult {
    if !runs_here("sealed page links") {
        return Ok(());
    }
    let (_remote, s) = seeded()?;
    let r = s.get("Patient?_sort=family&_count=2")?;
    expect("first page", &r, 200)?;
    let next = link(&r.json()?, "next").ok_or("a next link")?;
    let path = path_on(&s, &next)?;
    expect("the link works for its caller", &s.get(&path)?, 200)?;

    let other = s.mint(&["--role", "globalAdmin", "--sub", "someone-else"])?;
    let r = s.send_as(Some(&other), "GET", &path, None, &[])?;
    expect_outcome("another caller's page link", &r, 410)?;

    let (head, sealed) = path.split_once("_getpages=").ok_or("a _getpages link")?;
    let sealed = sealed.split('&').next().unwrap_or_default();
    let mut bytes = sealed.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}_getpages={}", String::from_utf8(bytes)?);
    expect_outcome("a changed page link", &s.get(&forged)?, 410)?;
    expect_outcome("a made-up page link", &s.get(&format!("{head}_getpages=bm90LWEtcGFnZQ"))?, 410)?;
    Ok(())
}

/// A request (path, headers) and the status every target refuses it with.
type Refused<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

/// A request every target refuses as the client's error is refused as such (its status and
/// OperationOutcome), not turned into a 200 searchset of OperationOutcome entries: that form is
/// for targets that failed or timed out.
#[test]
fn a_request_every_target_refuses_is_refused() -> TestResult {
    if !runs_here("refused by every target") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    let strict = [("Prefer", "handling=strict")];
    let cases: [Refused; 4] = [
        ("Patient?frobnicate=1", &strict, 400),
        ("Patient?_count=abc", &[], 400),
        ("Observation/_history?_count=abc", &[], 400),
        ("Patient?_page=not-a-page-this-server-issued", &[], 410),
    ];
    let mut failures = Vec::new();
    for (path, headers, status) in cases {
        let r = s.get_with(path, headers)?;
        if r.status != status || r.outcome_issues().is_err() {
            failures.push(format!("GET /{path}: expected {status} OperationOutcome, got {} {}", r.status, r.body));
        }
        no_upstream_address(path, &r, &[remote.server.port])?;
    }
    assert!(failures.is_empty(), "refusals of every target not passed on:\n{}", failures.join("\n"));
    Ok(())
}

/// Type history over a local store and a remote is one history, newest first across both
/// targets (not one target's versions after the other's), paged with `_count`, every version once.
#[test]
fn history_over_two_targets_is_newest_first_across_them() -> TestResult {
    if !runs_here("federated history") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    let ports = [remote.server.port];
    let all = pages(&s, "Patient/_history?_count=3", &ports)?;
    for page in &all {
        assert_eq!(page["type"], "history", "{page}");
    }
    let every: Vec<String> = all.iter().flat_map(families).collect();
    let expected: Vec<String> = (1..=7).rev().map(|n| format!("Fam{n:02}")).collect();
    assert_eq!(every, expected, "written alternately to the two targets, read back newest first");
    Ok(())
}

/// `_since` narrows a history over two targets on both of them: the versions written at or after
/// the instant, still newest first across the targets, `_count` per page; `previous` on a later
/// page leads back to exactly the page before it (the sealed cursors of both targets).
#[test]
fn history_since_an_instant_over_two_targets_pages_both_ways() -> TestResult {
    if !runs_here("federated history _since") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    let ports = [remote.server.port];
    let time = |entry: &Value| entry["resource"]["meta"]["lastUpdated"].as_str().map(str::to_owned);
    let everything: Vec<Value> = pages(&s, "Patient/_history?_count=10", &ports)?
        .iter()
        .flat_map(|page| page["entry"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(everything.len(), 7, "seven versions in all");
    // The instant of the fourth newest version (written to either target); each version written
    // at or after it is expected, in the order of the whole history.
    let since = time(&everything[3]).ok_or("a history entry without meta.lastUpdated")?;
    let expected: Vec<String> = everything
        .iter()
        // Both targets are fhirgate: instants in UTC with milliseconds, compared as text.
        .filter(|e| time(e).is_some_and(|t| t >= since))
        .filter_map(|e| e["resource"]["name"][0]["family"].as_str().map(str::to_owned))
        .collect();
    assert!(expected.len() >= 4, "at least the four newest versions: {expected:?}");

    let first = format!("Patient/_history?_since={since}&_count=2");
    let all = pages(&s, &first, &ports)?;
    assert!(all.iter().all(|page| families(page).len() <= 2), "`_count=2` on every page");
    let every: Vec<String> = all.iter().flat_map(families).collect();
    assert_eq!(every, expected, "only versions since {since}, newest first across both targets");

    // The second page's `previous` is the first page again; the first has none.
    assert_eq!(link(&all[0], "previous"), None, "the first page has no previous page");
    let previous = link(&all[1], "previous").ok_or("the second page has no previous link")?;
    let r = s.get(&path_on(&s, &previous)?)?;
    expect("GET the previous page", &r, 200)?;
    assert_eq!(families(&r.json()?), families(&all[0]), "previous leads back to the first page");
    Ok(())
}

/// History through a route whose only target is remote pages like the remote's own: newest
/// first, `_count` per page, a next link of fhirgate's, every version once.
#[test]
fn history_through_a_remote_pages_newest_first() -> TestResult {
    if !runs_here("remote history") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-history-remote")?;
    let dir = temp_dir("gw-history")?;
    let toml = [remote_target("remote", &remote.base(), &remote.credentials(), ""), route("all", "", &["remote"], "")]
        .concat();
    let s = topology::start(&dir, &toml, &[])?;
    for i in 0..7 {
        let body =
            json!({"resourceType": "Observation", "id": format!("h{i}"), "status": "final", "code": {"text": "x"}});
        expect_written("seeding", &s.put(&format!("Observation/h{i}"), &body)?)?;
    }
    let ports = [remote.server.port];
    let ids = |bundle: &Value| -> Vec<String> {
        resources(bundle).iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
    };
    for base in ["Observation/_history", "_history"] {
        let all = pages(&s, &format!("{base}?_count=3"), &ports)?;
        assert_eq!(ids(&all[0]), ["h6", "h5", "h4"], "{base}: the first page is the newest three: {}", all[0]);
        let every: Vec<String> = all.iter().flat_map(ids).collect();
        let expected: Vec<String> = (0..7).rev().map(|i| format!("h{i}")).collect();
        assert_eq!(every, expected, "{base}: every version once, newest first");
    }
    Ok(())
}

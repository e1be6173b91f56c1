//! Paging both ways through a gateway (search.html "Paging"): a merged search over a local store
//! and a remote fhirgate, and a search on a route whose only target is remote, page forwards with
//! `next` and back with `previous` to the same pages; `first` is the search's own URL; page 2's
//! `previous` is that URL too, later ones are sealed `_getpages` states bound to their caller and
//! route like `next`.

use fhirgate_e2e::topology::{self, RemoteFhirgate, remote_target, route};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::federation::{families, seeded};
use super::{expect, expect_outcome, expect_written, link, no_upstream_address, path_on, runs_here};

/// Follows `relation` links from `start` (a path on the front); returns every page.
fn follow(s: &Server, start: &str, relation: &str, ports: &[u16]) -> TestResult<Vec<Value>> {
    let mut out = Vec::new();
    let mut path = start.to_string();
    for _ in 0..20 {
        let r = s.get(&path)?;
        expect(&format!("GET {path}"), &r, 200)?;
        no_upstream_address(&format!("GET {path}"), &r, ports)?;
        let bundle = r.json()?;
        let following = link(&bundle, relation);
        out.push(bundle);
        match following {
            Some(url) => path = path_on(s, &url)?,
            None => return Ok(out),
        }
    }
    Err(format!("more than 20 pages following `{relation}`").into())
}

/// Pages `search` forwards, then back from the last page: the same pages in reverse, `first` on
/// each page the search itself, page 2's `previous` the search itself, later ones sealed.
fn both_ways(s: &Server, search: &str, ports: &[u16], expected: &[&str]) -> TestResult {
    let forward = follow(s, search, "next", ports)?;
    let got: Vec<String> = forward.iter().flat_map(families).collect();
    assert_eq!(got, expected, "{search}: every match once, forwards");
    assert!(forward.len() >= 3, "{search}: at least three pages");
    assert_eq!(link(&forward[0], "previous"), None, "{search}: the first page has no previous");
    let own = s.url(search);
    for (n, page) in forward.iter().enumerate() {
        assert_eq!(link(page, "first").as_deref(), Some(own.as_str()), "{search}: page {}'s first", n + 1);
    }
    assert_eq!(link(&forward[1], "previous").as_deref(), Some(own.as_str()), "{search}: page 2's previous");
    for page in &forward[2..] {
        let previous = link(page, "previous").ok_or("a previous link")?;
        assert!(
            previous.starts_with(&format!("{}?_getpages=", s.base())),
            "{search}: a sealed previous link: {previous}"
        );
    }
    let last = path_on(s, &link(&forward[forward.len() - 2], "next").ok_or("a next link")?)?;
    let mut back = follow(s, &last, "previous", ports)?;
    back.reverse();
    let pages = |list: &[Value]| list.iter().map(families).collect::<Vec<_>>();
    assert_eq!(pages(&back), pages(&forward), "{search}: the same pages backwards");
    Ok(())
}

#[test]
fn merged_pages_go_back_with_previous_and_restart_with_first() -> TestResult {
    if !runs_here("merged previous") {
        return Ok(());
    }
    let (remote, s) = seeded()?;
    let ports = [remote.server.port];
    let all = ["Fam01", "Fam02", "Fam03", "Fam04", "Fam05", "Fam06", "Fam07"];
    both_ways(&s, "Patient?_sort=family&_count=2", &ports, &all)?;
    let mut descending = all;
    descending.reverse();
    both_ways(&s, "Patient?_sort=-family&_count=3", &ports, &descending)?;
    // Without `_sort`: the local store's (odd) then the remote's (even), a page spanning both.
    both_ways(&s, "Patient?_count=3", &ports, &["Fam01", "Fam03", "Fam05", "Fam07", "Fam02", "Fam04", "Fam06"])?;

    // A POST `_search`: `first` is the search as a GET on the route's base.
    let form = b"family:contains=Fam&_sort=family&_count=2";
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = s.send("POST", "Patient/_search", Some(form), &headers)?;
    expect("POST _search", &r, 200)?;
    let first = link(&r.json()?, "first").ok_or("a first link")?;
    let again = s.get(&path_on(&s, &first)?)?;
    expect("GET of the first link", &again, 200)?;
    assert_eq!(families(&again.json()?), ["Fam01", "Fam02"], "{first}");
    Ok(())
}

#[test]
fn a_remote_only_route_pages_back_too() -> TestResult {
    if !runs_here("remote previous") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-prev-remote")?;
    let dir = temp_dir("gw-prev")?;
    let toml = [remote_target("remote", &remote.base(), &remote.credentials(), ""), route("all", "", &["remote"], "")]
        .concat();
    let s = topology::start(&dir, &toml, &[])?;
    let mut all = Vec::new();
    for n in 1..=7 {
        let body =
            json!({"resourceType": "Patient", "id": format!("r{n}"), "name": [{"family": format!("Rem{n:02}")}]});
        expect_written("seeding", &s.put(&format!("Patient/r{n}"), &body)?)?;
        all.push(format!("Rem{n:02}"));
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    both_ways(&s, "Patient?_sort=family&_count=2", &[remote.server.port], &all)?;
    Ok(())
}

#[test]
fn previous_links_are_sealed_and_bound_to_their_caller() -> TestResult {
    if !runs_here("sealed previous links") {
        return Ok(());
    }
    let (_remote, s) = seeded()?;
    let page1 = s.get("Patient?_sort=family&_count=2")?.json()?;
    let page2 = s.get(&path_on(&s, &link(&page1, "next").ok_or("next")?)?)?.json()?;
    let page3 = s.get(&path_on(&s, &link(&page2, "next").ok_or("next")?)?)?.json()?;
    let previous = path_on(&s, &link(&page3, "previous").ok_or("previous")?)?;
    let r = s.get(&previous)?;
    expect("the previous link works for its caller", &r, 200)?;
    assert_eq!(families(&r.json()?), families(&page2), "page 2 again");

    let other = s.mint(&["--role", "globalAdmin", "--sub", "someone-else"])?;
    expect_outcome("another caller's previous link", &s.send_as(Some(&other), "GET", &previous, None, &[])?, 410)?;
    let (head, sealed) = previous.split_once("_getpages=").ok_or("a _getpages link")?;
    let mut bytes = sealed.as_bytes().to_vec();
    let at = bytes.len() / 3;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    expect_outcome("a changed previous link", &s.get(&format!("{head}_getpages={}", String::from_utf8(bytes)?))?, 410)?;
    Ok(())
}

//! End-to-end: instance, type and system history with `_count`, `_since`, `_at` and paging.

use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

fn obs(id: &str, value: i64) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "weight"}, "valueQuantity": {"value": value, "unit": "kg"}})
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| {
                    let url = x["fullUrl"].as_str().unwrap_or("");
                    let v = x["response"]["etag"].as_str().unwrap_or("");
                    format!("{}@{}", url.rsplit('/').next().unwrap_or(""), v.trim_start_matches("W/").trim_matches('"'))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == relation)?["url"].as_str().map(str::to_string)
}

fn path_of(s: &Server, url: &str) -> String {
    url.strip_prefix(&s.base()).unwrap_or(url).to_string()
}

#[test]
fn instance_type_and_system_history() -> TestResult {
    let s = Server::start("history")?;
    for v in 1..=3 {
        assert!(s.put("Observation/o1", &obs("o1", v))?.status < 300);
    }
    assert_eq!(s.put("Observation/o2", &obs("o2", 9))?.status, 201);
    assert_eq!(s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"}))?.status, 201);

    let h = s.get("Observation/o1/_history")?;
    assert_eq!(h.status, 200);
    let h = h.json()?;
    assert_eq!(h["resourceType"], "Bundle");
    assert_eq!(h["type"], "history");
    assert_eq!(h["total"], 3);
    assert_eq!(ids(&h), ["o1@3", "o1@2", "o1@1"], "newest first");
    assert_eq!(h["entry"][0]["request"]["method"], "PUT");
    assert_eq!(h["entry"][0]["request"]["url"], "Observation/o1");
    assert_eq!(h["entry"][2]["response"]["status"], "201 Created");
    assert_eq!(h["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(h["entry"][0]["resource"]["valueQuantity"]["value"], 3);

    let t = s.get("Observation/_history")?.json()?;
    assert_eq!(t["total"], 4);
    assert_eq!(ids(&t), ["o2@1", "o1@3", "o1@2", "o1@1"]);

    let sys = s.get("_history")?.json()?;
    assert_eq!(sys["total"], 5);
    assert_eq!(ids(&sys)[0], "p1@1");

    assert_eq!(s.get("Observation/none/_history")?.status, 404);
    assert_eq!(s.get("Observation/_history?_count=abc")?.status, 400);
    assert_eq!(s.get("Observation/_history?_since=notadate")?.status, 400);
    Ok(())
}

#[test]
fn since_and_at() -> TestResult {
    let s = Server::start("since")?;
    let first = s.put("Observation/a", &obs("a", 1))?.json()?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = s.put("Observation/a", &obs("a", 2))?.json()?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    let third = s.put("Observation/a", &obs("a", 3))?.json()?;
    let t1 = first["meta"]["lastUpdated"].as_str().ok_or("t1")?;
    let t2 = second["meta"]["lastUpdated"].as_str().ok_or("t2")?;
    let t3 = third["meta"]["lastUpdated"].as_str().ok_or("t3")?;

    let h = s.get(&format!("Observation/a/_history?_since={t2}"))?.json()?;
    assert_eq!(ids(&h), ["a@3", "a@2"], "_since is inclusive");
    let h = s.get(&format!("_history?_since={t3}"))?.json()?;
    assert_eq!(ids(&h), ["a@3"]);
    // `_at` an instant between versions 1 and 2 gives version 1; at t2, version 2.
    let h = s.get(&format!("Observation/a/_history?_at={t1}"))?.json()?;
    assert_eq!(ids(&h), ["a@1"], "{h}");
    let h = s.get(&format!("Observation/a/_history?_at={t2}"))?.json()?;
    assert_eq!(ids(&h), ["a@2"], "{h}");
    Ok(())
}

#[test]
fn paging_is_stable_while_writes_arrive() -> TestResult {
    let s = Server::start("paging")?;
    for i in 0..7 {
        assert_eq!(s.put(&format!("Observation/p{i}"), &obs(&format!("p{i}"), i))?.status, 201);
    }
    let page1 = s.get("Observation/_history?_count=3")?.json()?;
    assert_eq!(page1["total"], 7);
    assert_eq!(ids(&page1), ["p6@1", "p5@1", "p4@1"]);
    assert!(link(&page1, "previous").is_none());
    assert!(link(&page1, "self").is_some());
    let next = link(&page1, "next").ok_or("no next link")?;

    // New writes between pages must not shift what the next pages show.
    assert_eq!(s.put("Observation/new", &obs("new", 100))?.status, 201);
    assert_eq!(s.put("Observation/p0", &obs("p0", 50))?.status, 200);

    let page2 = s.get(&path_of(&s, &next))?.json()?;
    assert_eq!(page2["total"], 7);
    assert_eq!(ids(&page2), ["p3@1", "p2@1", "p1@1"]);
    let page3 = s.get(&path_of(&s, &link(&page2, "next").ok_or("no next")?))?.json()?;
    assert_eq!(ids(&page3), ["p0@1"]);
    assert!(link(&page3, "next").is_none());
    let back = s.get(&path_of(&s, &link(&page3, "previous").ok_or("no previous")?))?.json()?;
    assert_eq!(ids(&back), ids(&page2));

    // A fresh first page sees the new writes.
    let fresh = s.get("Observation/_history?_count=3")?.json()?;
    assert_eq!(fresh["total"], 9);
    assert_eq!(ids(&fresh), ["p0@2", "new@1", "p6@1"]);
    Ok(())
}

/// Follows `relation` links from `page` (at most 50), with a write between requests; returns
/// the pages' ids, `page`'s first, and the last page.
fn follow(
    s: &Server,
    page: Value,
    relation: &str,
    write: &mut dyn FnMut() -> TestResult,
) -> TestResult<(Vec<Vec<String>>, Value)> {
    let mut pages = vec![ids(&page)];
    let mut page = page;
    while let Some(url) = link(&page, relation) {
        assert!(!url.contains("_offset="), "a key link, not an offset: {url}");
        write()?;
        let reply = s.get(&path_of(s, &url))?;
        assert_eq!(reply.status, 200, "{}", reply.body);
        page = reply.json()?;
        // The page's own link shows it again.
        let again = s.get(&path_of(s, &link(&page, "self").ok_or("no self link")?))?.json()?;
        assert_eq!(ids(&again), ids(&page), "self");
        pages.push(ids(&page));
        assert!(pages.len() <= 50, "paging ends");
    }
    Ok((pages, page))
}

/// Pages past the third, at system, type and instance level, over a transaction's versions (one
/// write position for all on some stores) and updates, while writes arrive: forwards by `next`
/// and back by `previous`, every version of the first page's snapshot once, the same pages both
/// ways.
#[test]
fn deep_pages_go_by_key_forwards_and_back() -> TestResult {
    let s = Server::start("history-keys")?;
    let entries: Vec<Value> = (0..5)
        .map(|i| json!({"resource": obs(&format!("t{i}"), i), "request": {"method": "PUT", "url": format!("Observation/t{i}")}}))
        .collect();
    let reply = s.post("", &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}))?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for v in 0..6 {
        assert!(s.put("Observation/u", &obs("u", v))?.status < 300);
    }
    let n = std::cell::Cell::new(0);
    let mut write = || -> TestResult {
        n.set(n.get() + 1);
        let late = format!("late{}", n.get());
        assert!(s.put(&format!("Observation/{late}"), &obs(&late, 1))?.status < 300);
        assert!(s.put("Observation/u", &obs("u", 100 + n.get()))?.status < 300);
        Ok(())
    };
    // Each level's first page, its versions before any `write`, and the versions each adds.
    let levels = [
        ("_history?_count=3", 11, 2),
        ("Observation/_history?_count=2", 11, 2),
        ("Observation/u/_history?_count=1", 6, 1),
    ];
    for (first, base, per_write) in levels {
        let page1 = s.get(first)?.json()?;
        // What was written before this first page (the earlier levels' writes included).
        let before = n.get();
        let expected = base + per_write * usize::try_from(before)?;
        assert_eq!(page1["total"], expected, "{first}");
        let (forwards, last) = follow(&s, page1, "next", &mut write)?;
        assert!(forwards.len() > 3, "{first}: more than three pages: {forwards:?}");
        let listed = forwards.concat();
        assert_eq!(listed.len(), expected, "{first}: {listed:?}");
        assert_eq!(listed.iter().collect::<std::collections::BTreeSet<_>>().len(), expected, "{first}: none twice");
        let later = |id: &String| {
            id.strip_prefix("late").and_then(|r| r.split('@').next()?.parse::<i64>().ok()).is_some_and(|k| k > before)
        };
        assert!(!listed.iter().any(later), "{first}: none written later: {listed:?}");
        let (mut backwards, top) = follow(&s, last, "previous", &mut write)?;
        backwards.reverse();
        assert_eq!(backwards, forwards, "{first}: the same pages back as forwards");
        assert!(link(&top, "previous").is_none(), "{first}: the first page has no previous");
    }
    Ok(())
}

/// Attack: a history link's sealed state moved onto another history (an instance's onto the
/// system's, the system's onto an instance's, one type's onto another's): the server answers a
/// 4xx or a page of the history asked for, never a 5xx or an entry from outside it.
#[test]
fn grafted_history_links_never_fail_the_server() -> TestResult {
    let s = Server::start("history-grafts")?;
    for v in 0..4 {
        assert!(s.put("Observation/g", &obs("g", v))?.status < 300);
        assert!(
            s.put(&format!("Patient/g{v}"), &json!({"resourceType": "Patient", "id": format!("g{v}")}))?.status < 300
        );
    }
    let state = |path: &str| -> TestResult<String> {
        let next = link(&s.get(path)?.json()?, "next").ok_or("no next link")?;
        let (_, rest) = next.split_once("_snapshot=").ok_or("no state")?;
        Ok(rest.split('&').next().unwrap_or("").to_owned())
    };
    let instance = state("Observation/g/_history?_count=1")?;
    let system = state("_history?_count=1")?;
    let patients = state("Patient/_history?_count=1")?;
    for (path, sealed) in [
        ("_history", &instance),
        ("Patient/_history", &instance),
        ("Observation/g/_history", &system),
        ("Observation/g/_history", &patients),
        ("Observation/_history", &patients),
    ] {
        let reply = s.get(&format!("{path}?_count=2&_snapshot={sealed}"))?;
        assert!(reply.status < 500, "{path}: {} {}", reply.status, reply.body);
        if reply.status == 200 {
            let page = reply.json()?;
            let prefix = path.trim_end_matches("_history");
            for entry in page["entry"].as_array().into_iter().flatten() {
                let url = entry["fullUrl"].as_str().unwrap_or("");
                assert!(prefix.is_empty() || url.contains(prefix.trim_end_matches('/')), "{path}: {url}");
            }
        }
    }
    Ok(())
}

/// A history link of the form issued before pages went by key (the snapshot sealed alone,
/// format 1, and a plain `_offset`), as a client may hold across an upgrade, is still served:
/// the page at that offset inside that snapshot, the same as the key link's.
#[test]
fn links_of_the_offset_form_are_still_served() -> TestResult {
    let s = Server::start("history-old-links")?;
    for i in 0..5 {
        assert!(s.put(&format!("Observation/o{i}"), &obs(&format!("o{i}"), i))?.status < 300);
    }
    let first = s.get("Observation/_history?_count=2")?.json()?;
    let next = link(&first, "next").ok_or("no next link")?;
    let key_page = s.get(&path_of(&s, &next))?.json()?;
    // The snapshot inside the new link: offset (8), cursor kind (1), key length (2), key, then
    // the positions, sealed with the server's paging key (`<data dir>/paging.key`).
    let keys = fhirgate_engine::seal::Keys::new(&std::fs::read(s.data_dir.join("paging.key"))?, &[])?;
    let aad = b"fhirgate history snapshot";
    let (_, rest) = next.split_once("_snapshot=").ok_or("no state")?;
    let sealed = rest.split('&').next().unwrap_or("");
    let plain = keys.open(2, aad, sealed).ok_or("the link's state does not open")?;
    let length = usize::from(u16::from_le_bytes([plain[9], plain[10]]));
    let positions = plain[11 + length..].to_vec();
    let old = keys.seal(1, aad, positions).ok_or("no randomness")?;
    assert!(s.put("Observation/o9", &obs("o9", 9))?.status < 300, "a write after the snapshot");
    let reply = s.get(&format!("Observation/_history?_count=2&_snapshot={old}&_offset=2"))?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let old_page = reply.json()?;
    assert_eq!(ids(&old_page), ids(&key_page), "the same page by offset as by key");
    assert_eq!(old_page["total"], 5, "inside the snapshot");
    // Its own links are of the new form.
    let onward = link(&old_page, "next").ok_or("no next link")?;
    assert!(!onward.contains("_offset="), "{onward}");
    let last = s.get(&path_of(&s, &onward))?.json()?;
    assert_eq!(ids(&last), ["o0@1"]);
    Ok(())
}

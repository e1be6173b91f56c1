//! [`merge`]: order across targets, ties, short pages, totals, failures, included resources,
//! and paging through a whole federated search with the cursors it returns.

#![expect(clippy::panic, reason = "a test fails by panicking")]

use serde_json::{Value, json};

use crate::error::Error;
use crate::federation::{Cursor, Merged, Order, Part, merge};

/// A Patient match entry with a family name (`None`: no name) and a birth date.
fn patient(id: &str, family: Option<&str>, birth: &str) -> Value {
    let mut resource = json!({"resourceType": "Patient", "id": id, "birthDate": birth});
    if let Some(family) = family {
        resource["name"] = json!([{"family": family}]);
    }
    json!({"fullUrl": format!("https://gw.example/Patient/{id}"), "resource": resource, "search": {"mode": "match"}})
}

fn page(entries: Vec<Value>, total: Option<u64>) -> Value {
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    if let Some(total) = total {
        bundle["total"] = json!(total);
    }
    bundle
}

fn first(target: &str) -> Cursor {
    Cursor { target: target.into(), page: None, skip: 0, done: false }
}

fn part(target: &str, entries: Vec<Value>, next: Option<&str>) -> Part {
    Part { cursor: first(target), page: Ok((page(entries, None), next.map(str::to_owned))) }
}

fn merged(parts: Vec<Part>, sort: &str, count: usize) -> Merged {
    match merge("Patient", parts, Order::Sort(sort), count) {
        Ok(m) => m,
        Err(e) => panic!("merge failed: {e}"),
    }
}

/// The resource ids of the entries of `mode`.
fn ids(m: &Merged, mode: &str) -> Vec<String> {
    let entries = m.bundle["entry"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| e["resource"]["id"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn matches_of_three_targets_come_in_sort_order() {
    let a = part("a", vec![patient("a1", Some("Adams"), "1990"), patient("a2", Some("Miller"), "1970")], None);
    let b = part("b", vec![patient("b1", Some("Baker"), "1980"), patient("b2", Some("Zorn"), "2000")], None);
    let c = part("c", vec![patient("c1", Some("Chalmers"), "1960"), patient("c2", None, "1950")], None);
    let m = merged(vec![a, b, c], "family", 10);
    assert_eq!(ids(&m, "match"), ["a1", "b1", "c1", "a2", "b2", "c2"], "without a value last");
    assert!(m.cursors.iter().all(|c| c.done));

    // Descending by birth date: each target sorted its own matches the same way.
    let a = part("a", vec![patient("a1", None, "1990"), patient("a2", None, "1970")], None);
    let b = part("b", vec![patient("b1", None, "2000-05"), patient("b2", None, "1980")], None);
    let c = part("c", vec![patient("c1", None, "1995-01-01"), patient("c2", None, "1960")], None);
    let m = merged(vec![a, b, c], "-birthdate", 10);
    assert_eq!(ids(&m, "match"), ["b1", "c1", "a1", "b2", "a2", "c2"]);
}

#[test]
fn common_parameters_and_numbers_sort_too() {
    let updated = |id: &str, at: &str| {
        json!({"fullUrl": format!("https://gw.example/Patient/{id}"), "search": {"mode": "match"},
               "resource": {"resourceType": "Patient", "id": id, "meta": {"lastUpdated": at}}})
    };
    let a = part("a", vec![updated("a1", "2024-03-01T00:00:00Z"), updated("a2", "2024-01-01T00:00:00Z")], None);
    let b = part("b", vec![updated("b1", "2024-02-01T00:00:00+05:00")], None);
    assert_eq!(ids(&merged(vec![a, b], "-_lastUpdated", 10), "match"), ["a1", "b1", "a2"]);
    let a = part("a", vec![updated("LAB-2", "2024-01-01T00:00:00Z")], None);
    let b = part("b", vec![updated("CARD-9", "2024-01-01T00:00:00Z")], None);
    assert_eq!(ids(&merged(vec![a, b], "_id", 10), "match"), ["CARD-9", "LAB-2"]);
    // Numbers by value, not as text.
    let risk = |id: &str, probability: &str| {
        let resource: Value = serde_json::from_str(&format!(
            r#"{{"resourceType": "RiskAssessment", "id": "{id}", "status": "final", "subject": {{"reference": "Patient/1"}},
               "prediction": [{{"probabilityDecimal": {probability}}}]}}"#
        ))
        .unwrap_or_default();
        json!({"fullUrl": format!("https://gw.example/RiskAssessment/{id}"), "resource": resource, "search": {"mode": "match"}})
    };
    let a = part("a", vec![risk("a1", "9.5"), risk("a2", "10")], None);
    let b = part("b", vec![risk("b1", "9.75"), risk("b2", "100")], None);
    let m = match merge("RiskAssessment", vec![a, b], Order::Sort("probability"), 10) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(ids(&m, "match"), ["a1", "b1", "a2", "b2"]);
}

#[test]
fn ties_go_by_route_order_then_position() {
    let a = part("a", vec![patient("a1", Some("Smith"), "1"), patient("a2", Some("Smith"), "1")], None);
    let b = part("b", vec![patient("b1", Some("Jones"), "1"), patient("b2", Some("Smith"), "1")], None);
    let c = part("c", vec![patient("c1", Some("Smith"), "1")], None);
    let m = merged(vec![a, b, c], "family", 10);
    assert_eq!(ids(&m, "match"), ["b1", "a1", "a2", "b2", "c1"]);
    // A second key decides before the target order.
    let a = part("a", vec![patient("a1", Some("Smith"), "2000")], None);
    let b = part("b", vec![patient("b1", Some("Smith"), "1990")], None);
    assert_eq!(ids(&merged(vec![a, b], "family,birthdate", 10), "match"), ["b1", "a1"]);
}

#[test]
fn without_sort_targets_come_one_after_the_other() {
    let a = part("a", vec![patient("a1", Some("Zorn"), "1")], None);
    let b = part("b", vec![patient("b1", Some("Adams"), "1"), patient("b2", Some("Baker"), "1")], None);
    let m = merged(vec![a, b], "", 2);
    assert_eq!(ids(&m, "match"), ["a1", "b1"]);
    assert_eq!(m.cursors[0], Cursor { target: "a".into(), page: None, skip: 0, done: true });
    assert_eq!(m.cursors[1], Cursor { target: "b".into(), page: None, skip: 1, done: false });

    // The first target has more pages: the second waits for it.
    let a = part("a", vec![patient("a1", None, "1")], Some("https://gw.example?page=a2"));
    let b = part("b", vec![patient("b1", None, "1")], None);
    let m = merged(vec![a, b], "", 10);
    assert_eq!(ids(&m, "match"), ["a1"]);
    assert_eq!(
        m.cursors[0],
        Cursor { target: "a".into(), page: Some("https://gw.example?page=a2".into()), skip: 0, done: false }
    );
    assert_eq!(m.cursors[1], first("b"), "untouched");
}

#[test]
fn a_page_stops_where_a_target_with_more_pages_runs_out() {
    // `a` has more after Baker: nothing after Baker may be served before its next page is read.
    let a = part("a", vec![patient("a1", Some("Adams"), "1"), patient("a2", Some("Baker"), "1")], Some("a?p=2"));
    let b = part("b", vec![patient("b1", Some("Allen"), "1"), patient("b2", Some("Cole"), "1")], None);
    let m = merged(vec![a, b], "family", 10);
    assert_eq!(ids(&m, "match"), ["a1", "b1", "a2"], "short, never out of order");
    assert_eq!(m.cursors[0], Cursor { target: "a".into(), page: Some("a?p=2".into()), skip: 0, done: false });
    assert_eq!(m.cursors[1], Cursor { target: "b".into(), page: None, skip: 1, done: false });

    // A target page left empty (its matches were hidden) still moves on.
    let a = part("a", vec![], Some("a?p=2"));
    let b = part("b", vec![patient("b1", Some("Allen"), "1")], None);
    let m = merged(vec![a, b], "family", 10);
    assert!(ids(&m, "match").is_empty());
    assert_eq!(m.cursors[0].page.as_deref(), Some("a?p=2"));
    assert_eq!(m.cursors[1], first("b"));
}

#[test]
fn count_is_respected_and_cursors_skip_what_was_served() {
    let a = part(
        "a",
        vec![patient("a1", Some("A"), "1"), patient("a2", Some("C"), "1"), patient("a3", Some("E"), "1")],
        None,
    );
    let b = part("b", vec![patient("b1", Some("B"), "1"), patient("b2", Some("D"), "1")], None);
    let m = merged(vec![a, b], "family", 3);
    assert_eq!(ids(&m, "match"), ["a1", "b1", "a2"]);
    assert_eq!(m.cursors[0].skip, 2);
    assert_eq!(m.cursors[1].skip, 1);
    // `_count=0`: no match, and no next page.
    let a =
        Part { cursor: first("a"), page: Ok((page(vec![patient("a1", None, "1")], Some(7)), Some("a?p=2".into()))) };
    let m = merged(vec![a], "", 0);
    assert!(ids(&m, "match").is_empty());
    assert_eq!(m.bundle["total"], 7);
    assert!(m.cursors.iter().all(|c| c.done));
}

#[test]
fn totals_are_summed_only_when_every_target_gave_one() {
    let with = |t: &str, total: Option<u64>| Part { cursor: first(t), page: Ok((page(vec![], total), None)) };
    assert_eq!(merged(vec![with("a", Some(3)), with("b", Some(4)), with("c", Some(0))], "", 10).bundle["total"], 7);
    assert_eq!(merged(vec![with("a", Some(3)), with("b", None)], "", 10).bundle.get("total"), None);
    let failed = Part { cursor: first("b"), page: Err(Error::GatewayTimeout("no answer".into())) };
    assert_eq!(merged(vec![with("a", Some(3)), failed], "", 10).bundle.get("total"), None);
    let done = Part { cursor: Cursor { done: true, ..first("b") }, page: Ok((page(vec![], Some(4)), None)) };
    assert_eq!(merged(vec![with("a", Some(3)), done], "", 10).bundle.get("total"), None);
}

#[test]
fn a_failed_target_is_one_outcome_entry_without_its_url() {
    let a = part("a", vec![patient("a1", Some("Adams"), "1")], None);
    let down = Part {
        cursor: first("lab"),
        page: Err(Error::BadGateway("garbage from https://lab.internal:8443/fhir/Patient?x=1".into())),
    };
    let refused = Part {
        cursor: first("ehr"),
        page: Err(Error::bad_request("unknown parameter `foo`, see https://ehr.internal/fhir/metadata")),
    };
    let m = merged(vec![a, down, refused], "family", 10);
    assert_eq!(ids(&m, "match"), ["a1"]);
    let outcomes: Vec<&Value> =
        m.bundle["entry"].as_array().into_iter().flatten().filter(|e| e["search"]["mode"] == "outcome").collect();
    assert_eq!(outcomes.len(), 2, "one per failed target");
    let text = serde_json::to_string(&outcomes).unwrap_or_default();
    assert!(!text.contains("lab.internal") && !text.contains("ehr.internal"), "{text}");
    assert!(
        text.contains("`lab`")
            && text.contains("502")
            && text.contains("`ehr`")
            && text.contains("unknown parameter `foo`"),
        "{text}"
    );
    assert_eq!(outcomes[0]["resource"]["resourceType"], "OperationOutcome");
    assert!(m.cursors[1].done && m.cursors[2].done, "failed targets are not asked again");
}

#[test]
fn included_resources_go_with_the_page_they_came_with() {
    let include = |id: &str| {
        json!({"fullUrl": format!("https://gw.example/Organization/{id}"),
               "resource": {"resourceType": "Organization", "id": id}, "search": {"mode": "include"}})
    };
    let note = json!({"resource": {"resourceType": "OperationOutcome", "id": "n",
                      "issue": [{"severity": "warning", "code": "processing", "diagnostics": "ignored"}]},
                      "search": {"mode": "outcome"}});
    let mut a_entries = vec![patient("a1", Some("A"), "1"), patient("a2", Some("C"), "1"), include("oa"), note.clone()];
    a_entries.push(include("oa")); // the same resource twice is served once
    let b_entries = vec![patient("b1", Some("B"), "1"), include("ob"), note];
    let m = merged(vec![part("a", a_entries.clone(), None), part("b", b_entries.clone(), None)], "family", 1);
    assert_eq!(ids(&m, "match"), ["a1"]);
    assert_eq!(ids(&m, "include"), ["oa"], "only the includes of pages a match was taken from");
    assert_eq!(ids(&m, "outcome"), ["n"], "a's note, once");
    // The next page continues a's page: its includes again, its note not.
    let a = Part { cursor: m.cursors[0].clone(), page: Ok((page(a_entries, None), None)) };
    let b = Part { cursor: m.cursors[1].clone(), page: Ok((page(b_entries, None), None)) };
    let m = merged(vec![a, b], "family", 5);
    assert_eq!(ids(&m, "match"), ["b1", "a2"]);
    assert_eq!(ids(&m, "include"), ["oa", "ob"]);
    assert_eq!(ids(&m, "outcome"), ["n"], "b's note");
}

#[test]
fn sorts_no_store_can_do_are_refused() {
    for sort in ["nonsense", "family,", "-"] {
        assert!(merge("Patient", vec![], Order::Sort(sort), 10).is_err(), "{sort}");
    }
    let err = merge("Observation", vec![], Order::Sort("code-value-quantity"), 10);
    assert!(matches!(&err, Err(e) if e.status() == 400), "{err:?}");
    assert!(merge("", vec![], Order::Sort("_lastUpdated"), 10).is_ok(), "a system search sorts by common parameters");
}

/// A target holding `matches` (already in its own order) and serving pages of `size`, whose
/// page URLs are `{name}?p={start}`.
struct Target {
    name: &'static str,
    matches: Vec<Value>,
    size: usize,
}

impl Target {
    fn part(&self, cursor: &Cursor) -> Part {
        let start =
            cursor.page.as_deref().and_then(|p| p.split("?p=").nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let end = (start + self.size).min(self.matches.len());
        let entries = self.matches[start..end].to_vec();
        let next = (end < self.matches.len()).then(|| format!("{}?p={end}", self.name));
        let total = Some(self.matches.len() as u64);
        Part { cursor: cursor.clone(), page: Ok((page(entries, total), next)) }
    }
}

/// Pages through a federated search the way the gateway does: merge, keep the cursors, fetch
/// every target that is not done, until all are. The ids served, in order.
fn page_through(targets: &[Target], sort: &str, count: usize) -> Vec<String> {
    let mut cursors: Vec<Cursor> = targets.iter().map(|t| first(t.name)).collect();
    let mut served = Vec::new();
    for _ in 0..1000 {
        if cursors.iter().all(|c| c.done) {
            return served;
        }
        let parts = targets.iter().zip(&cursors).map(|(t, c)| t.part(c)).collect();
        let m = merged(parts, sort, count);
        let page = ids(&m, "match");
        assert!(page.len() <= count);
        served.extend(page);
        cursors = m.cursors;
    }
    panic!("no end after 1000 pages");
}

#[test]
fn paging_through_serves_every_match_once_in_order() {
    let families = ["Ames", "Bell", "Cole", "Dunn", "Egan", "Ford", "Gray", "Hale", "Ives", "Jung", "Kerr", "Lund"];
    // Each target sorted by family; some families on several targets (ties), some without one.
    let pick = |prefix: &str, picks: &[usize], missing: usize| -> Vec<Value> {
        let mut out: Vec<Value> =
            picks.iter().enumerate().map(|(n, &f)| patient(&format!("{prefix}{n}"), Some(families[f]), "1")).collect();
        out.extend((0..missing).map(|n| patient(&format!("{prefix}x{n}"), None, "1")));
        out
    };
    let targets = [
        Target { name: "a", matches: pick("a", &[0, 2, 2, 5, 7, 11], 1), size: 2 },
        Target { name: "b", matches: pick("b", &[1, 2, 3, 4, 8, 9, 10], 0), size: 3 },
        Target { name: "c", matches: pick("c", &[0, 6, 7], 2), size: 1 },
    ];
    // The expected order: by family, without one last; ties by target then position.
    let mut expected: Vec<(Option<usize>, usize, usize, String)> = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        for (n, entry) in target.matches.iter().enumerate() {
            let family = entry["resource"]["name"][0]["family"].as_str();
            let key = family.and_then(|f| families.iter().position(|x| *x == f));
            expected.push((key, t, n, entry["resource"]["id"].as_str().unwrap_or("?").to_owned()));
        }
    }
    expected.sort_by_key(|(key, t, n, _)| (key.is_none(), *key, *t, *n));
    let expected: Vec<String> = expected.into_iter().map(|(_, _, _, id)| id).collect();
    for count in [1, 2, 3, 5, 50] {
        assert_eq!(page_through(&targets, "family", count), expected, "_count={count}");
    }
    // Without `_sort`: every match of a, then b, then c.
    let concatenated: Vec<String> = targets
        .iter()
        .flat_map(|t| t.matches.iter().map(|e| e["resource"]["id"].as_str().unwrap_or("?").to_owned()))
        .collect();
    for count in [1, 4, 50] {
        assert_eq!(page_through(&targets, "", count), concatenated, "_count={count} without _sort");
    }
}

/// A history entry of `Patient/{id}` at `time` (a delete has no resource, only its response).
fn version(id: &str, time: &str, deleted: bool) -> Value {
    let mut entry = json!({
        "fullUrl": format!("https://gw.example/Patient/{id}"),
        "request": { "method": if deleted { "DELETE" } else { "PUT" }, "url": format!("Patient/{id}") },
        "response": { "status": "200 OK", "lastModified": time },
    });
    if !deleted {
        entry["resource"] = json!({"resourceType": "Patient", "id": id, "meta": {"lastUpdated": time}});
    }
    entry
}

#[test]
fn history_pages_merge_newest_first_across_targets() {
    let a = vec![version("a2", "2026-01-05T00:00:00Z", true), version("a1", "2026-01-01T00:00:00.500+00:00", false)];
    // The second target writes its times with an offset: compared as instants, not as text.
    let b = vec![version("b2", "2026-01-04T01:00:00+02:00", false), version("b1", "2026-01-01T00:00:00.250Z", false)];
    let parts = vec![
        Part { cursor: first("a"), page: Ok((page(a, None), None)) },
        Part { cursor: first("b"), page: Ok((page(b, None), None)) },
    ];
    let merged = match merge("Patient", parts, Order::Newest, 10) {
        Ok(merged) => merged,
        Err(e) => panic!("{e}"),
    };
    let ids: Vec<&str> = merged.bundle["entry"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(|e| e["fullUrl"].as_str()?.rsplit('/').next())
        .collect();
    assert_eq!(ids, ["a2", "b2", "a1", "b1"]);
}

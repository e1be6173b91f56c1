//! End-to-end: routes over two local SQLite targets through the real binary, configured by a
//! TOML file (`[[targets]]`/`[[routes]]` come from TOML only): routes by prefix, by resource type
//! and by token claim, an unknown route's 404; prefixes isolate data; a read fanned out to both
//! targets; a merged search with `_sort` and fhirgate's own opaque page links; id prefixes of a
//! target shown to clients in ids, references, `Location` and `fullUrl`; a transaction needing
//! both targets refused with nothing written; a Cedar policy on `context.target` that allows on
//! one target and not on the other.

use std::path::Path;

use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use serde_json::{Value, json};

/// The routing table of these tests: stores `a` and `b` (files in `dir`).
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
[policy]
dir = "{d}/policies"

[[targets]]
id = "a"
store = "sqlite:{d}/a.db"

[[targets]]
id = "b"
store = "sqlite:{d}/b.db"

# Tenant t1's data: only for tokens whose `tid` is t1.
[[routes]]
id = "tenant"
prefix = "tenants"
claim = "tid"
claim_value = "t1"
targets = ["b"]

[[routes]]
id = "alpha"
prefix = "alpha"
targets = ["a"]

[[routes]]
id = "beta"
prefix = "beta"
targets = ["b"]

# Both stores, b's ids shown with a prefix; writes without one go to a.
[[routes]]
id = "both"
prefix = "both"
targets = ["a", "b"]
id_prefixes = {{ b = "LOCALB-" }}

# Both stores, ids as they are: reads fan out.
[[routes]]
id = "fan"
prefix = "fan"
targets = ["a", "b"]

# At the root, Patients only (the master patient index is b).
[[routes]]
id = "mpi"
types = ["Patient"]
targets = ["b"]
"#
    )
}

/// A policy that lets `targetReader` read and search target `a` only.
const TARGET_POLICY: &str = r#"
@id("target-a-reader")
permit (
  principal in Fhir::Role::"targetReader",
  action in [Fhir::Action::"reads", Fhir::Action::"searches"],
  resource
) when { context.target == "a" };
"#;

fn start(name: &str) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    std::fs::create_dir_all(dir.join("policies"))?;
    std::fs::write(dir.join("policies/targets.cedar"), TARGET_POLICY)?;
    let file = dir.join("fhirgate.toml");
    std::fs::write(&file, config(&dir))?;
    let file = file.display().to_string();
    Server::start_with(&dir, &[("FHIRGATE_CONFIG", file.as_str())])
}

fn created(r: &Reply) -> TestResult<String> {
    assert_eq!(r.status, 201, "{}", r.body);
    Ok(r.json()?["id"].as_str().ok_or("no id")?.to_owned())
}

fn patient(family: &str, given: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}]})
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == relation)?["url"].as_str().map(str::to_owned)
}

#[test]
fn routes_by_prefix_type_and_claim_and_none_is_404() -> TestResult {
    let s = start("routes-match")?;
    let r = s.get("nowhere/Patient")?;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.outcome_issues()?[0]["diagnostics"].as_str().unwrap_or_default().contains("no route"), "{}", r.body);
    assert_eq!(s.get("Observation")?.status, 404, "the root route takes Patients only");

    // Prefixes isolate: a's Patient is not b's.
    let r = s.post("alpha/Patient", &patient("Alpha", "iso"))?;
    let in_a = created(&r)?;
    let location = r.header("Location").unwrap_or_default().to_owned();
    assert!(location.starts_with(&format!("{}/alpha/Patient/{in_a}", s.base())), "{location}");
    assert_eq!(s.get(&format!("alpha/Patient/{in_a}"))?.status, 200);
    assert_eq!(s.get(&format!("beta/Patient/{in_a}"))?.status, 404);
    let search = s.get(&format!("alpha/Patient?_id={in_a}"))?.json()?;
    assert_eq!(search["entry"][0]["fullUrl"], format!("{}/alpha/Patient/{in_a}", s.base()));

    // The type route at the root writes to b.
    let in_b = created(&s.post("Patient", &patient("Beta", "iso"))?)?;
    assert_eq!(s.get(&format!("beta/Patient/{in_b}"))?.status, 200);
    assert_eq!(s.get(&format!("alpha/Patient/{in_b}"))?.status, 404);
    let metadata = s.get("metadata")?.json()?;
    let types: Vec<&str> = metadata["rest"][0]["resource"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["Patient"], "the route's statement lists its types only");
    let metadata = s.get("alpha/metadata")?.json()?;
    assert_eq!(metadata["implementation"]["url"], format!("{}/alpha", s.base()));

    // The claim route: only tokens of tenant t1.
    let t1 = s.mint(&["--role", "globalAdmin", "--tenant", "t1"])?;
    assert_eq!(s.send_as(Some(&t1), "GET", &format!("tenants/Patient/{in_b}"), None, &[])?.status, 200);
    let r = s.get(&format!("tenants/Patient/{in_b}"))?;
    assert_eq!(r.status, 404, "another tenant: no route: {}", r.body);
    Ok(())
}

#[test]
fn reads_fan_out_and_searches_merge_in_sort_order_with_opaque_links() -> TestResult {
    let s = start("routes-fan")?;
    let in_a = created(&s.post("alpha/Patient", &patient("Adams", "fanned"))?)?;
    let in_b = created(&s.post("beta/Patient", &patient("Baker", "fanned"))?)?;
    created(&s.post("alpha/Patient", &patient("Clark", "fanned"))?)?;
    created(&s.post("beta/Patient", &patient("Davis", "fanned"))?)?;
    created(&s.post("beta/Patient", &patient("Evans", "fanned"))?)?;

    let r = s.get(&format!("fan/Patient/{in_a}"))?;
    assert_eq!((r.status, r.json()?["name"][0]["family"].clone()), (200, json!("Adams")));
    let r = s.get(&format!("fan/Patient/{in_b}"))?;
    assert_eq!((r.status, r.json()?["name"][0]["family"].clone()), (200, json!("Baker")));
    assert_eq!(s.get("fan/Patient/nobody-has-it")?.status, 404);

    let first = s.get("fan/Patient?given=fanned&_sort=family&_count=2")?;
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json()?;
    let families = |b: &Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["resource"]["name"][0]["family"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    assert_eq!(families(&first), ["Adams", "Baker"]);
    if let Some(total) = first["total"].as_u64() {
        assert_eq!(total, 5, "the sum of both targets");
    }
    let mut next = link(&first, "next").ok_or("a next link")?;
    let prefix = format!("{}/fan?_getpages=", s.base());
    assert!(next.starts_with(&prefix), "fhirgate's own link on the route's base: {next}");
    let sealed = next.trim_start_matches(&prefix).to_owned();
    for leak in ["_page", "sqlite", "a.db", "Patient", "family"] {
        assert!(!sealed.contains(leak), "the link reveals `{leak}`: {sealed}");
    }
    let mut seen = families(&first);
    for _ in 0..5 {
        let page = s.get(next.trim_start_matches(&s.base()))?;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json()?;
        seen.extend(families(&page));
        match link(&page, "next") {
            Some(n) => next = n,
            None => break,
        }
    }
    assert_eq!(seen, ["Adams", "Baker", "Clark", "Davis", "Evans"], "every match once, in order across targets");

    // Tampered, or another client's: gone.
    let mut tampered = sealed.clone().into_bytes();
    if let Some(b) = tampered.get_mut(10) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    let tampered = String::from_utf8(tampered)?;
    assert_eq!(s.get(&format!("fan?_getpages={tampered}"))?.status, 410);
    let other = s.mint(&["--role", "globalAdmin", "--sub", "someone-else"])?;
    assert_eq!(s.send_as(Some(&other), "GET", &format!("fan?_getpages={sealed}"), None, &[])?.status, 410);
    Ok(())
}

#[test]
fn id_prefixes_are_what_clients_see_and_transactions_stay_on_one_target() -> TestResult {
    let s = start("routes-prefix")?;
    let in_b = created(&s.post("beta/Patient", &patient("Prefixed", "p"))?)?;
    let shown = format!("LOCALB-{in_b}");
    let r = s.get(&format!("both/Patient/{shown}"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()?["id"], shown.as_str());
    assert_eq!(s.get(&format!("both/Patient/{in_b}"))?.status, 404, "unprefixed ids are a's");

    // A write naming b's prefix lands in b, references and all.
    let observation = json!({"resourceType": "Observation", "id": "LOCALB-obs1", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": format!("Patient/{shown}")}});
    let r = s.put("both/Observation/LOCALB-obs1", &observation)?;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    let location = r.header("Location").unwrap_or_default().to_owned();
    assert!(location.starts_with(&format!("{}/both/Observation/LOCALB-obs1", s.base())), "{location}");
    let stored = s.get("beta/Observation/obs1")?.json()?;
    assert_eq!(stored["subject"]["reference"], format!("Patient/{in_b}"), "b stores its own ids");
    let shown_obs = s.get("both/Observation/LOCALB-obs1")?.json()?;
    assert_eq!(shown_obs["subject"]["reference"], format!("Patient/{shown}"));
    let search = s.get(&format!("both/Observation?subject=Patient/{shown}"))?.json()?;
    assert_eq!(ids(&search), ["LOCALB-obs1"], "{search}");
    assert_eq!(search["entry"][0]["fullUrl"], format!("{}/both/Observation/LOCALB-obs1", s.base()));

    // A transaction for both targets: refused, nothing written anywhere.
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "LOCALB-t1"}, "request": {"method": "PUT", "url": "Patient/LOCALB-t1"}},
        {"resource": {"resourceType": "Patient", "id": "t2"}, "request": {"method": "PUT", "url": "Patient/t2"}}
    ]});
    let r = s.post("both", &transaction)?;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("one server"), "{}", r.body);
    assert_eq!(s.get("beta/Patient/t1")?.status, 404);
    assert_eq!(s.get("alpha/Patient/t2")?.status, 404);

    // A batch may go to both: answered in the client's order.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{shown}")}},
        {"resource": {"resourceType": "Patient", "id": "in-a"}, "request": {"method": "PUT", "url": "Patient/in-a"}}
    ]});
    let r = s.post("both", &batch)?;
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = r.json()?;
    assert_eq!(reply["type"], "batch-response");
    assert_eq!(reply["entry"][0]["resource"]["id"], shown.as_str(), "{reply}");
    assert!(reply["entry"][1]["response"]["status"].as_str().unwrap_or_default().starts_with("201"), "{reply}");
    assert_eq!(s.get("alpha/Patient/in-a")?.status, 200);
    Ok(())
}

#[test]
fn a_policy_on_context_target_allows_one_target_and_not_the_other() -> TestResult {
    let s = start("routes-policy")?;
    let in_a = created(&s.post("alpha/Patient", &patient("Allowed", "p"))?)?;
    let in_b = created(&s.post("beta/Patient", &patient("Denied", "p"))?)?;
    let reader = s.mint(&["--role", "targetReader"])?;
    let get = |path: &str| s.send_as(Some(&reader), "GET", path, None, &[]);
    assert_eq!(get(&format!("alpha/Patient/{in_a}"))?.status, 200);
    assert_eq!(get(&format!("beta/Patient/{in_b}"))?.status, 404, "a hidden read is a missing one");
    assert_eq!(get("beta/Patient")?.status, 403);
    assert_eq!(get("alpha/Patient")?.status, 200);
    // On a route over both, the read finds a's and not b's.
    assert_eq!(get(&format!("fan/Patient/{in_a}"))?.status, 200);
    assert_eq!(get(&format!("fan/Patient/{in_b}"))?.status, 404);
    let merged = get("fan/Patient?given=p")?;
    assert_eq!(merged.status, 200, "a's matches, b's refusal as an outcome entry: {}", merged.body);
    let found = ids(&merged.json()?);
    assert!(found.contains(&in_a) && !found.contains(&in_b), "{found:?}");
    assert!(
        merged.body.contains("\"outcome\"") && !merged.body.contains("`b`"),
        "target ids stay inside: {}",
        merged.body
    );
    let log = s.log_text();
    assert!(log.contains(r#""target":"b""#) || log.contains(r#"\"target\":\"b\""#), "audit events name the target");
    Ok(())
}

//! End-to-end: search through the real binary (search.html): paging that holds still while
//! writes happen, opaque page links, strict and lenient handling, `POST _search`, result
//! parameters, and the CapabilityStatement's account of what is searchable.

use std::collections::BTreeSet;

use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use serde_json::{Value, json};

fn patient(family: &str) -> Value {
    json!({ "resourceType": "Patient", "name": [{ "family": family }], "gender": "other" })
}

/// `id`s of the `match` entries of a searchset.
fn matches(bundle: &Value) -> Vec<String> {
    let list = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// The URL of link `relation`, as a path below the base.
fn link(server: &Server, bundle: &Value, relation: &str) -> Option<String> {
    let links = bundle["link"].as_array()?;
    let url = links.iter().find(|l| l["relation"] == relation)?["url"].as_str()?;
    url.strip_prefix(&server.base()).map(|p| p.trim_start_matches('/').to_owned())
}

fn ok_json(reply: Reply) -> TestResult<Value> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {}: {}", reply.status, reply.body).into());
    }
    reply.json()
}

#[test]
fn pages_hold_still_while_writes_happen() -> TestResult {
    let s = Server::start("search-paging")?;
    let mut ids = Vec::new();
    for n in 0..25 {
        let created = s.post("Patient", &patient(&format!("Pager{n:02}")))?.json()?;
        ids.push(created["id"].as_str().ok_or("no id")?.to_owned());
    }
    let first = ok_json(s.get("Patient?family=pager&_sort=family&_count=10&_total=accurate")?)?;
    assert_eq!(first["total"], 25);
    let mut seen = matches(&first);
    assert_eq!(seen.len(), 10);
    assert!(link(&s, &first, "previous").is_none());
    // The second page reads the rest of the result set (the pages after the first are read ten
    // at a time, when paging gets there).
    let second = ok_json(s.get(&link(&s, &first, "next").ok_or("no next link")?)?)?;
    assert_eq!(second["total"], 25, "total is the total of the result set");
    seen.extend(matches(&second));

    // Between pages: rename one not yet seen so it would sort first, delete one not yet seen,
    // and add a new match. None of it may move the pages of the search already running.
    let later = &ids[20];
    let mut renamed = patient("Pager--first");
    renamed["id"] = json!(later);
    assert_eq!(s.put(&format!("Patient/{later}"), &renamed)?.status, 200);
    assert_eq!(s.delete(&format!("Patient/{}", ids[24]))?.status, 204);
    assert_eq!(s.post("Patient", &patient("Pager99"))?.status, 201);

    let mut next = link(&s, &second, "next");
    let mut pages = 2;
    while let Some(path) = next {
        assert!(path.starts_with("Patient?_page="), "opaque page link: {path}");
        let page = ok_json(s.get(&path)?)?;
        assert_eq!(page["total"], 25, "total is the total of the result set");
        assert!(link(&s, &page, "previous").is_some());
        seen.extend(matches(&page));
        next = link(&s, &page, "next");
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25, "no duplicates: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>(), ids.iter().collect::<BTreeSet<_>>(), "no gaps");
    // The pages show the versions that matched: the renamed one still as it was.
    let last = ok_json(s.get(&link(&s, &second, "last").ok_or("no last link")?)?)?;
    let names: Vec<&str> = last["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["resource"]["name"][0]["family"].as_str())
        .collect();
    assert_eq!(names, ["Pager20", "Pager21", "Pager22", "Pager23", "Pager24"]);

    // A new search sees the writes.
    // (Without `_total` a total is given only when the first page holds every match.)
    let fresh = ok_json(s.get("Patient?family=pager&_sort=family&_count=1&_total=accurate")?)?;
    assert_eq!(fresh["total"], 25);
    assert_eq!(fresh["entry"][0]["resource"]["name"][0]["family"], "Pager--first");
    Ok(())
}

#[test]
fn page_links_cannot_be_forged() -> TestResult {
    let s = Server::start("search-tokens")?;
    for n in 0..3 {
        s.post("Patient", &patient(&format!("T{n}")))?;
    }
    let first = ok_json(s.get("Patient?_count=1")?)?;
    let next = link(&s, &first, "next").ok_or("no next link")?;
    let forged = format!("{}0", next);
    for path in ["Patient?_page=nonsense", forged.as_str()] {
        let r = s.get(path)?;
        assert_eq!(r.status, 410, "{path}: {}", r.body);
        assert_eq!(r.outcome_issues()?[0]["severity"], "error");
    }
    assert_eq!(s.get(&next)?.status, 200, "the real link still works");
    Ok(())
}

#[test]
fn unknown_parameters_lenient_or_strict() -> TestResult {
    let s = Server::start("search-handling")?;
    s.post("Patient", &patient("Lenient"))?;
    let bundle = ok_json(s.get("Patient?family=lenient&frobnicate=1")?)?;
    assert_eq!(matches(&bundle).len(), 1);
    let self_link = link(&s, &bundle, "self").ok_or("no self link")?;
    assert_eq!(self_link, "Patient?family=lenient", "the self link shows only what was applied");
    let entries = bundle["entry"].as_array().ok_or("no entries")?;
    let outcome = entries.iter().find(|e| e["search"]["mode"] == "outcome").ok_or("no outcome entry")?;
    assert!(outcome["resource"]["issue"][0]["diagnostics"].as_str().unwrap_or("").contains("frobnicate"));

    let r = s.get_with("Patient?family=lenient&frobnicate=1", &[("Prefer", "handling=strict")])?;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.outcome_issues()?[0]["diagnostics"].as_str().unwrap_or("").contains("frobnicate"));

    for bad in ["Patient?birthdate=yesterday", "Patient?_count=lots", "?_type=Nonsense", "Patient?_has:Foo:bar:baz=1"] {
        let r = s.get(bad)?;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(!r.outcome_issues()?.is_empty());
    }
    // Understood but not answerable (a value set this server does not have): an error, never
    // silently ignored.
    let r = s.get("Patient?gender:in=http://example.org/no-such-value-set")?;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.outcome_issues()?[0]["code"], "not-supported");
    let r = s.get("Observation/x/Patient")?;
    assert_eq!(r.status, 404, "Observation is not a compartment: {}", r.body);
    Ok(())
}

#[test]
fn post_search_matches_get() -> TestResult {
    let s = Server::start("search-post")?;
    for family in ["Alpha", "Beta"] {
        s.post("Patient", &patient(family))?;
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = s.send("POST", "Patient/_search", Some(b"family=alp"), &form)?;
    let posted = ok_json(r)?;
    let got = ok_json(s.get("Patient?family=alp")?)?;
    assert_eq!(matches(&posted), matches(&got));
    assert_eq!(matches(&posted).len(), 1);
    // Query string and body combine.
    let both = ok_json(s.send("POST", "Patient/_search?gender=other", Some(b"family=beta"), &form)?)?;
    assert_eq!(matches(&both).len(), 1);
    let system = ok_json(s.send("POST", "_search", Some(b"_type=Patient&family=beta"), &form)?)?;
    assert_eq!(matches(&system), matches(&both));
    let r = s.send("POST", "Patient/_search", Some(b"{}"), &[("Content-Type", "application/fhir+json")])?;
    assert_eq!(r.status, 415, "{}", r.body);
    Ok(())
}

#[test]
fn result_parameters_shape_the_bundle() -> TestResult {
    let s = Server::start("search-results")?;
    for n in 0..4 {
        let mut p = patient(&format!("Shape{n}"));
        p["birthDate"] = json!(format!("200{n}-01-01"));
        p["text"] = json!({ "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>" });
        s.post("Patient", &p)?;
    }
    let counted = ok_json(s.get("Patient?_summary=count")?)?;
    assert_eq!(counted["total"], 4);
    assert!(counted.get("entry").is_none());
    assert_eq!(ok_json(s.get("Patient?_count=0")?)?["total"], 4);
    assert!(ok_json(s.get("Patient?_total=none")?)?.get("total").is_none());
    // The first page reads no more than it shows (and one match past it): a total without
    // `_total` only when that page holds every match.
    assert_eq!(ok_json(s.get("Patient?_count=4")?)?["total"], 4);
    let paged = ok_json(s.get("Patient?_count=3")?)?;
    assert!(paged.get("total").is_none(), "{paged}");
    assert_eq!(matches(&paged).len(), 3);
    assert_eq!(ok_json(s.get("Patient?_count=3&_total=accurate")?)?["total"], 4);
    let elements = ok_json(s.get("Patient?_elements=birthDate&_sort=-birthdate")?)?;
    let first = &elements["entry"][0]["resource"];
    assert_eq!(first["birthDate"], "2003-01-01");
    assert!(first.get("name").is_none() && first.get("text").is_none());
    assert_eq!(first["meta"]["tag"][0]["code"], "SUBSETTED");
    let summary = ok_json(s.get("Patient?_summary=true&_count=1")?)?;
    assert!(summary["entry"][0]["resource"].get("text").is_none(), "text is not a summary element");
    assert!(summary["entry"][0]["resource"].get("name").is_some());
    Ok(())
}

#[test]
fn a_search_matching_more_than_the_limit_reads_on_sorted_or_not() -> TestResult {
    // Without policies, or when the type-level allow covers any data (the harness's globalAdmin),
    // the store counts every match; when every match is decided on (a SMART user scope), only
    // what was decided on could be counted, so there is no total rather than a wrong one.
    for (auth, scope, total) in
        [("false", None, json!(8)), ("true", None, json!(8)), ("true", Some("user/Patient.rs"), Value::Null)]
    {
        let dir = temp_dir("search-limit")?;
        let s = Server::start_with(&dir, &[("FHIRGATE_SEARCH_MAX_RESULTS", "5"), ("FHIRGATE_AUTH_ENABLED", auth)])?;
        for n in 0..8 {
            s.post("Patient", &patient(&format!("Many{n}")))?;
        }
        let get = |path: &str| -> TestResult<Value> {
            let reply = match scope {
                Some(scope) => s.send_as(Some(&s.mint(&["--scope", scope])?), "GET", path, None, &[])?,
                None => s.get(path)?,
            };
            ok_json(reply)
        };
        let warning = |bundle: &Value| {
            bundle["entry"].as_array().into_iter().flatten().find(|e| e["search"]["mode"] == "outcome").cloned()
        };

        let sorted = get("Patient?_count=10&_total=accurate&_sort=family")?;
        assert_eq!(sorted["total"], total, "authentication {auth}, scope {scope:?}");
        let families: Vec<String> = sorted["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["name"][0]["family"].as_str().map(str::to_owned))
            .collect();
        let expected: Vec<String> = (0..8).map(|n| format!("Many{n}")).collect();
        assert_eq!(families, expected, "a sorted search reads on after the sort values of the chunk's last match");
        assert!(warning(&sorted).is_none(), "nothing was cut: {sorted}");

        let unsorted = get("Patient?_count=10&_total=accurate")?;
        assert_eq!(unsorted["total"], total, "authentication {auth}, scope {scope:?}");
        assert_eq!(matches(&unsorted).len(), 8, "in the default order the next chunk is read: {unsorted}");
        assert!(warning(&unsorted).is_none(), "nothing was cut: {unsorted}");
    }
    Ok(())
}

#[test]
fn unsorted_pages_are_read_a_chunk_at_a_time_without_overlap_or_gaps() -> TestResult {
    // Chunks of 4 (the limit), pages of 3: the later pages read further chunks after the last id.
    let dir = temp_dir("search-chunks")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_SEARCH_MAX_RESULTS", "4")])?;
    let put = |id: &str| -> TestResult {
        let mut body = patient("Chunk");
        body["id"] = json!(id);
        let status = s.put(&format!("Patient/{id}"), &body)?.status;
        assert!(status == 200 || status == 201, "PUT Patient/{id}: {status}");
        Ok(())
    };
    for n in 0..12 {
        put(&format!("c{n:02}"))?;
    }
    let first = ok_json(s.get("Patient?family=chunk&_count=3")?)?;
    assert_eq!(matches(&first), ["c00", "c01", "c02"]);
    assert!(first.get("total").is_none(), "not known before every match is read: {first}");
    assert!(link(&s, &first, "last").is_none(), "the last page is not known yet");

    // Between pages: delete one not yet read, add one that sorts after what was read, and
    // change one already read.
    assert_eq!(s.delete("Patient/c07")?.status, 204);
    put("c05a")?;
    put("c01")?;

    let mut seen = matches(&first);
    let mut next = link(&s, &first, "next");
    let mut last_page = first;
    while let Some(path) = next {
        let page = ok_json(s.get(&path)?)?;
        assert!(link(&s, &page, "previous").is_some());
        seen.extend(matches(&page));
        next = link(&s, &page, "next");
        last_page = page;
    }
    let expected = ["c00", "c01", "c02", "c03", "c04", "c05", "c05a", "c06", "c08", "c09", "c10", "c11"];
    assert_eq!(seen, expected, "each resource once, in id order; the deleted one not read, the new one read");
    let last = link(&s, &last_page, "last").ok_or("the last page is known once every match was read")?;
    assert_eq!(matches(&ok_json(s.get(&last)?)?), ["c09", "c10", "c11"]);
    assert!(
        last_page["entry"].as_array().into_iter().flatten().all(|e| e["search"]["mode"] != "outcome"),
        "no warning: nothing was cut"
    );
    Ok(())
}

#[test]
fn a_search_broader_than_the_cosmos_key_bound_is_refused_whole() -> TestResult {
    // Cosmos DB cannot join documents: each clause first finds the keys of the resources it
    // matches, and a search whose clauses find more than `store.cosmos.max_search_keys` in all is
    // refused (400, not-supported, naming the setting) rather than sent as a query larger than
    // the service accepts. The other stores join in the database and have no such bound.
    let dir = temp_dir("search-keys")?;
    let s = Server::start_with(&dir, &[("FHIRGATE_COSMOS_MAX_SEARCH_KEYS", "3")])?;
    for n in 0..4 {
        assert_eq!(s.post("Patient", &patient(&format!("Broad{n}")))?.status, 201);
    }
    // Three values of one key each: within the bound on every store.
    let within = ok_json(s.get("Patient?family=broad0,broad1,broad2")?)?;
    assert_eq!(matches(&within).len(), 3, "{within}");
    let broad = s.get("Patient?family=broad")?;
    if fhirgate_e2e::backend() == "cosmos" {
        assert_eq!(broad.status, 400, "{}", broad.body);
        let issues = broad.outcome_issues()?;
        assert_eq!(issues[0]["code"], "not-supported", "{issues:?}");
        let diagnostics = issues[0]["diagnostics"].as_str().unwrap_or_default();
        assert!(diagnostics.contains("more than 3 resources"), "{issues:?}");
        assert!(diagnostics.contains("store.cosmos.max_search_keys"), "{issues:?}");
    } else {
        assert_eq!(matches(&ok_json(broad)?).len(), 4);
    }
    Ok(())
}

#[test]
fn capability_statement_lists_search() -> TestResult {
    let s = Server::start("search-metadata")?;
    let cs = ok_json(s.get("metadata")?)?;
    let resources = cs["rest"][0]["resource"].as_array().ok_or("no resources")?;
    let of = |t: &str| resources.iter().find(|r| r["type"] == t).cloned().unwrap_or(Value::Null);
    let patient = of("Patient");
    assert!(patient["interaction"].as_array().is_some_and(|i| i.iter().any(|x| x["code"] == "search-type")));
    let params = patient["searchParam"].as_array().ok_or("no searchParam")?;
    for name in ["family", "birthdate", "identifier", "organization", "_id", "_lastUpdated"] {
        assert!(params.iter().any(|p| p["name"] == name), "Patient lists `{name}`");
    }
    assert!(patient["searchRevInclude"].as_array().is_some_and(|r| r.iter().any(|x| x == "Observation:subject")));
    let location = of("Location");
    let unsupported = location["extension"].as_array().ok_or("no unsupported list")?;
    assert!(unsupported.iter().any(|e| e["valueString"].as_str().is_some_and(|v| v.starts_with("near:"))));
    assert!(!location["searchParam"].as_array().ok_or("no params")?.iter().any(|p| p["name"] == "near"));
    Ok(())
}

#[test]
fn includes_iterate_and_wildcards() -> TestResult {
    let s = Server::start("search-include")?;
    s.put("Organization/org", &json!({ "resourceType": "Organization", "id": "org", "name": "Acme" }))?;
    s.put(
        "Patient/p",
        &json!({ "resourceType": "Patient", "id": "p", "managingOrganization": { "reference": "Organization/org" } }),
    )?;
    s.put("Practitioner/doc", &json!({ "resourceType": "Practitioner", "id": "doc" }))?;
    let observation = json!({ "resourceType": "Observation", "id": "o", "status": "final", "code": { "text": "x" },
                              "subject": { "reference": "Patient/p" }, "performer": [{ "reference": "Practitioner/doc" }] });
    s.put("Observation/o", &observation)?;
    let included = |search: &str| -> TestResult<Vec<String>> {
        let bundle = ok_json(s.get(search)?)?;
        let list = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut found: Vec<String> = list
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .map(|e| {
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap_or(""),
                    e["resource"]["id"].as_str().unwrap_or("")
                )
            })
            .collect();
        found.sort();
        Ok(found)
    };
    assert_eq!(included("Observation?_id=o&_include=Observation:subject")?, ["Patient/p"]);
    assert_eq!(
        included("Observation?_id=o&_include=Observation:subject&_include:iterate=Patient:organization")?,
        ["Organization/org", "Patient/p"]
    );
    assert_eq!(included("Observation?_id=o&_include=Observation:*")?, ["Patient/p", "Practitioner/doc"]);
    assert_eq!(included("Observation?_id=o&_include=*")?, ["Patient/p", "Practitioner/doc"]);
    assert_eq!(included("Observation?_id=o&_include=Observation:subject:Group")?, Vec::<String>::new(), "target type");
    assert_eq!(
        included("Organization?_id=org&_revinclude=Patient:organization&_revinclude:iterate=Observation:subject")?,
        ["Observation/o", "Patient/p"]
    );
    Ok(())
}

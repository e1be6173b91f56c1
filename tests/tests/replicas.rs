//! Three gateway replicas on one PostgreSQL database, with a client that sends each request to
//! another replica: search and history paging with writes arriving meanwhile (nothing repeated,
//! skipped or lost), one replica killed mid-paging and its links followed on the others,
//! conditional creates racing across replicas (one resource), a token of one replica's issuer
//! accepted by all, and SMART launches through the authorization proxy whose every step goes to
//! another replica, each one-time value used once across them all. Runs in the PostgreSQL pass of `scripts/test.sh`; skipped (saying so)
//! on other stores.

use std::collections::BTreeSet;

use fhirgate_e2e::replicas::{PUBLIC_BASE, Replicas, skipped};
use fhirgate_e2e::smart::{self, REDIRECT};
use fhirgate_e2e::{Reply, Server, TestResult};
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
    let entries = |page: &Value| page["entry"].as_array().into_iter().flatten().map(key).collect::<Vec<_>>();
    let mut pages: Vec<Vec<String>> = vec![entries(&first)];
    let mut page = first;
    let mut n = 1;
    while let Some(next) = link(&page, "next") {
        assert!(!next.contains("_offset="), "the link carries its place sealed, not as an offset: {next}");
        // Writes from every replica between pages.
        r.nth(n + 1)?.put_resource(&patient(&format!("late{n}"), "History"))?;
        r.nth(n + 2)?.put_resource(&patient("h00", &format!("Changed{n}")))?;
        page = ok(r.nth(n)?.get(&next)?, "history page")?;
        assert_eq!(page["total"], 12, "the total of the snapshot");
        pages.push(entries(&page));
        n += 1;
    }
    let seen: Vec<String> = pages.concat();
    assert_eq!(pages.len(), 3);
    assert_eq!(seen.len(), 12, "every version of the snapshot: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 12, "none twice: {seen:?}");
    assert!(seen.iter().all(|k| k.starts_with('h') && k.ends_with("@\"W/\\\"1\\\"\"")), "none written later: {seen:?}");
    // And back, by `previous` links, on other replicas, with more writes between: the same pages.
    let mut back = vec![entries(&page)];
    while let Some(previous) = link(&page, "previous") {
        r.nth(n + 1)?.put_resource(&patient(&format!("later{n}"), "History"))?;
        page = ok(r.nth(n)?.get(&previous)?, "previous history page")?;
        assert_eq!(page["total"], 12, "the total of the snapshot");
        back.push(entries(&page));
        n += 1;
        assert!(back.len() <= pages.len(), "no more pages back than forwards: {back:?}");
    }
    back.reverse();
    assert_eq!(back, pages, "the pages read back are the pages read forwards");
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

/// Three replicas with the SMART proxy on, in front of `oidc`, sharing its signing key.
fn smart_replicas(name: &str, oidc: &fhirgate_e2e::oidc::Oidc) -> TestResult<Option<Replicas>> {
    Replicas::start_with(name, 3, |shared| {
        let key = shared.join("smart-proxy-key.p8");
        let config = smart::write_config(shared, oidc, "http://app.example", "")?;
        // The proxy's signing key, shared as the other keys are.
        let text = std::fs::read_to_string(&config)?.replace(
            "[smart.proxy]\nenabled = true\n",
            &format!("[smart.proxy]\nenabled = true\nkey_file = \"{}\"\n", key.display()),
        );
        if !text.contains("key_file") {
            return Err("the proxy's key file was not configured".into());
        }
        std::fs::write(&config, text)?;
        Ok(Some(config))
    })
}

/// GETs a URL a replica wrote (under the public base) on `server` instead: status, `Location`.
fn visit_on(server: &Server, url: &str) -> TestResult<(u16, Option<String>)> {
    let (status, location, _) = smart::visit(&server.url(&Replicas::path_of(url)))?;
    Ok((status, location))
}

#[test]
fn a_smart_launch_moves_between_replicas_and_each_value_works_once() -> TestResult {
    let oidc = smart::provider()?;
    let Some(r) = smart_replicas("replicas-smart", &oidc)? else {
        skipped("a_smart_launch_moves_between_replicas_and_each_value_works_once");
        return Ok(());
    };
    smart::seed(r.nth(0)?)?;
    // A practitioner who may read every record picks the patient: authorize on replica 0, the
    // provider's callback on 1, the picker on 2, the code redeemed on 0.
    oidc.set_user(json!({"fhirUser": "Practitioner/d1", "roles": ["globalReader"]}))?;
    let (verifier, challenge) = smart::pkce("replicas");
    let authorize = smart::authorize_url(r.nth(0)?, &challenge, &[("aud", PUBLIC_BASE)]);
    let (status, to_provider, body) = smart::visit(&authorize)?;
    let to_provider = to_provider.ok_or_else(|| format!("authorize answered {status}: {body}"))?;
    let (_, to_callback, _) = smart::visit(&to_provider)?;
    let callback = to_callback.ok_or("the provider sent no callback")?;
    assert!(callback.starts_with(&format!("{PUBLIC_BASE}/auth/callback?")), "{callback}");
    let (status, to_picker) = visit_on(r.nth(1)?, &callback)?;
    let picker = to_picker.ok_or_else(|| format!("the callback answered {status}"))?;
    assert!(picker.starts_with(&format!("{PUBLIC_BASE}/auth/pick?session=")), "{picker}");
    for replica in [2, 0] {
        assert_eq!(visit_on(r.nth(replica)?, &callback)?, (400, None), "the callback replayed on replica {replica}");
    }
    let (status, _, html) = smart::visit(&r.nth(2)?.url(&Replicas::path_of(&picker)))?;
    assert!(status == 200 && html.contains("name=\"patient\""), "the picker on another replica: {status} {html}");
    let session = fhirgate_e2e::oidc::form(picker.split_once('?').map_or("", |(_, q)| q))
        .remove("session")
        .ok_or("no session")?;
    let (status, back) = smart::choose(r.nth(2)?, &session, "p2")?;
    let back = back.ok_or_else(|| format!("the pick answered {status}"))?;
    assert_eq!(smart::choose(r.nth(1)?, &session, "p1")?, (400, None), "the picker session replayed elsewhere");
    let back = fhirgate_e2e::oidc::form(back.strip_prefix(&format!("{REDIRECT}?")).ok_or("not back to the app")?);
    let code = back.get("code").ok_or_else(|| format!("{back:?}"))?;
    let (status, token) = smart::redeem_code(r.nth(0)?, code, &verifier)?;
    assert_eq!((status, token["patient"].as_str()), (200, Some("p2")), "{token}");
    for replica in [1, 2] {
        let (status, again) = smart::redeem_code(r.nth(replica)?, code, &verifier)?;
        assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "replica {replica}: {again}");
        assert!(again.get("access_token").is_none());
    }
    // The proxy's token is good on every replica, for the picked patient only.
    let access = token["access_token"].as_str().ok_or("access_token")?;
    for replica in 0..3 {
        let server = r.nth(replica)?;
        assert_eq!(server.send_as(Some(access), "GET", "Observation/o2", None, &[])?.status, 200, "replica {replica}");
        assert_eq!(server.send_as(Some(access), "GET", "Observation/o1", None, &[])?.status, 404);
    }
    Ok(())
}

#[test]
fn an_ehr_launch_and_codes_race_across_replicas_and_work_once() -> TestResult {
    let oidc = smart::provider()?;
    let Some(r) = smart_replicas("replicas-smart-ehr", &oidc)? else {
        skipped("an_ehr_launch_and_codes_race_across_replicas_and_work_once");
        return Ok(());
    };
    smart::seed(r.nth(0)?)?;
    oidc.set_user(json!({"fhirUser": "Practitioner/d1"}))?;
    let ehr = r.nth(0)?.mint(&["--role", "ehr"])?;
    let made = smart::post_launch(r.nth(0)?, Some(&ehr), &json!({"patient": "p2"}))?;
    assert_eq!(made.status, 201, "{}", made.body);
    let launch = made.json()?["launch"].as_str().ok_or("launch")?.to_string();
    // Not as text, nor as base64 of it (a check for the two characters `p2` alone failed by
    // chance on the random ciphertext, about once in twenty runs).
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, launch.trim_end_matches('='))
            .unwrap_or_default();
    let decoded = String::from_utf8_lossy(&decoded);
    for shown in [launch.as_str(), decoded.as_ref()] {
        assert!(!shown.contains("patient") && !shown.contains("\"p2\""), "the launch context is readable in {shown}");
    }
    let (verifier, challenge) = smart::pkce("replicas-ehr");
    let url = |replica: usize| -> TestResult<String> {
        Ok(smart::authorize_url(r.nth(replica)?, &challenge, &[("aud", PUBLIC_BASE), ("launch", &launch)]))
    };
    let (status, to_provider, _) = smart::visit(&url(1)?)?;
    let to_provider = to_provider.ok_or_else(|| format!("authorize with the launch answered {status}"))?;
    assert!(!to_provider.starts_with(REDIRECT), "the launch is accepted on a replica that did not make it");
    let again = smart::follow(&url(2)?)?;
    assert_eq!(again.get("error").map(String::as_str), Some("invalid_request"), "reused elsewhere: {again:?}");
    assert!(!again.contains_key("code"));
    let (_, callback, _) = smart::visit(&to_provider)?;
    let (_, back) = visit_on(r.nth(2)?, &callback.ok_or("no callback")?)?;
    let back = fhirgate_e2e::oidc::form(
        back.ok_or("no redirect")?.strip_prefix(&format!("{REDIRECT}?")).ok_or("not the app")?,
    );
    let code = back.get("code").ok_or_else(|| format!("{back:?}"))?.clone();
    // The code sent to every replica at once: exactly one token.
    let servers = (0..3).map(|i| r.nth(i)).collect::<TestResult<Vec<_>>>()?;
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|server| {
                let (code, verifier) = (code.as_str(), verifier.as_str());
                scope.spawn(move || smart::redeem_code(server, code, verifier).map_err(|e| e.to_string()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a client thread panicked".to_owned())?)
            .collect::<Result<_, String>>()
    })?;
    let granted: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(granted.len(), 1, "one redemption wins: {answers:?}");
    assert_eq!(granted[0]["patient"], "p2", "the EHR's patient");
    assert!(answers.iter().all(|(status, body)| *status == 200 || body["error"] == "invalid_grant"), "{answers:?}");
    Ok(())
}

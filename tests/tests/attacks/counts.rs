//! Family 2: counts (contract points 2 and 3). Search totals (`_summary=count`,
//! `_total=accurate`, plain pages) count only what the attacker sees, alone and as batch and
//! transaction entries; type and system history give no total or exactly the number of entries
//! the attacker can list (`_count=0` included), never hidden versions; the history, vread and
//! read of a hidden resource answer exactly as for an id that does not exist.

use fhirgate_e2e::TestResult;

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Req, Via, oracle, send};
use super::world::{Hide, World, hidden_observation, own_body, visible_observation};

/// `FHIRGATE_E2E_STORE=remote`: a `_summary=count` answered 403 (refused, not counted).
fn remote_refuses_count(url: &str, status: u16) -> bool {
    fhirgate_e2e::backend() == "remote" && url.contains("_summary=count") && status == 403
}

pub fn run(scene: &Scene, world: &World) {
    for &hide in &world.hides {
        let way = hide.label();
        let code = format!("counted-{way}");
        let seeded = seed(scene, world, hide, &code);
        if let Err(e) = seeded {
            scene.case(format!("counts/{way}: seeding"), || Err(e));
            continue;
        }
        let visible = [format!("Observation/vis-n-{way}-1@1"), format!("Observation/vis-n-{way}-2@1")];
        for via in ALL_WAYS {
            let w = &world.attacker;
            let search = |what: &str, url: String, expected_total: u64, entries: Option<&[String]>| {
                scene.case(format!("counts/{way}/{via:?}: {what}"), || {
                    let sent = send(scene, w, &Req::get(&url), via)?;
                    if sent.bundle_refused(via) {
                        return Ok(());
                    }
                    // Through a remote target a count for a caller who sees only some resources
                    // is refused (GATEWAY.md): the remote's count would include the others.
                    if remote_refuses_count(&url, sent.answer.status) {
                        return Ok(());
                    }
                    ensure!(sent.answer.status == 200, "{url}: {:?}", sent.answer);
                    ensure!(
                        sent.answer.total.is_none_or(|t| t == expected_total),
                        "{url}: total {:?}, the attacker sees {expected_total}",
                        sent.answer.total
                    );
                    if via == Via::Alone && url.contains("_summary=count") {
                        ensure!(sent.answer.total == Some(expected_total), "{url}: total {:?}", sent.answer.total);
                    }
                    if let Some(expected) = entries {
                        ensure!(sent.answer.entries == expected, "{url}: entries {:?}", sent.answer.entries);
                    }
                    Ok(())
                });
            };
            search("_summary=count", format!("Observation?code=urn:attack|{code}&_summary=count"), 2, None);
            search("_total=accurate", format!("Observation?code=urn:attack|{code}&_total=accurate&_count=1"), 2, None);
            search("a plain page", format!("Observation?code=urn:attack|{code}"), 2, Some(&visible));
            search("Patient _summary=count", "Patient?family=Visiblefamily&_summary=count".into(), 1, None);

            for (what, base) in [("type history", "Observation/_history"), ("system history", "_history")] {
                for count in ["0", "1", "1000"] {
                    scene.case(format!("counts/{way}/{via:?}: {what} _count={count}"), || {
                        // The newest Observation version is the attacker's: a page of one that
                        // loses nothing to filtering must not keep a total that counts hidden ones.
                        let own =
                            Req::with("POST", "Observation", super::wire::Body::Resource(own_body(world, "newest")));
                        let made = send(scene, w, &own, Via::Alone)?;
                        ensure!(made.reply.status == 201, "creating: {} {}", made.reply.status, made.reply.body);
                        let listed = listed(scene, w, base)?;
                        let url = format!("{base}?_count={count}");
                        let sent = send(scene, w, &Req::get(&url), via)?;
                        if sent.bundle_refused(via) {
                            return Ok(());
                        }
                        ensure!(sent.answer.status == 200, "{url}: {:?}", sent.answer);
                        ensure!(
                            sent.answer.total.is_none_or(|t| t == listed),
                            "{url}: total {:?}, the attacker can list {listed}",
                            sent.answer.total
                        );
                        Ok(())
                    });
                }
            }

            // Hidden resources answer as ids that do not exist.
            let hidden = format!("Observation/hid-n-{way}-1");
            let deleted = format!("Observation/hid-n-{way}-del");
            let patient = format!("Patient/hid-p2-{way}");
            let pairs = [
                (
                    "instance history _count=0",
                    format!("{hidden}/_history?_count=0"),
                    "Observation/hid-none/_history?_count=0",
                ),
                ("instance history", format!("{hidden}/_history"), "Observation/hid-none/_history"),
                ("a deleted one's history", format!("{deleted}/_history"), "Observation/hid-none/_history"),
                (
                    "Patient history _count=0",
                    format!("{patient}/_history?_count=0"),
                    "Patient/hid-none/_history?_count=0",
                ),
                ("vread", format!("{hidden}/_history/1"), "Observation/hid-none/_history/1"),
                ("read", hidden.clone(), "Observation/hid-none"),
                ("read a deleted one", deleted.clone(), "Observation/hid-none"),
                ("read a Patient", patient.clone(), "Patient/hid-none"),
            ];
            for (what, true_url, false_url) in pairs {
                scene.case(format!("counts/{way}/{via:?}: {what} answers as a missing id"), || {
                    oracle(scene, w, &Req::get(&true_url), &Req::get(false_url), via, &[])
                });
            }
        }
    }
}

/// Two visible and three hidden Observations with `code`, one hidden with three versions, one
/// hidden deleted, and a hidden Patient named like the attacker's.
pub(super) fn seed(scene: &Scene, world: &World, hide: Hide, code: &str) -> TestResult {
    let way = hide.label();
    for i in 1..=2 {
        visible_observation(scene, world, &format!("vis-n-{way}-{i}"), code)?;
    }
    for i in 1..=3 {
        hidden_observation(scene, hide, &format!("hid-n-{way}-{i}"), code)?;
    }
    for _ in 0..2 {
        hidden_observation(scene, hide, &format!("hid-n-{way}-3"), code)?;
        let mut again = super::world::observation(&format!("hid-n-{way}-3"), code, &format!("Patient/hid-p2-{way}"));
        again["status"] = "amended".into();
        scene.seed_hidden(&hide.apply(again))?;
    }
    hidden_observation(scene, hide, &format!("hid-n-{way}-del"), code)?;
    let r = scene.s.send_as(Some(&scene.seer), "DELETE", &format!("Observation/hid-n-{way}-del"), None, &[])?;
    ensure!(r.status == 204 || r.status == 200, "deleting: {} {}", r.status, r.body);
    scene.seed_hidden(&hide.apply(serde_json::json!({ "resourceType": "Patient", "id": format!("hid-np-{way}"),
        "name": [{ "family": "Visiblefamily" }] })))?;
    Ok(())
}

/// How many entries `token` can list from a history, following `next` links.
fn listed(scene: &Scene, token: &str, base: &str) -> TestResult<u64> {
    let mut url = format!("{base}?_count=1000");
    let mut n = 0u64;
    for _ in 0..50 {
        let r = scene.s.send_as(Some(token), "GET", &url, None, &[])?;
        ensure!(r.status == 200, "{url}: {} {}", r.status, r.body);
        let page = r.json()?;
        n += page["entry"].as_array().map_or(0, Vec::len) as u64;
        let next = page["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next");
        match next.and_then(|l| l["url"].as_str()) {
            Some(next) => url = next.strip_prefix(&scene.s.base()).unwrap_or(next).trim_start_matches('/').to_string(),
            None => return Ok(n),
        }
    }
    Err("more than 50 pages of history".into())
}

//! Family 6: a restriction on a resource attribute (issue 24): the shipped example
//! `hiv-clinic.cedar` hides Observations coded with HIV test LOINC codes from everyone outside
//! the HIV clinic, on top of `microsoft-roles`. The attacker is a `globalWriter` (it may send
//! batch and transaction Bundles) who reads, searches, counts, includes, guesses through
//! criteria and writes its way towards those Observations, alone and as Bundle entries; each
//! answer must be what it would be if they did not exist, and they must stay unchanged.

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Body, Req, Via, oracle, send};

/// The server: `microsoft-roles` and the shipped `hiv-clinic.cedar`.
pub fn server() -> TestResult<Server> {
    let dir = temp_dir("attacks-codes")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples/hiv-clinic.cedar");
    std::fs::copy(shipped, policies.join("hiv-clinic.cedar"))?;
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

/// Sees everything: an administrator of the clinic.
pub fn seer(s: &Server) -> TestResult<String> {
    s.mint(&["--role", "globalAdmin", "--role", "hivClinician"])
}

const HIV: &str = "7917-8";

fn observation(id: &str, code: &str) -> Value {
    json!({ "resourceType": "Observation", "id": id, "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
            "subject": { "reference": "Patient/vis-code-p" } })
}

/// A body to create: without id, of another patient (so what it creates leaves the counts of
/// `vis-code-p` alone).
fn without_id(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove("id");
    }
    v["subject"] = json!({ "reference": "Patient/vis-code-scratch" });
    v
}

pub fn run(scene: &Scene, attacker: &str) {
    let seeded = (|| -> TestResult {
        scene.seed(&json!({ "resourceType": "Patient", "id": "vis-code-p", "name": [{ "family": "Codefamily" }] }))?;
        scene.seed(&observation("vis-code-glucose", "15074-8"))?;
        scene.seed_hidden(&observation("hid-code-hiv", HIV))?;
        // The same code without its system, and among other codings: hidden too.
        let mut bare = observation("hid-code-bare", HIV);
        bare["code"] = json!({ "coding": [{ "system": "urn:local", "code": "hiv-vl" }, { "code": "25836-8" }] });
        scene.seed_hidden(&bare)?;
        Ok(())
    })();
    if let Err(e) = seeded {
        scene.case("codes: seeding", || Err(e));
        return;
    }
    scene.case("codes: the clinic counts every one", || {
        let r = scene.s.send_as(Some(&scene.seer), "GET", "Observation?subject=Patient/vis-code-p", None, &[])?;
        // Listed, not counted: a remote refuses counts to any per-resource grant.
        let listed = r.json()?["entry"].as_array().map_or(0, Vec::len);
        ensure!(r.status == 200 && listed == 3, "{} {}", r.status, r.body);
        Ok(())
    });
    let before: Vec<(String, TestResult<Value>)> = ["Observation/hid-code-hiv", "Observation/hid-code-bare"]
        .iter()
        .map(|p| ((*p).to_string(), scene.snapshot(p)))
        .collect();
    for via in ALL_WAYS {
        reads(scene, attacker, via);
        counts(scene, attacker, via);
        guesses(scene, attacker, via);
        writes(scene, attacker, via);
    }
    for (path, snapshot) in before {
        scene.case(format!("codes: {path} unchanged"), || scene.assert_unchanged(&path, &snapshot?));
    }
}

/// Reads of a hidden Observation answer as for an id that does not exist.
fn reads(scene: &Scene, w: &str, via: Via) {
    for (what, hidden, missing) in [
        ("read", "Observation/hid-code-hiv", "Observation/hid-code-none"),
        ("read, bare code", "Observation/hid-code-bare", "Observation/hid-code-none"),
        ("vread", "Observation/hid-code-hiv/_history/1", "Observation/hid-code-none/_history/1"),
        ("history", "Observation/hid-code-hiv/_history", "Observation/hid-code-none/_history"),
    ] {
        scene.case(format!("codes/{via:?}: {what}"), || {
            oracle(scene, w, &Req::get(hidden), &Req::get(missing), via, &[])
        });
    }
}

/// Searches, counts, includes and history list and count only the visible Observation.
fn counts(scene: &Scene, w: &str, via: Via) {
    let visible = vec!["Observation/vis-code-glucose@1".to_string()];
    let with_patient = vec!["Observation/vis-code-glucose@1".to_string(), "Patient/vis-code-p@1".to_string()];
    for (what, url, total, entries) in [
        ("by code, _summary=count", format!("Observation?code={HIV}&_summary=count"), Some(0), None),
        (
            "by system|code, _total=accurate",
            format!("Observation?code=http://loinc.org|{HIV}&_total=accurate"),
            Some(0),
            Some(vec![]),
        ),
        (
            "by subject, _total=accurate",
            "Observation?subject=Patient/vis-code-p&_total=accurate".into(),
            Some(1),
            Some(visible.clone()),
        ),
        ("by subject, _summary=count", "Observation?subject=Patient/vis-code-p&_summary=count".into(), Some(1), None),
        (
            "by subject, one per page",
            "Observation?subject=Patient/vis-code-p&_count=1&_total=accurate".into(),
            Some(1),
            Some(visible.clone()),
        ),
        (
            "_revinclude",
            "Patient?_id=vis-code-p&_revinclude=Observation:subject".into(),
            None,
            Some(with_patient.clone()),
        ),
        (
            "_include",
            "Observation?subject=Patient/vis-code-p&_include=Observation:subject".into(),
            None,
            Some(with_patient),
        ),
        (
            "_include of a hidden one",
            "Observation?_id=hid-code-hiv&_include=Observation:subject&_total=accurate".into(),
            Some(0),
            Some(vec![]),
        ),
        ("compartment", "Patient/vis-code-p/Observation?_total=accurate".into(), Some(1), Some(visible.clone())),
    ] {
        scene.case(format!("codes/{via:?}: search {what}"), || {
            let sent = send(scene, w, &Req::get(&url), via)?;
            if sent.bundle_refused(via) {
                return Ok(());
            }
            // Through a remote target a count for a caller who sees only some resources is
            // refused: the remote's count would include the others.
            if fhirgate_e2e::backend() == "remote" && url.contains("_summary=count") && sent.answer.status == 403 {
                return Ok(());
            }
            ensure!(sent.answer.status == 200, "{url}: {:?}", sent.answer);
            if let Some(total) = total {
                ensure!(
                    sent.answer.total.is_none_or(|t| t == total),
                    "{url}: total {:?}, visible {total}",
                    sent.answer.total
                );
            }
            if let Some(entries) = &entries {
                // A remote's page is filtered after paging: it may hold fewer (never other) entries.
                let fewer =
                    fhirgate_e2e::backend() == "remote" && sent.answer.entries.iter().all(|e| entries.contains(e));
                ensure!(&sent.answer.entries == entries || fewer, "{url}: entries {:?}", sent.answer.entries);
            }
            Ok(())
        });
    }
    scene.case(format!("codes/{via:?}: type history"), || {
        let sent = send(scene, w, &Req::get("Observation/_history?_count=1000"), via)?;
        ensure!(sent.bundle_refused(via) || sent.answer.status == 200, "{:?}", sent.answer);
        Ok(())
    });
}

/// Criteria over the hidden code answer as the same criteria on a code nobody has.
fn guesses(scene: &Scene, w: &str, via: Via) {
    let body = without_id(observation("x", "15074-8"));
    for (what, true_req, false_req) in [
        (
            "_has by code",
            Req::get(format!("Patient?_has:Observation:subject:code={HIV}")),
            Req::get("Patient?_has:Observation:subject:code=0000-0"),
        ),
        (
            "conditional update by code",
            Req::with("PUT", format!("Observation?code={HIV}"), Body::Resource(body.clone())),
            Req::with("PUT", "Observation?code=0000-0", Body::Resource(body.clone())),
        ),
        (
            "conditional delete by code",
            Req::delete(format!("Observation?code=http://loinc.org|{HIV}")),
            Req::delete("Observation?code=http://loinc.org|0000-0"),
        ),
        (
            "conditional create by code",
            Req::create_if_none_exist("Observation", format!("code={HIV}"), body.clone()),
            Req::create_if_none_exist("Observation", "code=0000-0", body),
        ),
    ] {
        scene.case(format!("codes/{via:?}: {what}"), || {
            oracle(scene, w, &true_req, &false_req, via, &["Observation/vis-code-glucose"])
        });
    }
}

/// Writes that would store or replace an HIV result are refused.
fn writes(scene: &Scene, w: &str, via: Via) {
    let disguised = observation("hid-code-hiv", "15074-8");
    for (what, req) in [
        ("create one", Req::with("POST", "Observation", Body::Resource(without_id(observation("x", HIV))))),
        ("overwrite a hidden one", Req::with("PUT", "Observation/hid-code-hiv", Body::Resource(disguised))),
        (
            "patch a hidden one's code away",
            Req::with(
                "PATCH",
                "Observation/hid-code-hiv",
                Body::FhirPathPatch(
                    json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
                    { "name": "type", "valueCode": "replace" }, { "name": "path", "valueString": "Observation.code" },
                    { "name": "value", "valueCodeableConcept": { "coding": [{ "system": "http://loinc.org", "code": "15074-8" }] } }
                ] }] }),
                ),
            ),
        ),
        ("delete a hidden one", Req::delete("Observation/hid-code-hiv")),
        (
            "recode a visible one",
            Req::with("PUT", "Observation/vis-code-glucose", Body::Resource(observation("vis-code-glucose", HIV))),
        ),
    ] {
        scene.case(format!("codes/{via:?}: {what}"), || {
            let sent = send(scene, w, &req, via)?;
            if sent.bundle_refused(via) {
                return Ok(());
            }
            // A delete of a hidden resource answers as for a missing one (204 or 404), never
            // deleting it (checked at the end); anything else is refused.
            let refused = sent.answer.status == 403
                || (req.method == "DELETE" && matches!(sent.answer.status, 204 | 404))
                || (req.method == "PATCH" && sent.answer.status == 404);
            ensure!(refused, "{}: {:?}", req.describe(), sent.answer);
            Ok(())
        });
    }
}

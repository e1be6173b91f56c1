//! Family 3: criteria that look at other resources (contract point 4): chains, `_has`, chained
//! `If-None-Exist`, conditional delete/update/patch with a chain, and conditional references in
//! bundles. A guess that is true on hidden data must answer exactly as the same guess when false
//! (status, ids, total) and leave the attacker's view of its own data the same.

use std::cell::Cell;

use fhirgate_e2e::TestResult;
use serde_json::json;

use super::conditional::status_patch;
use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Body, Req, Via, oracle};
use super::world::{Hide, World, hidden_observation, observation, own_body};

pub fn run(scene: &Scene, world: &World) {
    let n = Cell::new(0u32);
    for &hide in &world.hides {
        let way = hide.label();
        if let Err(e) = seed(scene, world, hide) {
            scene.case(format!("criteria/{way}: seeding"), || Err(e));
            continue;
        }
        let secret = format!("Secret{way}");
        let family = format!("Hidden{way}");
        let mut searches = vec![
            (
                "Practitioner",
                "performer.name",
                format!("Observation?performer.name={secret}"),
                "Observation?performer.name=Wrongname".to_string(),
            ),
            (
                "Practitioner",
                "performer:Practitioner.family",
                format!("Observation?performer:Practitioner.family={secret}"),
                "Observation?performer:Practitioner.family=Wrongname".into(),
            ),
            (
                "Practitioner",
                "code and performer.name, _total=accurate",
                format!("Observation?code=urn:attack|crit-{way}&performer.name={secret}&_total=accurate"),
                format!("Observation?code=urn:attack|crit-{way}&performer.name=Wrongname&_total=accurate"),
            ),
            (
                "Practitioner",
                "general-practitioner.name _summary=count",
                format!("Patient?general-practitioner.name={secret}&_summary=count"),
                "Patient?general-practitioner.name=Wrongname&_summary=count".into(),
            ),
            (
                "Practitioner",
                "general-practitioner.name",
                format!("Patient?general-practitioner.name={secret}"),
                "Patient?general-practitioner.name=Wrongname".into(),
            ),
            (
                "Observation",
                "_has",
                format!("Patient?_has:Observation:focus:code=urn:attack|has-{way}"),
                "Patient?_has:Observation:focus:code=urn:attack|has-wrong".into(),
            ),
            (
                "Observation",
                "_has _summary=count",
                format!("Patient?_has:Observation:focus:code=urn:attack|has-{way}&_summary=count"),
                "Patient?_has:Observation:focus:code=urn:attack|has-wrong&_summary=count".into(),
            ),
        ];
        if !matches!(hide, Hide::Compartment) {
            searches.push((
                "Patient",
                "subject.family",
                format!("Observation?subject.family={family}"),
                "Observation?subject.family=Wrongfamily".into(),
            ));
            searches.push((
                "Patient",
                "subject:Patient.family _summary=count",
                format!("Observation?subject:Patient.family={family}&_summary=count"),
                "Observation?subject:Patient.family=Wrongfamily&_summary=count".into(),
            ));
        }
        let attackers = world.attackers();
        for via in ALL_WAYS {
            for &(who, token, sees) in &attackers {
                // A criterion is an oracle only over a type the attacker does not fully see.
                for (_, what, true_url, false_url) in searches.iter().filter(|s| !sees.contains(&s.0)) {
                    scene.case(format!("criteria/{way}/{via:?}/{who}: {what}"), || {
                        oracle(scene, token, &Req::get(true_url), &Req::get(false_url), via, &[])
                    });
                    if via == Via::Alone {
                        scene.case(format!("criteria/{way}/POST _search/{who}: {what}"), || {
                            oracle(scene, token, &form(true_url), &form(false_url), via, &[])
                        });
                    }
                }
            }
            // Writes whose criteria chain through hidden data, each on a fresh visible target.
            let writes: [(&str, &dyn Fn(String) -> Req); 4] = [
                ("chained If-None-Exist", &|c| Req::create_if_none_exist("Observation", c, own_body(world, "made"))),
                ("conditional delete with a chain", &|c| Req::delete(format!("Observation?{c}"))),
                ("conditional update with a chain", &|c| {
                    Req::with("PUT", format!("Observation?{c}"), Body::Resource(own_body(world, "put")))
                }),
                ("conditional patch with a chain", &|c| {
                    Req::with("PATCH", format!("Observation?{c}"), Body::FhirPathPatch(status_patch()))
                }),
            ];
            for (what, make) in writes {
                n.set(n.get() + 1);
                let id = format!("vis-kw{}", n.get());
                scene.case(format!("criteria/{way}/{via:?}: {what}"), || {
                    let mut target = observation(&id, &id, &format!("Patient/{}", world.own_patient));
                    target["performer"] = json!([{ "reference": format!("Practitioner/hid-doc-{way}") }]);
                    scene.seed(&target)?;
                    let criteria = |name: &str| format!("code=urn:attack|{id}&performer.name={name}");
                    let probe = format!("Observation/{id}");
                    oracle(
                        scene,
                        &world.attacker,
                        &make(criteria(&secret)),
                        &make(criteria("Wrongname")),
                        via,
                        &[&probe],
                    )
                });
            }
            if via != Via::Alone {
                let references = [
                    ("subject", format!("Patient?family={family}"), "Patient?family=Wrongfamily".to_string()),
                    ("subject by _id", format!("Patient?_id=hid-p2-{way}"), "Patient?_id=hid-none".into()),
                    ("performer", format!("Practitioner?name={secret}"), "Practitioner?name=Wrongname".into()),
                ];
                for (field, true_ref, false_ref) in references {
                    scene.case(format!("criteria/{way}/{via:?}: conditional reference in {field}"), || {
                        let make = |reference: &str| {
                            let mut body = own_body(world, "referring");
                            if field == "performer" {
                                body["performer"] = json!([{ "reference": reference }]);
                            } else {
                                body["subject"] = json!({ "reference": reference });
                            }
                            Req::with("POST", "Observation", Body::Resource(body))
                        };
                        oracle(scene, &world.attacker, &make(&true_ref), &make(&false_ref), via, &[])
                    });
                }
            }
        }
    }
}

/// `GET Type?query` as `POST Type/_search` with a form body.
fn form(url: &str) -> Req {
    let (kind, query) = url.split_once('?').unwrap_or((url, ""));
    Req::with("POST", format!("{kind}/_search"), Body::Form(query.to_string()))
}

/// A visible Observation performed by the hidden practitioner (`vis-k-<way>`, code
/// `crit-<way>`); a hidden Observation whose `focus` is the attacker's patient (`hid-k-<way>`,
/// code `has-<way>`); in the tenant world, a visible Observation about the hidden patient.
fn seed(scene: &Scene, world: &World, hide: Hide) -> TestResult {
    let way = hide.label();
    let mut visible =
        observation(&format!("vis-k-{way}"), &format!("crit-{way}"), &format!("Patient/{}", world.own_patient));
    visible["performer"] = json!([{ "reference": format!("Practitioner/hid-doc-{way}") }]);
    scene.seed(&visible)?;
    let mut focused = hidden_observation(scene, hide, &format!("hid-k-{way}"), &format!("has-{way}"))?;
    focused["focus"] = json!([{ "reference": format!("Patient/{}", world.own_patient) }]);
    scene.seed_hidden(&focused)?;
    if !matches!(hide, Hide::Compartment) {
        let about = observation(&format!("vis-ks-{way}"), &format!("about-{way}"), &format!("Patient/hid-p2-{way}"));
        let stored = scene.seed(&about)?;
        ensure!(stored["id"] == format!("vis-ks-{way}"), "seeding vis-ks: {stored}");
    }
    Ok(())
}

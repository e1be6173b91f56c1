//! Family 4: PATCH decided on the patched result (contract point 5). A JSON Patch or FHIRPath
//! Patch of the attacker's own Observation whose result would leave the attacker's reach (moved to
//! another patient, tagged with another tenant, labelled restricted) is refused and changes
//! nothing: by id and conditional, alone and as batch and transaction entries.

use std::cell::Cell;

use fhirgate_e2e::TestResult;
use serde_json::{Value, json};

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Body, Req, Via, send};
use super::world::{Hide, World, visible_observation};

pub fn run(scene: &Scene, world: &World) {
    let n = Cell::new(0u32);
    for &hide in &world.hides {
        let (json_patch, fhirpath_patch) = moves(hide);
        for via in ALL_WAYS {
            for (kind, body) in [
                ("JSON Patch", Body::JsonPatch(json_patch.clone())),
                ("FHIRPath Patch", Body::FhirPathPatch(fhirpath_patch.clone())),
            ] {
                for conditional in [false, true] {
                    n.set(n.get() + 1);
                    let id = format!("vis-m{}", n.get());
                    let how = if conditional { "conditional " } else { "" };
                    scene.case(format!("patch/{}/{via:?}: {how}{kind} moving it out of reach", hide.label()), || {
                        let before = visible_observation(scene, world, &id, &id)?;
                        let before = scene.snapshot(&format!("Observation/{id}")).unwrap_or(before);
                        let url =
                            if conditional { format!("Observation?_id={id}") } else { format!("Observation/{id}") };
                        let sent = send(scene, &world.attacker, &Req::with("PATCH", url, body.clone()), via)?;
                        ensure!(!sent.answer.ok(), "answered {:?}", sent.answer);
                        scene.assert_unchanged(&format!("Observation/{id}"), &before)?;
                        // The refusal is about the result: the same patch is valid for the seer.
                        let by_id = Req::with("PATCH", format!("Observation/{id}"), body.clone());
                        let valid = send_as_seer(scene, &by_id)?;
                        ensure!(valid.ok(), "the patch itself is broken: the seer got {valid:?}");
                        Ok(())
                    });
                }
            }
        }
    }
    // Controls: a patch whose result stays within reach works, so the refusals above are about
    // the result. (A batch takes FHIRPath Patch only: its JSON Patch entries answer 400 for any
    // result, which makes those cases above hold trivially.)
    scene.case("patch: a patch that stays within reach works", || {
        for via in ALL_WAYS {
            let id = format!("vis-m-ok-{via:?}").to_lowercase();
            visible_observation(scene, world, &id, &id)?;
            let body = Body::FhirPathPatch(super::conditional::status_patch());
            let sent = send(scene, &world.attacker, &Req::with("PATCH", format!("Observation/{id}"), body), via)?;
            ensure!(sent.answer.ok() || sent.bundle_refused(via), "{via:?}: {:?} {}", sent.answer, sent.reply.body);
        }
        Ok(())
    });
}

/// Sends a request alone as the seer (no leak check: the seer sees everything).
fn send_as_seer(scene: &Scene, req: &Req) -> TestResult<super::wire::Answer> {
    let seer = Scene::new(scene.name, scene.s, scene.seer.clone());
    Ok(send(&seer, &scene.seer, req, Via::Alone)?.answer)
}

/// The JSON Patch and the FHIRPath Patch that take an Observation out of reach.
fn moves(hide: Hide) -> (Value, Value) {
    let fhirpath = |kind: &str, path: &str, name: Option<&str>, value: Value| {
        let mut parts =
            vec![json!({ "name": "type", "valueCode": kind }), json!({ "name": "path", "valueString": path })];
        if let Some(name) = name {
            parts.push(json!({ "name": "name", "valueString": name }));
        }
        parts.push(value);
        json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": parts }] })
    };
    match hide {
        Hide::Compartment => {
            let to = "Patient/hid-p2-compartment";
            (
                json!([{ "op": "replace", "path": "/subject/reference", "value": to }]),
                fhirpath(
                    "replace",
                    "Observation.subject",
                    None,
                    json!({ "name": "value", "valueReference": { "reference": to } }),
                ),
            )
        }
        Hide::Tenant => {
            let tag = json!({ "system": "urn:fhirgate:tenant", "code": "tB" });
            (
                json!([{ "op": "add", "path": "/meta/tag", "value": [tag] }]),
                fhirpath("add", "Observation.meta", Some("tag"), json!({ "name": "value", "valueCoding": tag })),
            )
        }
        Hide::Restricted => {
            let label = json!({ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" });
            (
                json!([{ "op": "add", "path": "/meta/security", "value": [label] }]),
                fhirpath("add", "Observation.meta", Some("security"), json!({ "name": "value", "valueCoding": label })),
            )
        }
    }
}

//! Family 1: conditional create, update, patch and delete whose criteria match only hidden
//! resources (contract point 1), alone and as batch and transaction entries. Each case aims at a
//! fresh hidden Observation; the criteria that match it must answer exactly as criteria that
//! match nothing, and the hidden Observation must stay as it was (content, version, lastUpdated).

use std::cell::Cell;

use fhirgate_e2e::TestResult;
use serde_json::json;

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Body, Req, Via, oracle, send};
use super::world::{Hide, World, hidden_observation, own_body};

pub fn run(scene: &Scene, world: &World) {
    let n = Cell::new(0u32);
    for &hide in &world.hides {
        for via in ALL_WAYS {
            let case = |what: &str, attack: &dyn Fn(&str, &str) -> TestResult| {
                n.set(n.get() + 1);
                let id = format!("hid-c{}", n.get());
                let code = format!("c{}", n.get());
                scene.case(format!("conditional/{}/{via:?}: {what}", hide.label()), || {
                    let before = hidden_observation(scene, hide, &id, &code)?;
                    let path = format!("Observation/{id}");
                    attack(&id, &code)?;
                    scene.assert_unchanged(&path, &before)
                });
            };
            let nothing = |code: &str| format!("code=urn:attack|nothing-{code}");
            let guess = |criteria_true: String, criteria_false: String, make: &dyn Fn(String) -> Req| {
                oracle(scene, &world.attacker, &make(criteria_true), &make(criteria_false), via, &[])
            };

            // Create with If-None-Exist: the hidden match is never returned; a new one is made.
            for (label, criteria) in [
                ("_id", "_id={id}"),
                ("code", "code=urn:attack|{code}"),
                ("subject", "subject={subject}&code=urn:attack|{code}"),
            ] {
                case(&format!("create If-None-Exist {label}"), &|id, code| {
                    let make = |c: String| Req::create_if_none_exist("Observation", c, own_body(world, "made"));
                    let criteria = fill(criteria, id, code, hide);
                    guess(criteria, nothing(code), &make)
                });
            }
            // Conditional patch: 404 as for criteria matching nothing.
            let patches: [(&str, &str, Body); 3] = [
                ("empty JSON Patch by _id", "_id={id}", Body::JsonPatch(json!([]))),
                (
                    "JSON Patch by code",
                    "code=urn:attack|{code}",
                    Body::JsonPatch(json!([{ "op": "replace", "path": "/status", "value": "amended" }])),
                ),
                ("FHIRPath Patch by _id", "_id={id}", Body::FhirPathPatch(status_patch())),
            ];
            for (label, criteria, body) in patches {
                case(&format!("patch {label}"), &|id, code| {
                    let make = |c: String| Req::with("PATCH", format!("Observation?{c}"), body.clone());
                    guess(fill(criteria, id, code, hide), nothing(code), &make)
                });
            }
            // Conditional update without an id in the body: creates as if nothing matched.
            for (label, criteria) in [("_id", "_id={id}"), ("code", "code=urn:attack|{code}")] {
                case(&format!("update {label}"), &|id, code| {
                    let make = |c: String| {
                        Req::with("PUT", format!("Observation?{c}"), Body::Resource(own_body(world, "put")))
                    };
                    guess(fill(criteria, id, code, hide), nothing(code), &make)
                });
            }
            // Conditional update whose body names the hidden id: refused, nothing changes.
            case("update with the hidden id in the body", &|id, _code| {
                let mut body = own_body(world, "overwrite");
                body["id"] = json!(id);
                let sent = send(
                    scene,
                    &world.attacker,
                    &Req::with("PUT", format!("Observation?_id={id}"), Body::Resource(body)),
                    via,
                )?;
                ensure!(!sent.answer.ok(), "answered {:?}", sent.answer);
                Ok(())
            });
            // Conditional delete: 204 as for criteria matching nothing; nothing hidden deleted.
            for (label, criteria) in [
                ("_id", "_id={id}"),
                ("code", "code=urn:attack|{code}"),
                ("subject", "subject={subject}&code=urn:attack|{code}"),
            ] {
                case(&format!("delete {label}"), &|id, code| {
                    let make = |c: String| Req::delete(format!("Observation?{c}"));
                    guess(fill(criteria, id, code, hide), nothing(code), &make)
                });
            }
        }
    }
    // The attacks above are meaningful only if the same interactions work on visible data.
    scene.case("conditional: the same interactions work on the attacker's own data", || controls(scene, world));
}

/// Criteria with `{id}`, `{code}` and `{subject}` (the hidden patient) filled in. The subject
/// criteria name the hidden code too: the criteria suite keeps a visible Observation about the
/// hidden patient, which such criteria may rightly match.
fn fill(template: &str, id: &str, code: &str, hide: Hide) -> String {
    template
        .replace("{id}", id)
        .replace("{code}", code)
        .replace("{subject}", &format!("Patient/hid-p2-{}", hide.label()))
}

/// A FHIRPath Patch replacing `Observation.status` with `amended`.
pub fn status_patch() -> serde_json::Value {
    json!({ "resourceType": "Parameters", "parameter": [{ "name": "operation", "part": [
        { "name": "type", "valueCode": "replace" },
        { "name": "path", "valueString": "Observation.status" },
        { "name": "value", "valueCode": "amended" } ] }] })
}

/// Positive controls: conditional create finds, patch patches and delete deletes the attacker's
/// own Observation.
fn controls(scene: &Scene, world: &World) -> TestResult {
    let w = &world.attacker;
    let created =
        send(scene, w, &Req::with("POST", "Observation", Body::Resource(own_body(world, "control"))), Via::Alone)?;
    ensure!(created.reply.status == 201, "create: {} {}", created.reply.status, created.reply.body);
    let again = send(
        scene,
        w,
        &Req::create_if_none_exist("Observation", "code=urn:attack|control", own_body(world, "control")),
        Via::Alone,
    )?;
    ensure!(again.reply.status == 200, "If-None-Exist on own data: {} {}", again.reply.status, again.reply.body);
    let patched = send(
        scene,
        w,
        &Req::with("PATCH", "Observation?code=urn:attack|control", Body::FhirPathPatch(status_patch())),
        Via::Alone,
    )?;
    ensure!(
        patched.reply.status == 200,
        "conditional patch on own data: {} {}",
        patched.reply.status,
        patched.reply.body
    );
    let deleted = send(scene, w, &Req::delete("Observation?code=urn:attack|control"), Via::Alone)?;
    ensure!(deleted.answer.ok(), "conditional delete on own data: {:?}", deleted.answer);
    // A plain search (a count may be refused to a caller who sees only some resources).
    let gone = send(scene, w, &Req::get("Observation?code=urn:attack|control"), Via::Alone)?;
    ensure!(gone.answer.status == 200 && gone.answer.entries.is_empty(), "deleted: {:?}", gone.answer);
    Ok(())
}

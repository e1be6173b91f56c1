//! Family 6, regression guards for what holds already (contract point 6): reads, searches,
//! compartments, `_include`, `_revinclude`, `_type` system searches and history never show a
//! hidden resource, alone or as bundle entries. And family 5's one attack that belongs here: the
//! search chain thousands of levels deep sent by a token that may only read its own Observations
//! (contract point 7) is a 400, and the server still serves.

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Req, send};
use super::world::World;

pub fn run(scene: &Scene, world: &World) {
    let attackers = world.attackers();
    for &hide in &world.hides {
        let way = hide.label();
        let own = world.own_patient;
        let urls = [
            format!("Observation/hid-k-{way}"),
            format!("Observation/hid-k-{way}?_summary=true"),
            format!("Observation/hid-k-{way}?_elements=status"),
            format!("Observation?_id=hid-k-{way}"),
            "Observation?_count=1000".to_string(),
            format!("Patient/{own}/Observation?_count=1000"),
            format!("Patient/hid-p2-{way}/Observation"),
            format!("Patient/hid-p2-{way}/$everything"),
            "Observation?_include=Observation:performer&_count=1000".to_string(),
            format!("Patient?_id={own}&_include=Patient:general-practitioner"),
            format!("Patient?_id={own}&_revinclude=Observation:focus"),
            "Patient?_revinclude=Observation:subject&_count=1000".to_string(),
            format!("Practitioner?name=Secret{way}"),
            "?_type=Observation,Patient,Practitioner&_count=1000".to_string(),
            "_history?_count=1000".to_string(),
            "Observation/_history?_count=1000".to_string(),
            "Practitioner/_history".to_string(),
        ];
        for via in ALL_WAYS {
            for &(who, token, _) in &attackers {
                for url in &urls {
                    scene.case(format!("guard/{way}/{via:?}/{who}: GET {url}"), || {
                        let sent = send(scene, token, &Req::get(url), via)?;
                        ensure!(sent.reply.status < 500 && sent.answer.status < 500, "{url}: {:?}", sent.answer);
                        Ok(())
                    });
                }
            }
        }
    }
}

/// The 21 KB chain of the issue, and a shorter one still beyond any sensible depth, from a token
/// holding only `patient/Observation.rs`: 400 OperationOutcome each. Run last: on a server that
/// overflows its stack nothing after it could run.
pub fn deep_chain(scene: &Scene, low: &str) {
    for levels in [50usize, 3000] {
        scene.case(format!("deep chain: {levels} levels by a patient/Observation.rs token"), || {
            let url = format!("Observation?subject:Patient.organization{}.name=x", ".partof".repeat(levels - 2));
            let r = scene.s.send_as(Some(low), "GET", &url, None, &[])?;
            ensure!(r.status == 400, "{levels} levels: {} {}", r.status, super::scene::clip(&r.body));
            ensure!(!r.outcome_issues()?.is_empty(), "an OperationOutcome");
            Ok(())
        });
    }
}

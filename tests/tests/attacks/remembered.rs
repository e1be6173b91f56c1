//! Family 8: remembered decisions (issue 18: data-level decisions are remembered per resource
//! content). An Observation the attacker has read while it was visible, then changed by the
//! seer so that it is hidden at the same id, answers at once as an id that does not exist, and
//! no search shows it: alone and as batch and transaction entries. A decision remembered for one
//! content never answers for another.

use fhirgate_e2e::TestResult;

use super::scene::{Scene, ensure};
use super::wire::{ALL_WAYS, Req, oracle, send};
use super::world::{World, hidden_observation, visible_observation};

pub fn run(scene: &Scene, world: &World) {
    for &hide in &world.hides {
        let way = hide.label();
        for via in ALL_WAYS {
            let name = format!("remembered/{way}/{via:?}: read while visible, hidden since");
            scene.case(name, || -> TestResult {
                let attacker = &world.attacker;
                let id = format!("vis-r-{way}-{}", format!("{via:?}").to_lowercase());
                let code = format!("remembered-{way}");
                let path = format!("Observation/{id}");
                visible_observation(scene, world, &id, &code)?;
                // Twice: the second answer is the remembered decision's.
                for _ in 0..2 {
                    let seen = send(scene, attacker, &Req::get(&path), via)?;
                    if seen.bundle_refused(via) {
                        return Ok(());
                    }
                    ensure!(seen.answer.status == 200, "{path} while visible: {:?}", seen.answer);
                }
                hidden_observation(scene, hide, &id, &code)?;
                oracle(scene, attacker, &Req::get(&path), &Req::get("Observation/hid-none"), via, &[])?;
                let search = send(scene, attacker, &Req::get(format!("Observation?code=urn:attack|{code}")), via)?;
                ensure!(search.answer.entries.is_empty(), "the search still lists {:?}", search.answer.entries);
                Ok(())
            });
        }
    }
}

//! End-to-end: the attack suite of issue 16, through the real binary, on each store. Attackers
//! with tokens of the shipped policy sets try to see, change, count or learn resources hidden from
//! them: conditional interactions, counts and history, criteria that look at other resources,
//! PATCH results that leave their reach, page links followed both ways or taken from another
//! client, resources read while visible and hidden since, a chain deep enough to overflow a
//! stack, and the
//! reads, searches and includes that already hold. Every attack is sent alone and as a batch and
//! a transaction entry, and after each the server must answer `GET /health`.
//!
//! One server per policy configuration and way of hiding (`attacks/world.rs`), the three running
//! in parallel; each attack is a case of that run (`attacks/scene.rs`): all run, and the test
//! fails listing every attack that worked.

#[path = "attacks/codes.rs"]
mod codes;
#[path = "attacks/conditional.rs"]
mod conditional;
#[path = "attacks/counts.rs"]
mod counts;
#[path = "attacks/criteria.rs"]
mod criteria;
#[path = "attacks/guards.rs"]
mod guards;
#[path = "attacks/paging.rs"]
mod paging;
#[path = "attacks/patch_moves.rs"]
mod patch_moves;
#[path = "attacks/remembered.rs"]
mod remembered;
#[path = "attacks/scene.rs"]
mod scene;
#[path = "attacks/wire.rs"]
mod wire;
#[path = "attacks/world.rs"]
mod world;

use fhirgate_e2e::TestResult;

use scene::Scene;
use world::World;

/// The families, in an order where an attack that works today (a hidden resource deleted or
/// changed) cannot disturb a later family: each seeds its own targets.
fn run_families(scene: &Scene, world: &World) -> TestResult {
    if let Err(e) = world::seed_base(scene, world) {
        scene.case("seeding", || Err(e));
        return Ok(());
    }
    counts::run(scene, world);
    criteria::run(scene, world);
    guards::run(scene, world);
    patch_moves::run(scene, world);
    conditional::run(scene, world);
    paging::run(scene, world);
    remembered::run(scene, world);
    Ok(())
}

/// The default policy sets (`microsoft-roles` + `smart`), a SMART patient token as attacker.
#[test]
fn smart_patient_tokens_reach_nothing_outside_their_compartment() -> TestResult {
    let s = world::smart_server()?;
    let scene = Scene::new("smart", &s, s.token.clone().ok_or("no admin token")?);
    let world = world::smart_world(&s)?;
    run_families(&scene, &world)?;
    let low = s.mint(&["--scope", "patient/Observation.rs", "--patient", world.own_patient])?;
    guards::deep_chain(&scene, &low);
    scene.finish()
}

/// `microsoft-roles` with the example code restriction (`hiv-clinic.cedar`, a policy on a
/// search-parameter attribute): a `globalWriter` outside the clinic as attacker; hidden are the
/// Observations coded as HIV tests.
#[test]
fn code_restrictions_hold_for_bundle_writers() -> TestResult {
    let s = codes::server()?;
    let scene = Scene::new("codes", &s, codes::seer(&s)?);
    let attacker = s.mint(&["--role", "globalWriter"])?;
    codes::run(&scene, &attacker);
    scene.finish()
}

/// `microsoft-roles` with the example forbids on tenants and restricted resources: a
/// `globalWriter` of tenant `tA`, who may send batch and transaction Bundles, as attacker;
/// hidden are the resources of tenant `tB`.
#[test]
fn tenant_isolation_holds_for_bundle_writers() -> TestResult {
    forbids_hold("tenant", world::Hide::Tenant)
}

/// As above; hidden are the resources labelled restricted.
#[test]
fn restricted_labels_hold_for_bundle_writers() -> TestResult {
    forbids_hold("restricted", world::Hide::Restricted)
}

fn forbids_hold(name: &'static str, hide: world::Hide) -> TestResult {
    let s = world::tenant_server(&format!("attacks-{name}"))?;
    let scene = Scene::new(name, &s, world::tenant_seer(&s)?);
    let world = world::tenant_world(&s, hide)?;
    run_families(&scene, &world)?;
    scene.finish()
}

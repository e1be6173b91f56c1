//! The two policy configurations the attacks run under and the data they hide, in one shape:
//! an attacker token, the ways a resource is hidden from it, and builders for the resources the
//! families seed (ids `hid-*` for hidden ones, `vis-*` for ones the attacker sees).
//!
//! - `smart`: the default sets (`microsoft-roles` + `smart`); the attacker is a SMART patient
//!   token for `vis-p1` (`patient/*.rs patient/Observation.cruds`): anything outside that
//!   patient's compartment is hidden (another patient's resources, every Practitioner).
//! - `tenant`: `microsoft-roles` with the shipped example forbids `tenant-isolation` and
//!   `restricted` (not the whole `examples` set: its read-only hours would make writes depend on
//!   the time of day); the attacker is a `globalWriter` of tenant `tA`, who may send batch and
//!   transaction Bundles; hidden are resources tagged tenant `tB` and resources labelled
//!   restricted (`R`).

use fhirgate_e2e::{Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::scene::Scene;

/// How a resource is hidden from the attacker.
#[derive(Clone, Copy, Debug)]
pub enum Hide {
    /// In another patient's compartment (the `smart` world: subject `Patient/hid-p2`).
    Compartment,
    /// Tagged with tenant `tB`.
    Tenant,
    /// Labelled restricted (meta.security `R`).
    Restricted,
}

impl World {
    /// The main attacker and the others: (label, token, types seen in full).
    pub fn attackers(&self) -> Vec<(&'static str, &str, &[&'static str])> {
        std::iter::once(("attacker", self.attacker.as_str(), &[][..]))
            .chain(self.others.iter().map(|o| (o.label, o.token.as_str(), o.sees.as_slice())))
            .collect()
    }
}

impl Hide {
    /// Applies the hiding to a resource.
    pub fn apply(self, mut resource: Value) -> Value {
        match self {
            Hide::Compartment => {}
            Hide::Tenant => resource["meta"] = json!({ "tag": [{ "system": "urn:fhirgate:tenant", "code": "tB" }] }),
            Hide::Restricted => {
                resource["meta"] = json!({ "security": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" }] });
            }
        }
        resource
    }

    pub fn label(self) -> &'static str {
        match self {
            Hide::Compartment => "compartment",
            Hide::Tenant => "tenant",
            Hide::Restricted => "restricted",
        }
    }
}

/// An attacker that only reads and searches.
pub struct Other {
    pub label: &'static str,
    pub token: String,
    /// Types of which it sees every resource, hidden from the main attacker or not.
    pub sees: Vec<&'static str>,
}

pub struct World {
    /// May read, search, create, update, patch and delete Observations, read and search Patients.
    pub attacker: String,
    /// Other attackers, for searches.
    pub others: Vec<Other>,
    pub hides: Vec<Hide>,
    /// The attacker's own patient, visible to it.
    pub own_patient: &'static str,
}

/// The `smart` world's server.
pub fn smart_server() -> TestResult<Server> {
    Server::start("attacks-smart")
}

/// The `tenant` world's server.
pub fn tenant_server(name: &str) -> TestResult<Server> {
    let dir = temp_dir(name)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    for file in ["tenant-isolation.cedar", "restricted.cedar"] {
        std::fs::copy(shipped.join(file), policies.join(file))?;
    }
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

/// The seer of the `tenant` world: an admin of tenant `tB` who may see restricted resources.
pub fn tenant_seer(s: &Server) -> TestResult<String> {
    s.mint(&["--role", "globalAdmin", "--role", "restrictedReader", "--tenant", "tB"])
}

pub fn smart_world(s: &Server) -> TestResult<World> {
    Ok(World {
        attacker: s.mint(&["--scope", "patient/*.rs patient/Observation.cruds", "--patient", "vis-p1"])?,
        others: vec![Other {
            label: "user scopes without Practitioner",
            token: s.mint(&["--scope", "user/Observation.rs user/Patient.rs"])?,
            sees: vec!["Observation", "Patient"],
        }],
        hides: vec![Hide::Compartment],
        own_patient: "vis-p1",
    })
}

/// The `tenant` world hiding resources one way (a server each, so that the two run in parallel).
pub fn tenant_world(s: &Server, hide: Hide) -> TestResult<World> {
    Ok(World {
        attacker: s.mint(&["--role", "globalWriter", "--tenant", "tA"])?,
        others: vec![Other {
            label: "globalReader of tA",
            token: s.mint(&["--role", "globalReader", "--tenant", "tA"])?,
            sees: vec![],
        }],
        hides: vec![hide],
        own_patient: "vis-p1",
    })
}

/// The resources every family relies on: the attacker's patient `vis-p1` (whose general
/// practitioner is the hidden `hid-doc-*`), and per way of hiding the hidden patient
/// `hid-p2-<way>` and practitioner `hid-doc-<way>` (named `Secret<way>`).
pub fn seed_base(scene: &Scene, world: &World) -> TestResult {
    for other in &world.others {
        scene.sees_all_of(&other.token, &other.sees);
    }
    let mut practitioners = Vec::new();
    for hide in &world.hides {
        let way = hide.label();
        scene.seed_hidden(&hide.apply(json!({ "resourceType": "Patient", "id": format!("hid-p2-{way}"),
            "name": [{ "family": format!("Hidden{way}") }] })))?;
        scene.seed_hidden(&hide.apply(json!({ "resourceType": "Practitioner", "id": format!("hid-doc-{way}"),
            "name": [{ "family": format!("Secret{way}") }] })))?;
        practitioners.push(json!({ "reference": format!("Practitioner/hid-doc-{way}") }));
    }
    scene
        .seed(&json!({ "resourceType": "Patient", "id": world.own_patient, "name": [{ "family": "Visiblefamily" }],
                        "generalPractitioner": practitioners }))?;
    Ok(())
}

/// An Observation with code `urn:attack|<code>`.
pub fn observation(id: &str, code: &str, subject: &str) -> Value {
    json!({ "resourceType": "Observation", "id": id, "status": "final",
            "code": { "coding": [{ "system": "urn:attack", "code": code }] },
            "subject": { "reference": subject } })
}

/// An Observation the attacker may not see, hidden the way `hide` says: its subject is the
/// hidden patient of that way.
pub fn hidden_observation(scene: &Scene, hide: Hide, id: &str, code: &str) -> TestResult<Value> {
    let body = hide.apply(observation(id, code, &format!("Patient/hid-p2-{}", hide.label())));
    scene.seed_hidden(&body)
}

/// An Observation of the attacker's own patient (visible to it).
pub fn visible_observation(scene: &Scene, world: &World, id: &str, code: &str) -> TestResult<Value> {
    scene.seed(&observation(id, code, &format!("Patient/{}", world.own_patient)))
}

/// A body the attacker may create: an Observation of its own patient, without id.
pub fn own_body(world: &World, code: &str) -> Value {
    let mut body = observation("x", code, &format!("Patient/{}", world.own_patient));
    if let Some(map) = body.as_object_mut() {
        map.remove("id");
    }
    body
}

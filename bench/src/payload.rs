//! The ~2 KB resource of the write scenarios: a Patient with several identifiers, names,
//! telecoms and addresses, varied by a counter so every update really changes the content; and
//! for scenario 10 the same Patient declaring [`PROFILE`], with that profile's definition.

use bytes::Bytes;
use serde_json::{Value, json};

/// A Patient of about 2 KB of JSON; `id` set for updates, `n` varies the content.
pub fn patient(id: Option<&str>, n: u64) -> Bytes {
    let mut p = json!({
        "resourceType": "Patient",
        "active": true,
        "identifier": (0..4).map(|i| json!({
            "use": "usual",
            "system": format!("urn:oid:2.16.840.1.113883.19.5.{i}"),
            "value": format!("bench-{n:012}-{i}")
        })).collect::<Vec<_>>(),
        "name": [
            {"use": "official", "family": format!("Benchmark{n}"), "given": ["Load", "Generator"], "prefix": ["Mx."]},
            {"use": "nickname", "family": "Bench", "given": [format!("Client{}", n % 97)]}
        ],
        "telecom": [
            {"system": "phone", "value": format!("+1-555-{:04}", n % 10_000), "use": "home"},
            {"system": "phone", "value": "+1-555-0100", "use": "work"},
            {"system": "email", "value": format!("patient{n}@bench.example.org"), "use": "home"}
        ],
        "gender": if n % 2 == 0 { "female" } else { "male" },
        "birthDate": format!("{}-{:02}-{:02}", 1940 + n % 80, 1 + n % 12, 1 + n % 28),
        "address": (0..3).map(|i| json!({
            "use": if i == 0 { "home" } else { "old" },
            "line": [format!("{} Benchmark Street", 10 + i + n % 900), format!("Apartment {}", i + 1)],
            "city": "Springfield",
            "district": "Greene County",
            "state": "MA",
            "postalCode": format!("0{:04}", 1000 + (n + i) % 9000),
            "country": "US"
        })).collect::<Vec<_>>(),
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Married"}]},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US", "display": "English (United States)"}]}, "preferred": true}],
        "contact": [{
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
            "name": {"family": "Contact", "given": [format!("Person{}", n % 1000)]},
            "telecom": [{"system": "phone", "value": "+1-555-0199"}]
        }]
    });
    if let (Some(id), Value::Object(map)) = (id, &mut p) {
        map.insert("id".into(), Value::String(id.to_string()));
    }
    Bytes::from(p.to_string())
}

/// The profile of scenario 10's creates.
pub const PROFILE: &str = "https://fhirgate.dev/bench/StructureDefinition/bench-patient";

/// The same Patient as [`patient`], declaring [`PROFILE`] in `meta.profile`.
pub fn profiled_patient(n: u64) -> Bytes {
    let mut p: Value = serde_json::from_slice(&patient(None, n)).unwrap_or_default();
    p["meta"] = json!({"profile": [PROFILE]});
    Bytes::from(p.to_string())
}

/// A StructureDefinition of [`PROFILE`] as an implementation guide would write one: cardinality,
/// a slice by `system` with a fixed value, a pattern and an invariant, all of which the
/// Patients of [`profiled_patient`] meet.
pub fn profile() -> Bytes {
    let p = json!({
        "resourceType": "StructureDefinition", "url": PROFILE, "name": "BenchPatient", "status": "active",
        "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient", "path": "Patient", "constraint": [{"key": "bench-1", "severity": "error",
                "human": "an official name", "expression": "name.where(use = 'official').exists()"}]},
            {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1,
             "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
            {"id": "Patient.identifier:first", "path": "Patient.identifier", "sliceName": "first", "min": 1, "max": "1"},
            {"id": "Patient.identifier:first.system", "path": "Patient.identifier.system", "min": 1,
             "fixedUri": "urn:oid:2.16.840.1.113883.19.5.0"},
            {"id": "Patient.name", "path": "Patient.name", "min": 1},
            {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
            {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
             "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"}]}}
        ]}
    });
    Bytes::from(p.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn about_two_kilobytes() {
        let size = super::patient(Some("x"), 12345).len();
        assert!((1500..2600).contains(&size), "{size}");
    }

    #[test]
    fn the_profiled_patient_declares_the_profile() {
        let p: serde_json::Value = serde_json::from_slice(&super::profiled_patient(7)).unwrap_or_default();
        assert_eq!(p["meta"]["profile"][0], super::PROFILE);
        let sd: serde_json::Value = serde_json::from_slice(&super::profile()).unwrap_or_default();
        assert_eq!(sd["url"], super::PROFILE);
    }
}

//! The ~2 KB resource of the write scenarios: a Patient with several identifiers, names,
//! telecoms and addresses, varied by a counter so every update really changes the content.

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

#[cfg(test)]
mod tests {
    #[test]
    fn about_two_kilobytes() {
        let size = super::patient(Some("x"), 12345).len();
        assert!((1500..2600).contains(&size), "{size}");
    }
}

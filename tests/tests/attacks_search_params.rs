//! End-to-end attacks through custom SearchParameters: a parameter an administrator added must
//! not let a token learn about data its policies hide. A SMART patient token searching by a
//! custom parameter on another patient's values (plain, `_summary=count`, `_total`, `_has`, a
//! chain, `_include`/`_revinclude` of a custom reference) finds nothing, exactly as for a value
//! nobody has (chains and `_has` through `Patient` are refused to it with 403 anyway); all under
//! `Prefer: handling=strict`, so an ignored parameter cannot pass for an empty answer; on its own data it finds what is there. Creating or changing a SearchParameter
//! is a write Cedar decides: a patient token is refused and nothing is put in force.
//!
//! The Cedar attribute schema does not list custom parameters (it is built at start from the
//! R4 definitions), so a policy cannot read them: a policy set that names one fails to load.

use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult};
use serde_json::{Value, json};

const EYE: &str = "http://example.org/fhir/StructureDefinition/eye-colour";

/// Strict handling: a parameter that is ignored would make an empty answer mean nothing.
fn send(s: &Server, token: &str, method: &str, path: &str, body: Option<&Value>) -> TestResult<(u16, Value)> {
    let bytes = body.map(serde_json::to_vec).transpose()?;
    let headers = [("Content-Type", "application/fhir+json"), ("Prefer", "handling=strict")];
    let reply = s.send_as(Some(token), method, path, bytes.as_deref(), &headers)?;
    let parsed = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    Ok((reply.status, parsed))
}

fn parameter(code: &str, base: &str, kind: &str, expression: &str) -> Value {
    json!({
        "resourceType": "SearchParameter", "url": format!("http://example.org/fhir/SearchParameter/{code}"),
        "name": code, "status": "active", "description": code, "code": code, "base": [base],
        "type": kind, "expression": expression,
    })
}

/// Waits until the admin's strict search by `path` is accepted (the parameter is ready).
fn ready(s: &Server, path: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.get_with(path, &[("Prefer", "handling=strict")])?.status != 200 {
        if Instant::now() > deadline {
            return Err(format!("`{path}` never became usable").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some(format!("{}/{}", e["resource"]["resourceType"].as_str()?, e["resource"]["id"].as_str()?)))
        .collect();
    ids.sort();
    ids
}

#[test]
fn custom_parameters_reveal_nothing_a_search_would_not() -> TestResult {
    let s = Server::start("attacks-search-params")?;
    for (p, colour) in [("p1", "blue"), ("p2", "green")] {
        s.put_resource(&json!({"resourceType": "Patient", "id": p, "extension": [{"url": EYE, "valueCode": colour}]}))?;
        s.put_resource(&json!({
            "resourceType": "Observation", "id": format!("o-{p}"), "status": "final", "code": {"text": "note"},
            "subject": {"reference": format!("Patient/{p}")}, "note": [{"text": format!("secret of {p}")}],
            "performer": [{"reference": format!("Patient/{p}")}]
        }))?;
    }
    for resource in [
        parameter("eye", "Patient", "token", &format!("Patient.extension.where(url='{EYE}').value")),
        parameter("note-text", "Observation", "string", "Observation.note.text"),
        {
            let mut noted_by = parameter("noted-by", "Observation", "reference", "Observation.performer");
            noted_by["target"] = json!(["Patient", "Practitioner"]);
            noted_by
        },
    ] {
        let reply = s.post("SearchParameter", &resource)?;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    ready(&s, "Patient?eye=blue")?;
    ready(&s, "Observation?note-text=secret")?;
    ready(&s, "Observation?noted-by=Patient/p1")?;

    let attacker = s.mint(&["--scope", "patient/*.rs", "--patient", "p1"])?;
    let empty = |path: &str| -> TestResult {
        let (status, bundle) = send(&s, &attacker, "GET", path, None)?;
        // Chains and `_has` through a type the token may not search in full are refused outright.
        if status == 403 && (path.contains("_has:") || path.contains(':') && path.contains('.')) {
            return Ok(());
        }
        assert_eq!(status, 200, "{path}: {bundle}");
        assert_eq!(ids(&bundle), Vec::<String>::new(), "{path}");
        if let Some(total) = bundle.get("total") {
            assert_eq!(total, 0, "{path}: {bundle}");
        }
        Ok(())
    };
    // Another patient's values: nothing, no count, as for a value nobody has.
    for path in [
        "Patient?eye=green",
        "Patient?eye=green&_summary=count",
        "Patient?eye=green&_total=accurate",
        "Patient?eye=purple&_summary=count",
        "Observation?note-text=secret%20of%20p2",
        "Observation?note-text=secret%20of%20p2&_summary=count",
        "Observation?noted-by=Patient/p2",
        "Observation?noted-by:Patient.eye=green",
        "Patient?_has:Observation:subject:note-text=secret%20of%20p2",
        "Patient?_has:Observation:noted-by:note-text=secret",
    ] {
        empty(path)?;
    }
    // Its own data: found.
    let (_, own) = send(&s, &attacker, "GET", "Patient?eye=blue", None)?;
    assert_eq!(ids(&own), ["Patient/p1"], "{own}");
    let (_, own) = send(&s, &attacker, "GET", "Observation?note-text=secret&_include=Observation:noted-by", None)?;
    assert_eq!(ids(&own), ["Observation/o-p1", "Patient/p1"], "{own}");
    let (_, own) = send(&s, &attacker, "GET", "Patient?_revinclude=Observation:noted-by", None)?;
    assert_eq!(ids(&own), ["Observation/o-p1", "Patient/p1"], "{own}");

    // Writing a SearchParameter is a write Cedar decides: refused, and nothing in force.
    let writer = s.mint(&["--scope", "patient/*.cruds", "--patient", "p1"])?;
    let planted = parameter("planted", "Patient", "token", "Patient.gender");
    let (status, body) = send(&s, &writer, "POST", "SearchParameter", Some(&planted))?;
    assert_eq!(status, 403, "{body}");
    let reply = s.get_with("Patient?planted=male", &[("Prefer", "handling=strict")])?;
    assert_eq!(reply.status, 400, "{}", reply.body);
    Ok(())
}

//! Cost per data-level decision with attribute-reading policies (bench scenario 7's companion):
//! the shipped default sets on an Observation read by a SMART patient token, then the same with
//! policies reading one and four search-parameter attributes. Each decision includes building
//! the request from the resource's JSON (`PolicyEngine::with_data`: the facts, and the wanted
//! parameters extracted by the engine's index extraction) and evaluating the set.
//!
//!     cargo run --release -p fhirgate-policies --example decision_cost [ROUNDS]

use std::time::Instant;

use fhirgate_policies::{Action, AuthzRequest, PolicyEngine, PolicySource, Principal, RequestContext, Target, shipped};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let resource = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}], "text": "Glucose"},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-05T10:00:00Z",
        "valueQuantity": {"value": 95, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}});
    let principal = Principal::from_claims(&json!({"sub": "u", "scope": "patient/*.rs", "patient": "p1"}), "patient");
    let target = Target { resource_type: "Observation".into(), id: "o1".into(), operation: String::new() };
    let request = AuthzRequest::type_level(
        Action::Read,
        target,
        RequestContext { epoch_seconds: 1_767_607_200, ..RequestContext::default() },
    );
    let extra =
        |set: &str, text: &str| PolicySource { set: set.into(), file: format!("{set}.cedar"), text: text.into() };
    let one = r#"@id("one") forbid (principal, action, resource is Fhir::Observation)
        when { resource.code.containsAny(["7917-8", "25836-8", "20447-9", "56888-1", "75622-1"]) };"#;
    let four = r#"@id("four") forbid (principal, action, resource is Fhir::Observation)
        when { resource.code.contains("7917-8") || resource.subject.contains("Patient/vip")
            || (resource has date && resource.date.start < 0)
            || (resource has "value-quantity" && resource["value-quantity"].max.greaterThan(decimal("1000.0"))) };"#;
    let mut defaults = shipped("microsoft-roles")?;
    defaults.extend(shipped("smart")?);
    let configurations = [
        ("default sets (reads no parameter)", defaults.clone()),
        ("+ a forbid reading `code`", [defaults.clone(), vec![extra("one", one)]].concat()),
        ("+ a forbid reading 4 parameters", [defaults, vec![extra("four", four)]].concat()),
    ];
    println!("{rounds} data-level decisions each (allowed: the patient's own Observation)");
    for (name, sources) in configurations {
        let engine = PolicyEngine::load(&sources)?;
        let mut allowed = 0u32;
        for _ in 0..rounds / 10 {
            allowed += u32::from(engine.decide(&principal, &engine.with_data(&request, &resource))?.allowed);
        }
        let started = Instant::now();
        for _ in 0..rounds {
            allowed += u32::from(engine.decide(&principal, &engine.with_data(&request, &resource))?.allowed);
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(engine.with_data(&request, &resource));
        }
        let building = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!(
            "{name:40} {micros:7.1} µs per decision, {building:6.1} of them building the request ({allowed} allowed)"
        );
    }
    Ok(())
}

//! Proofs with the real solver. They need cvc5 1.3.1 named by `CVC5`
//! (`scripts/install-cvc5.sh`); without it they say so and pass, unless
//! `FHIRGATE_TEST_REQUIRE_CVC5=1` (set by `scripts/test.sh`) makes that a failure.

use super::*;
use crate::sources::shipped;

fn solver() -> Option<solver::Cvc5> {
    if std::env::var_os("CVC5").is_some() {
        return Some(solver::Cvc5::find(None));
    }
    assert!(std::env::var_os("FHIRGATE_TEST_REQUIRE_CVC5").is_none(), "CVC5 must name the cvc5 1.3.1 solver");
    eprintln!("skipped: CVC5 is not set (scripts/install-cvc5.sh installs the solver)");
    None
}

fn source(set: &str, text: &str) -> Vec<PolicySource> {
    vec![PolicySource { set: set.into(), file: format!("{set}.cedar"), text: text.into() }]
}

/// The SMART set with the compartment check left out of its patient scopes.
const BROKEN_SMART: &str = r#"
@id("patient-scopes")
permit (principal, action, resource)
when { principal.patient != "" && principal.smartPatient.containsAny(context.smartNeeded) };
"#;

#[test]
fn the_smart_set_has_every_property_it_states() -> Result<(), Error> {
    let Some(cvc5) = solver() else { return Ok(()) };
    let properties = properties::of("smart")?;
    let names: Vec<&str> = properties.iter().map(Property::name).collect();
    assert_eq!(names, ["never-errors", "smart/patient-compartment", "smart/scope-needed"]);
    for finding in prove(&shipped("smart")?, &properties, &cvc5)? {
        assert!(finding.holds(), "{}: {:?}", finding.property, finding.counterexample);
        assert!(finding.environments >= 38, "every principal type × action: {}", finding.environments);
    }
    Ok(())
}

#[test]
fn a_set_without_the_compartment_check_gets_a_counterexample() -> Result<(), Error> {
    let Some(cvc5) = solver() else { return Ok(()) };
    let properties: Vec<Property> =
        properties::of("smart")?.into_iter().filter(|p| p.name() == "smart/patient-compartment").collect();
    let findings = prove(&source("broken", BROKEN_SMART), &properties, &cvc5)?;
    let cex = findings[0].counterexample.as_deref().unwrap_or_default();
    // A data-level request on a resource outside the patient's compartment, allowed.
    assert!(cex.contains("hasData: true"), "{cex}");
    assert!(cex.contains("decision: Allow by [\"broken:patient-scopes\"]"), "{cex}");
    Ok(())
}

#[test]
fn implies_compares_two_sets_both_ways() -> Result<(), Error> {
    let Some(cvc5) = solver() else { return Ok(()) };
    let smart_patient = source(
        "strict",
        r#"@id("patient-scopes")
        permit (principal, action, resource)
        when { principal.patient != "" && principal.smartPatient.containsAny(context.smartNeeded) &&
               (!resource.hasData || resource.patients.contains(principal.patient)) };"#,
    );
    let wider = properties::bounded_by("broken", source("broken", BROKEN_SMART));
    assert!(prove(&smart_patient, &[wider], &cvc5)?[0].holds(), "the strict set allows no more");
    let narrower = properties::bounded_by("strict", smart_patient);
    let findings = prove(&source("broken", BROKEN_SMART), &[narrower], &cvc5)?;
    assert!(!findings[0].holds(), "the broken set allows more than the strict one");
    Ok(())
}

#[test]
fn a_policy_that_can_overflow_errors() -> Result<(), Error> {
    let Some(cvc5) = solver() else { return Ok(()) };
    let overflowing = source(
        "late",
        r#"@id("late") permit (principal, action, resource) when { context.time.epochSeconds + 3600 > 0 };"#,
    );
    let findings = prove(&overflowing, &[Property::NeverErrors], &cvc5)?;
    let cex = findings[0].counterexample.as_deref().unwrap_or_default();
    assert!(cex.contains("policy `late:late` errors on"), "{cex}");
    assert!(cex.contains("errors:"), "the replay shows the error: {cex}");
    Ok(())
}

#[test]
fn a_missing_solver_is_a_clear_error() {
    let missing = solver::Cvc5 { path: "/nonexistent/cvc5".into(), time_limit_ms: 1000 };
    let result = prove(&source("strict", BROKEN_SMART), &[Property::NeverErrors], &missing);
    assert!(matches!(&result, Err(Error::Proof(m)) if m.contains("install-cvc5.sh")), "{result:?}");
}

#[test]
fn proofs_keep_the_types_a_policy_can_tell_apart_and_one_for_the_rest() -> Result<(), Error> {
    let types = |text: &str| -> Result<Vec<String>, Error> {
        let schema = proof_schema(std::iter::once(source("t", text).as_slice()))?;
        let mut names: Vec<String> = schema.entity_types().map(ToString::to_string).collect();
        names.retain(|n| !["Fhir::Role", "Fhir::Group", "Fhir::User", "Fhir::Application"].contains(&n.as_str()));
        Ok(names)
    };
    // Blind to types: the general entity and one standing for every generated type.
    assert_eq!(types("permit (principal, action, resource);")?.len(), 2);
    // A named type is kept; so is every type with an attribute read (`code`: Observation,
    // Condition, ...), even where the policy does not name it.
    let named = types("permit (principal, action, resource is Fhir::Encounter);")?;
    assert!(named.contains(&"Fhir::Encounter".to_string()) && named.len() == 3, "{named:?}");
    let read = types("permit (principal, action, resource) when { resource has code && resource.code.isEmpty() };")?;
    for kept in ["Fhir::Observation", "Fhir::Condition", "Fhir::Procedure"] {
        assert!(read.contains(&kept.to_string()), "{kept}: {read:?}");
    }
    assert!(read.len() < 60, "types without `code` are left out but one: {read:?}");
    Ok(())
}

#[test]
fn an_attribute_read_without_naming_the_type_is_proved_on_the_types_that_have_it() -> Result<(), Error> {
    let Some(cvc5) = solver() else { return Ok(()) };
    // Allows Conditions coded `x` (never named) beyond a bound that allows nothing coded `x`.
    let set = source(
        "set",
        r#"permit (principal, action, resource) when { resource has code && resource.code.contains("x") };"#,
    );
    let bound = source(
        "bound",
        r#"permit (principal, action, resource) unless { resource has code && resource.code.contains("x") };"#,
    );
    let findings = prove(&set, &[properties::bounded_by("bound", bound)], &cvc5)?;
    assert!(!findings[0].holds(), "a counterexample exists");
    Ok(())
}

use serde_json::json;

use super::*;

fn r4() -> &'static Registry {
    Registry::r4()
}

fn expand(registry: &Registry, url: &str) -> Result<Expansion, Failure> {
    let sources = Sources::new(vec![r4(), registry]);
    let value_set = sources.value_set(url, None).ok_or_else(|| Failure::Needs("ValueSet", url.to_owned()))?;
    sources.expand(&value_set, &Limits::default())
}

fn codes(expansion: &Expansion) -> Vec<&str> {
    expansion.entries.iter().map(|e| e.code.as_str()).collect()
}

#[test]
fn the_r4_package_is_loaded() {
    let gender = r4().code_system("http://hl7.org/fhir/administrative-gender", None);
    assert_eq!(gender.map(|g| g.concepts.len()), Some(4));
    assert_eq!(r4().required_binding("Patient.gender"), Some("http://hl7.org/fhir/ValueSet/administrative-gender"));
    let expansion = r4().cached_expansion("http://hl7.org/fhir/ValueSet/administrative-gender");
    assert_eq!(expansion.as_deref().map(codes), Some(vec!["male", "female", "other", "unknown"]));
    assert!(r4().cached_expansion("http://hl7.org/fhir/ValueSet/mimetypes").is_none(), "bcp:13 is not loaded");
}

#[test]
fn hierarchies_and_filters() {
    let act = r4().code_system("http://terminology.hl7.org/CodeSystem/v3-ActCode", None);
    let Some(act) = act else { panic!("v3-ActCode is loaded") };
    assert!(act.is_hierarchical());
    let (Some(cc), Some(visa)) = (act.find("CC"), act.find("V")) else { panic!("codes") };
    assert!(act.subsumed_by(visa, cc));
    assert!(!act.subsumed_by(cc, visa));
    let mut extra = Registry::default();
    extra
        .add(&json!({"resourceType": "ValueSet", "url": "http://x/vs/cards", "compose": {"include": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "filter": [{"property": "concept", "op": "is-a", "value": "CC"}]}],
            "exclude": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "concept": [{"code": "DN"}]}]}}))
        .map_err(|e| e.to_string())
        .unwrap_or_default();
    let cards = expand(&extra, "http://x/vs/cards").map_err(|f| f.message());
    assert_eq!(cards.as_ref().map(codes), Ok(vec!["CC", "AE", "DV", "MC", "V"]));
}

#[test]
fn imports_cycles_and_bounds() {
    let (extra, skipped) = Registry::from_resources(&[
        json!({"resourceType": "ValueSet", "url": "http://x/a", "compose": {"include": [{"valueSet": ["http://x/b"]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://x/b", "compose": {"include": [{"valueSet": ["http://x/a"]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://x/g", "compose": {"include": [
            {"valueSet": ["http://hl7.org/fhir/ValueSet/administrative-gender"]},
            {"system": "http://loinc.org", "concept": [{"code": "1234-5", "display": "x"}]}]}}),
        json!({"resourceType": "ValueSet", "url": "http://x/loinc", "compose": {"include": [{"system": "http://loinc.org"}]}}),
        json!({"resourceType": "ValueSet", "url": "http://x/all-act", "compose": {"include": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode"}]}}),
        json!({"resourceType": "Patient"}),
        json!({"resourceType": "ValueSet"}),
    ]);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(matches!(expand(&extra, "http://x/a"), Err(Failure::Cycle(_))));
    let g = expand(&extra, "http://x/g").map_err(|f| f.message());
    assert_eq!(g.as_ref().map(|e| e.entries.len()), Ok(5));
    assert!(g.as_ref().is_ok_and(|e| e.contains("http://loinc.org", "1234-5")));
    assert_eq!(expand(&extra, "http://x/loinc").err(), Some(Failure::Needs("CodeSystem", "http://loinc.org".into())));
    let sources = Sources::new(vec![r4(), &extra]);
    let Some(all) = sources.value_set("http://x/all-act", None) else { panic!("loaded") };
    let small = Limits { max_size: 10, max_depth: 4 };
    assert!(matches!(sources.expand(&all, &small), Err(Failure::TooCostly(_))));
}

#[test]
fn every_r4_value_set_expands_or_says_why() {
    let mut expanded = 0;
    for value_sets in r4().value_sets.values() {
        for vs in value_sets {
            match Sources::new(vec![r4()]).expand(vs, &Limits::default()) {
                Ok(_) => expanded += 1,
                Err(f) => assert!(!f.message().is_empty()),
            }
        }
    }
    assert!(expanded > 900, "{expanded} of the R4 value sets expanded");
}

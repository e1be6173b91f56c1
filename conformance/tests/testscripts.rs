//! Every TestScript of the corpus (JSON, or FHIR XML read by the runner's converter) is a valid
//! R4 TestScript with at least one test and assertion, every fixture file a valid resource, and
//! an XML script the same resource as its JSON twin. The generated corpus (`generated/`) has a
//! valid script per R4 resource type and valid fixtures.

use std::path::PathBuf;

use fhirgate_conformance::script::Script;
use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::validate;

#[test]
fn every_testscript_is_valid_r4() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("testscripts");
    let mut checked = 0;
    // Scripts are filed by obligation level; fixtures are shared.
    let mut levels = Vec::new();
    for level in ["must", "should", "may"] {
        for entry in std::fs::read_dir(dir.join(level))? {
            levels.push(entry?.path());
        }
    }
    let stray: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "xml"))
        .collect();
    assert!(stray.is_empty(), "scripts belong under must/, should/ or may/: {stray:?}");
    for path in levels {
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "xml")) {
            continue;
        }
        let script = Script::load(&path)?.resource;
        assert_eq!(script["resourceType"], "TestScript", "{}", path.display());
        let issues = validate(Definitions::r4(), &script);
        assert!(issues.is_empty(), "{}: {issues:#?}", path.display());
        let tests = script["test"].as_array().ok_or("no tests")?;
        assert!(!tests.is_empty(), "{}", path.display());
        for test in tests {
            let actions = test["action"].as_array().ok_or("no actions")?;
            assert!(actions.iter().any(|a| a.get("assert").is_some()), "{}: a test without assertions", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 5, "expected the corpus, found {checked} scripts");
    // Fixture files hold `${variables}`: with each replaced by a valid id, they are valid resources
    // in JSON or XML (or JSON Patch documents: arrays of operations).
    for entry in std::fs::read_dir(dir.join("fixtures"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let substituted = text.split("${").enumerate().fold(String::new(), |mut out, (i, part)| {
            match (i, part.split_once('}')) {
                (0, _) | (_, None) => out.push_str(part),
                (_, Some((_, rest))) => {
                    out.push_str("fixture-variable");
                    out.push_str(rest);
                }
            }
            out
        });
        if text.contains("<!DOCTYPE") {
            // Hostile on purpose (sent to see it refused): the runner's reader refuses it too.
            assert!(fhirgate_conformance::script::parse_resource(&text).is_err(), "{}", path.display());
            continue;
        }
        let (value, _) = fhirgate_conformance::script::parse_resource(&substituted)?;
        if let Some(operations) = value.as_array() {
            assert!(operations.iter().all(|o| o.get("op").is_some()), "{}: not a JSON Patch", path.display());
            continue;
        }
        let issues = validate(Definitions::r4(), &value);
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("hostile-")) {
            // Invalid on purpose (sent to see it refused), and so it must stay.
            assert!(!issues.is_empty(), "{}: a hostile fixture that is valid R4", path.display());
            continue;
        }
        assert!(issues.is_empty(), "{}: {issues:#?}", path.display());
    }
    println!("{checked} TestScripts are valid R4");
    Ok(())
}

#[test]
fn xml_and_json_forms_are_the_same_testscript() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("testscripts");
    let xml = Script::load(&dir.join("must/capabilities.xml"))?;
    let json = Script::load(&dir.join("must/capabilities.json"))?;
    assert_eq!(xml.resource, json.resource);
    Ok(())
}

#[test]
fn the_generated_corpus_has_a_valid_script_per_resource_type() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("testscripts/generated");
    let defs = Definitions::r4();
    for resource_type in defs.resource_types() {
        let path = dir.join(format!("json/{resource_type}.json"));
        let script = Script::load(&path)?.resource;
        let issues = validate(defs, &script);
        assert!(issues.is_empty(), "{}: {issues:#?}", path.display());
        let tests: Vec<&str> =
            script["test"].as_array().ok_or("no tests")?.iter().filter_map(|t| t["name"].as_str()).collect();
        for name in [
            "read",
            "vread",
            "update",
            "history",
            "search-_id",
            "conditional-create",
            "conditional-update",
            "create",
            "delete",
        ] {
            assert!(tests.contains(&name), "{resource_type}: no `{name}` test");
        }
        // The XML script is the same script asking for XML and naming the XML fixtures.
        let xml = Script::load(&dir.join(format!("xml/{resource_type}.xml")))?.resource;
        let as_json = serde_json::to_string(&xml)?
            .replace(r#""xml""#, r#""json""#)
            .replace(r#".xml""#, r#".json""#)
            .replace(r#" in xml""#, r#" in json""#)
            .replace("fhir+xml", "fhir+json");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&as_json)?, script, "{resource_type}: XML script");
    }
    for format in ["json", "xml"] {
        let scripts = std::fs::read_dir(dir.join(format))?.count();
        assert_eq!(scripts, defs.resource_types().count(), "a {format} script per type and nothing else");
    }
    for entry in std::fs::read_dir(dir.join("fixtures"))? {
        let path = entry?.path();
        let (value, _) = fhirgate_conformance::script::read_resource(&path)?;
        if path.extension().is_some_and(|e| e == "xml") {
            let (twin, _) = fhirgate_conformance::script::read_resource(&path.with_extension("json"))?;
            assert_eq!(value, twin, "{}: the XML fixture is its JSON twin", path.display());
        }
        let issues = validate(defs, &value);
        assert!(
            issues
                .iter()
                .all(|i| !matches!(i.severity, fhirgate_engine::Severity::Error | fhirgate_engine::Severity::Fatal)),
            "{}: {issues:#?}",
            path.display()
        );
    }
    Ok(())
}

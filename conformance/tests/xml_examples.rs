//! The XML converter against official R4 examples that exist in both XML and JSON (from
//! FHIR/fhir-test-cases, `tests/data/`): the converted XML equals the JSON, the narrative
//! compared without whitespace between tags (the two files format it differently); and JSON
//! written as XML reads back as the same JSON, for those examples and the corpus scripts.

use std::path::PathBuf;

use fhirgate_conformance::xml::{from_json, to_json};
use serde_json::Value;

fn data(name: &str) -> Result<String, std::io::Error> {
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    std::fs::read_to_string(dir.join("tests/data").join(name))
}

/// The narrative `div` as its text without whitespace and quoting differences.
fn normalise_div(resource: &mut Value) -> Option<String> {
    let div = resource.get_mut("text")?.as_object_mut()?.remove("div")?;
    Some(
        div.as_str()?
            .replace("&#39;", "'")
            .replace("&apos;", "'")
            .replace("&quot;", "\"")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

#[test]
fn official_xml_examples_convert_to_their_json_twins() -> Result<(), Box<dyn std::error::Error>> {
    for name in ["patient-example", "observation-example"] {
        let mut from_xml = to_json(&data(&format!("{name}.xml"))?)?;
        let mut json: Value = serde_json::from_str(&data(&format!("{name}.json"))?)?;
        let (xml_div, json_div) = (normalise_div(&mut from_xml), normalise_div(&mut json));
        assert!(xml_div.is_some(), "{name}: a narrative");
        assert_eq!(xml_div, json_div, "{name}: narrative");
        if name == "observation-example" {
            // The XML of fhir-test-cases carries one extension more than the JSON of the package
            // (the FHIRPath tests use it); it converts to what the JSON form would hold.
            let extension = from_xml.as_object_mut().and_then(|o| o.remove("extension"));
            let age = serde_json::json!([{"url": "http://example.com/fhir/StructureDefinition/patient-age",
                "valueAge": {"value": 41, "system": "http://unitsofmeasure.org", "code": "a"}}]);
            assert_eq!(extension, Some(age));
        }
        assert_eq!(from_xml, json, "{name}");
    }
    Ok(())
}

#[test]
fn json_written_as_xml_reads_back_the_same() -> Result<(), Box<dyn std::error::Error>> {
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let mut files = vec![dir.join("tests/data/patient-example.json"), dir.join("tests/data/observation-example.json")];
    for level in ["must", "should", "may"] {
        for entry in std::fs::read_dir(dir.join("testscripts").join(level))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 12);
    for path in files {
        let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let mut back = to_json(&from_json(&json)?)?;
        // `"` in narrative text needs no escaping in XML: compare the div as text.
        assert_eq!(normalise_div(&mut back), normalise_div(&mut json), "{}", path.display());
        assert_eq!(back, json, "{}", path.display());
    }
    Ok(())
}

//! The runner's FHIR XML (the engine's converter, read as the runner reads it): JSON written as
//! XML, compact and indented, reads back as the same JSON, for the official examples of
//! `tests/data/` and every hand-written script of the corpus (so each has an XML form). The
//! XML twins of those examples are compared with their JSON in the engine's `xml_examples`.

use std::path::PathBuf;

use fhirgate_engine::{json_to_xml, xml_to_json_lenient};
use serde_json::Value;

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
    for (i, path) in files.iter().enumerate() {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let back = xml_to_json_lenient(&json_to_xml(&json, i % 2 == 0)?)?;
        assert_eq!(back, json, "{}", path.display());
    }
    Ok(())
}

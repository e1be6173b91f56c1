//! Converts the official FHIRPath Patch test cases (FHIR XML, `fhir-test-cases/r4/patch/
//! fhir-patch-tests.xml`) into the JSON data file the engine's `patch_official` test reads, with
//! this crate's FHIR XML → JSON converter. Run once when the official file changes:
//!
//! ```text
//! cargo run -p fhirgate-conformance --example fhir_patch_tests -- \
//!     /work/shared/fhir-test-cases/r4/patch/fhir-patch-tests.xml > engine/tests/data/fhir-patch-tests.json
//! ```

use fhirgate_conformance::xml::{self, dom};
use serde_json::{Map, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: fhir_patch_tests <fhir-patch-tests.xml>")?;
    let root = dom::parse(&std::fs::read_to_string(&path)?)?;
    let mut cases = Vec::new();
    for case in root.elements().filter(|e| e.name == "case") {
        let mut out = Map::new();
        for attribute in ["name", "mode"] {
            out.insert(attribute.into(), case.attribute(attribute).map_or(Value::Null, |v| Value::String(v.into())));
        }
        for part in case.elements() {
            let value = match part.name.as_str() {
                "error" => Value::String(part.attribute("msg").unwrap_or_default().into()),
                _ => {
                    let resource = part.elements().next().ok_or_else(|| format!("empty <{}>", part.name))?;
                    let mut text = String::new();
                    resource.write(&mut text, Some("http://hl7.org/fhir"));
                    xml::to_json(&text)?
                }
            };
            out.insert(part.name.clone(), value);
        }
        cases.push(Value::Object(out));
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(cases))?);
    Ok(())
}

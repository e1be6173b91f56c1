//! Converts the official FHIRPath Patch test cases (FHIR XML, `fhir-test-cases/r4/patch/
//! fhir-patch-tests.xml`) into the JSON data file the engine's `patch_official` test reads, with
//! the engine's FHIR XML → JSON converter. Run once when the official file changes:
//!
//! ```text
//! cargo run -p fhirgate-conformance --example fhir_patch_tests -- \
//!     /work/shared/fhir-test-cases/r4/patch/fhir-patch-tests.xml > engine/tests/data/fhir-patch-tests.json
//! ```
//!
//! The file is `<tests><case name mode><input|diff|output><Resource …/></…><error msg/></case>`:
//! each resource is converted from its own text, as it is written in the file.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

fn attribute(start: &BytesStart<'_>, name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    for a in start.attributes() {
        let a = a?;
        if a.key.as_ref() == name.as_bytes() {
            return Ok(Value::String(a.unescape_value()?.into_owned()));
        }
    }
    Ok(Value::Null)
}

/// The resource written in `text[from..until]`, as JSON.
fn convert(text: &str, from: usize, until: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let bytes = text.as_bytes().get(from..until).ok_or("a resource outside the file")?;
    Ok(fhirgate_engine::xml_to_json_lenient(bytes)?)
}

fn name_of(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: fhir_patch_tests <fhir-patch-tests.xml>")?;
    let text = std::fs::read_to_string(&path)?;
    let mut reader = Reader::from_str(&text);
    let mut cases = Vec::new();
    let mut case = Map::new();
    // Depth 1 `<tests>`, 2 `<case>`, 3 a part, 4 its resource (converted from its text).
    let (mut depth, mut part, mut resource_from) = (0usize, String::new(), 0usize);
    loop {
        let before = usize::try_from(reader.buffer_position())?;
        match reader.read_event()? {
            Event::Start(e) => {
                depth += 1;
                match depth {
                    2 => {
                        case = ["name", "mode"]
                            .iter()
                            .map(|a| Ok(((*a).to_owned(), attribute(&e, a)?)))
                            .collect::<Result<_, Box<dyn std::error::Error>>>()?;
                    }
                    3 => part = name_of(&e),
                    4 => resource_from = before,
                    _ => {}
                }
            }
            Event::Empty(_) if depth == 3 => {
                let until = usize::try_from(reader.buffer_position())?;
                let resource = convert(&text, before, until)?;
                case.insert(part.clone(), resource);
            }
            Event::Empty(e) if depth == 2 => {
                let value = if name_of(&e) == "error" { attribute(&e, "msg")? } else { Value::Null };
                case.insert(name_of(&e), value);
            }
            Event::End(_) => {
                match depth {
                    2 => cases.push(Value::Object(std::mem::take(&mut case))),
                    4 => {
                        let until = usize::try_from(reader.buffer_position())?;
                        let resource = convert(&text, resource_from, until)?;
                        case.insert(part.clone(), resource);
                    }
                    _ => {}
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(cases))?);
    Ok(())
}

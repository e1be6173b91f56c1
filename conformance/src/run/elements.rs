//! Elements of a TestScript that R4 does not define (STU3 or R5 leftovers, typos): each is a
//! warning naming it, and the script runs without it. Found by walking the script against the
//! engine's R4 definitions.

use std::collections::BTreeSet;

use fhirgate_engine::definitions::{Definitions, Kind};
use serde_json::Value;

/// How deep the walk goes (TestScripts are a few levels deep; the bound keeps a hostile script
/// from making it long).
const MAX_DEPTH: usize = 24;

/// A warning per element path of `script` that R4's TestScript does not define, in order.
pub(super) fn unknown(script: &Value) -> Vec<String> {
    let mut found = BTreeSet::new();
    walk(Definitions::r4(), script, "", 0, &mut found);
    found.into_iter().map(|path| format!("unknown element `TestScript.{path}` is ignored")).collect()
}

fn walk(defs: &Definitions, value: &Value, path: &str, depth: usize, found: &mut BTreeSet<String>) {
    let Value::Object(object) = value else { return };
    if depth > MAX_DEPTH {
        return;
    }
    for (key, child) in object {
        let name = key.strip_prefix('_').unwrap_or(key);
        if matches!(name, "extension" | "modifierExtension") || (path.is_empty() && name == "resourceType") {
            continue;
        }
        let child_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        let Some(element) = defs.element("TestScript", &child_path) else {
            found.insert(child_path);
            continue;
        };
        // Resources (`contained`) and primitives' `_name` siblings are not TestScript elements.
        let is_resource = element.type_code.and_then(|t| defs.type_def(t)).is_some_and(|t| t.kind == Kind::Resource);
        if is_resource || key.starts_with('_') {
            continue;
        }
        match child {
            Value::Array(items) => {
                for item in items {
                    walk(defs, item, &child_path, depth + 1, found);
                }
            }
            item => walk(defs, item, &child_path, depth + 1, found),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn unknown_elements_are_named_once() {
        let script = json!({
            "resourceType": "TestScript", "id": "t", "name": "t", "status": "active",
            "_status": {"extension": [{"url": "http://x", "valueString": "y"}]},
            "url": "http://x/t", "contained": [{"resourceType": "Patient", "anything": 1}],
            "metadata": {"capability": [{"required": true, "capabilities": "http://x/cs", "link": ["a"]}]},
            "setup": {"action": [
                {"assert": {"response": "okay", "stopTestOnFail": true}},
                {"assert": {"response": "okay", "stopTestOnFail": false}},
                {"operation": {"type": {"system": "http://x", "code": "read", "colour": "red"}}}
            ]},
            "test": [{"name": "a", "action": [{"operation": {"resource": "Patient", "requestHeader": [{"field": "A", "value": "b"}]}}]}],
            "scope": [{"artifact": "http://x"}]
        });
        assert_eq!(
            super::unknown(&script),
            [
                "unknown element `TestScript.scope` is ignored",
                "unknown element `TestScript.setup.action.assert.stopTestOnFail` is ignored",
                "unknown element `TestScript.setup.action.operation.type.colour` is ignored",
            ]
        );
    }
}

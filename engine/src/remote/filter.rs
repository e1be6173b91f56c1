//! The data-level decisions on what the remote returns: every entry of a searchset, history or
//! operation Bundle decided (hidden entries removed, `total` removed unless the grant covers all
//! data), and `_summary` / `_elements` applied here after the decision when the remote was
//! asked for whole resources.

use serde_json::{Map, Value};

use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::Result;
use crate::format::{Summary, apply_elements, apply_summary};
use crate::interaction::{Gate, Request};
use crate::search::query::ResultParams;

/// Removes the entries of `bundle` whose resource the client of `gate` may not see; entries
/// without a resource are removed too (nothing to decide on), except the remote's notes
/// (`search.mode = outcome`). `total` stays only when the grant covers every resource.
pub(super) fn entries(bundle: &mut Map<String, Value>, gate: &Gate<'_>) {
    entries_deciding(bundle, gate, |_| false);
}

/// [`entries`], with `deleted` deciding the entries without a resource (a history's deletions).
pub(super) fn entries_deciding(bundle: &mut Map<String, Value>, gate: &Gate<'_>, deleted: impl Fn(&Value) -> bool) {
    if gate.covers_data() {
        return;
    }
    bundle.remove("total");
    if let Some(Value::Array(list)) = bundle.get_mut("entry") {
        list.retain(|entry| if entry.get("resource").is_none() { deleted(entry) } else { visible_entry(entry, gate) });
        keep_connected_includes(list);
        if list.is_empty() {
            bundle.remove("entry");
        }
    }
}

/// Whether an entry stays for the client.
fn visible_entry(entry: &Value, gate: &Gate<'_>) -> bool {
    let note = entry.pointer("/search/mode").and_then(Value::as_str) == Some("outcome")
        && entry.pointer("/resource/resourceType").and_then(Value::as_str) == Some("OperationOutcome");
    match entry.get("resource") {
        Some(resource @ Value::Object(_)) => note || gate.allows(resource, Phase::Outgoing),
        _ => false,
    }
}

/// Keeps only the included entries (`search.mode = include`) that a visible entry references
/// (`_include`) or that reference one (`_revinclude`), transitively (`:iterate`): an include
/// whose only match was hidden would show that the hidden match exists and what it points to.
fn keep_connected_includes(list: &mut Vec<Value>) {
    let is_include = |e: &Value| e.pointer("/search/mode").and_then(Value::as_str) == Some("include");
    if !list.iter().any(is_include) {
        return;
    }
    let mut kept: Vec<bool> = list.iter().map(|e| !is_include(e)).collect();
    let ids: Vec<Option<String>> = list.iter().map(|e| type_and_id(e.get("resource"))).collect();
    let refs: Vec<Vec<String>> = list.iter().map(|e| references(e.get("resource"))).collect();
    // Each round keeps at least one more entry or stops: at most `list.len()` rounds.
    loop {
        let mut changed = false;
        for i in 0..list.len() {
            if kept[i] {
                continue;
            }
            let connected = (0..list.len()).filter(|&k| kept[k]).any(|k| {
                ids[i].as_ref().is_some_and(|id| refs[k].contains(id))
                    || ids[k].as_ref().is_some_and(|id| refs[i].contains(id))
            });
            if connected {
                kept[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut keep = kept.into_iter();
    list.retain(|_| keep.next().unwrap_or(false));
}

/// `Type/id` of a resource.
fn type_and_id(resource: Option<&Value>) -> Option<String> {
    let resource = resource?;
    Some(format!("{}/{}", resource.get("resourceType")?.as_str()?, resource.get("id")?.as_str()?))
}

/// Every `reference` in a resource, as `Type/id` (the last two segments, versions dropped).
fn references(resource: Option<&Value>) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>, depth: usize) {
        if depth > 64 {
            return;
        }
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("reference") {
                    let path = reference.split("/_history").next().unwrap_or(reference);
                    let mut segments = path.rsplit('/');
                    if let (Some(id), Some(kind)) = (segments.next(), segments.next()) {
                        out.push(format!("{kind}/{id}"));
                    }
                }
                map.values().for_each(|v| walk(v, out, depth + 1));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out, depth + 1)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(resource) = resource {
        walk(resource, &mut out, 0);
    }
    out
}

/// `_summary` / `_elements` of a read or search, as the client asked them.
#[derive(Debug, Clone, Default)]
pub(super) struct Shape {
    summary: Option<Summary>,
    elements: Vec<String>,
}

impl Shape {
    /// The shape of a search's result parameters.
    pub(super) fn of(result: &ResultParams) -> Self {
        Self { summary: result.summary, elements: result.elements.clone() }
    }

    /// The shape a read asks for (`_summary`, `_elements`).
    pub(super) fn of_read(summary: Option<Summary>, elements: Option<&str>) -> Self {
        let elements = elements
            .map(|e| e.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Self { summary, elements }
    }

    /// `request` without `_summary` / `_elements`, and the shape they ask for: the remote then
    /// returns whole resources, decided on all their data before the shape is applied here.
    pub(super) fn strip(request: &Request) -> Result<(Request, Self)> {
        let summary = request.param("_summary").map(Summary::parse).transpose()?;
        let shape = Self::of_read(summary, request.param("_elements"));
        let mut whole = request.clone();
        whole.query.retain(|(k, _)| !matches!(k.as_str(), "_summary" | "_elements"));
        Ok((whole, shape))
    }

    /// Whether it changes anything.
    pub(super) fn is_whole(&self) -> bool {
        matches!(self.summary, None | Some(Summary::False) | Some(Summary::Count)) && self.elements.is_empty()
    }

    /// Applies it to one resource.
    pub(super) fn apply(&self, resource: &mut Map<String, Value>) {
        if self.is_whole() {
            return;
        }
        let defs = Definitions::r4();
        let rt = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mandatory = |e: &str| defs.is_mandatory_element(&rt, e);
        match self.summary {
            Some(Summary::False) | Some(Summary::Count) => {}
            Some(summary) => apply_summary(resource, summary, |e| defs.is_summary_element(&rt, e), mandatory),
            None => apply_elements(resource, &self.elements, mandatory),
        }
    }

    /// Applies it to every entry's resource of a Bundle (the remote's notes aside).
    pub(super) fn apply_entries(&self, bundle: &mut Map<String, Value>) {
        if self.is_whole() {
            return;
        }
        let Some(Value::Array(list)) = bundle.get_mut("entry") else { return };
        for entry in list {
            if entry.pointer("/search/mode").and_then(Value::as_str) == Some("outcome") {
                continue;
            }
            if let Some(Value::Object(resource)) = entry.get_mut("resource") {
                self.apply(resource);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn includes_of_hidden_matches_are_dropped() {
        let entry = |mode: &str, resource: Value| json!({"search": {"mode": mode}, "resource": resource});
        let mut list = vec![
            entry("match", json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}})),
            entry("include", json!({"resourceType": "Patient", "id": "p1"})),
            entry("include", json!({"resourceType": "Patient", "id": "p2"})),
            entry("include", json!({"resourceType": "Practitioner", "id": "d1"})),
            entry(
                "include",
                json!({"resourceType": "Encounter", "id": "e1", "subject": {"reference": "http://x/fhir/Patient/p1/_history/2"}}),
            ),
        ];
        keep_connected_includes(&mut list);
        let kept: Vec<Option<String>> = list.iter().map(|e| type_and_id(e.get("resource"))).collect();
        assert_eq!(kept, [Some("Observation/o1".into()), Some("Patient/p1".into()), Some("Encounter/e1".into())]);
        let mut orphans = vec![entry("include", json!({"resourceType": "Patient", "id": "p1"}))];
        keep_connected_includes(&mut orphans);
        assert!(orphans.is_empty(), "no visible match: no include");
    }
}

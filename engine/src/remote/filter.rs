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

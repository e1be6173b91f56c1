//! The Consents that data-level decisions read (see
//! [`crate::access::Access::consents_wanted`]), on a remote target: before resources the remote
//! returns (or the client sends) are decided, the current Consents of their patients are read
//! from the remote, one search per [`consents::PATIENTS_PER_SEARCH`] patients. Only when the
//! upstream sends the gateway's own credentials ([`Upstream::own_credentials`]): read with the
//! caller's token, the remote could leave out the very Consent that denies the caller.
//! Otherwise, or when the remote does not answer the whole set on one page, nothing is given
//! and the access decides those patients' data as denied.

use serde_json::{Map, Value};

use super::Call;
use super::send::{self, Flow};
use crate::interaction::{Gate, Method, consents};

#[cfg(doc)]
use super::Upstream;

/// The page size asked for; a search with more Consents than one page counts as unreadable.
const PAGE: u32 = 1_000;
/// Most levels of Bundles and Parameters looked into for resources.
const MAX_DEPTH: usize = 8;

impl Call<'_> {
    /// Gives the access the Consents of the patients of `roots` (resources, and the resources
    /// in Bundles and Parameters among them) that it wants.
    pub(super) async fn load_consents(&self, gate: &Gate<'_>, roots: &[&Value], base_url: &str) -> Flow<()> {
        if gate.covers_data() {
            return Ok(());
        }
        let mut resources = Vec::new();
        for root in roots {
            resources_in(root, 0, &mut resources);
        }
        for patients in consents::wanted(self.access, &resources).chunks(consents::PATIENTS_PER_SEARCH) {
            let consents = if self.upstream.own_credentials() { self.search(patients, base_url).await? } else { None };
            self.access.give_consents(patients, consents);
        }
        Ok(())
    }

    /// [`Call::load_consents`] for one resource given as a JSON object.
    pub(super) async fn load_consents_of(
        &self,
        gate: &Gate<'_>,
        resource: &Map<String, Value>,
        base_url: &str,
    ) -> Flow<()> {
        if gate.covers_data() {
            return Ok(());
        }
        self.load_consents(gate, &[&Value::Object(resource.clone())], base_url).await
    }

    /// [`Call::load_consents`] for the entries of a Bundle given as a JSON object.
    pub(super) async fn load_consents_in(
        &self,
        gate: &Gate<'_>,
        bundle: &Map<String, Value>,
        base_url: &str,
    ) -> Flow<()> {
        let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let resources: Vec<&Value> = entries.iter().filter_map(|e| e.get("resource")).collect();
        self.load_consents(gate, &resources, base_url).await
    }

    /// The Consents naming one of `patients`, or `None` when the remote did not give them all.
    async fn search(&self, patients: &[String], base_url: &str) -> Flow<Option<Vec<Value>>> {
        let named = patients.iter().map(|p| format!("Patient/{p}")).collect::<Vec<_>>().join(",");
        let query = vec![("patient".to_owned(), named), ("_count".to_owned(), PAGE.to_string())];
        let mut reply = send::answer(self.upstream, &send::request(Method::Get, "Consent", query, base_url)).await?;
        if reply.status != 200 {
            tracing::warn!(status = reply.status, "the remote did not give the Consents; decisions on their data deny");
            return Ok(None);
        }
        let Ok(bundle) = reply.bundle(&["searchset"]) else { return Ok(None) };
        if super::paging::link(&bundle, "next").is_some() {
            return Ok(None);
        }
        let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Ok(Some(
            entries
                .iter()
                .filter_map(|e| e.get("resource"))
                .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Consent"))
                .cloned()
                .collect(),
        ))
    }
}

/// `value` and the resources of the Bundles and Parameters in it, to [`MAX_DEPTH`] levels.
fn resources_in<'v>(value: &'v Value, depth: usize, out: &mut Vec<&'v Value>) {
    if depth > MAX_DEPTH || !value.is_object() {
        return;
    }
    out.push(value);
    let list = |key: &str| value.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    match value.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {
            list("entry").iter().filter_map(|e| e.get("resource")).for_each(|r| resources_in(r, depth + 1, out))
        }
        Some("Parameters") => parts(list("parameter"), depth, out),
        _ => {}
    }
}

/// The resources of `Parameters.parameter` (and their `part`s).
fn parts<'v>(list: &'v [Value], depth: usize, out: &mut Vec<&'v Value>) {
    if depth > MAX_DEPTH {
        return;
    }
    for parameter in list {
        if let Some(resource) = parameter.get("resource") {
            resources_in(resource, depth + 1, out);
        }
        if let Some(Value::Array(inner)) = parameter.get("part") {
            parts(inner, depth + 1, out);
        }
    }
}

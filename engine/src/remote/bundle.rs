//! batch and transaction on a remote (<https://hl7.org/fhir/R4/http.html#transaction>).
//!
//! A batch is run entry by entry: each entry is sent as a request of its own through the same
//! remote path (type-level decision, data-level decisions, `If-Match`), and its answer becomes
//! the entry's response; one failing entry does not affect the others.
//!
//! A transaction is sent whole, so it is all or nothing on the remote. Before anything is sent,
//! every entry is decided at type level (one denial fails the transaction, nothing sent), its
//! search or criteria checked like a request of its own (chains, `_summary=count`); a write
//! entry that would need data-level decisions cannot be enforced inside the remote's atomic
//! transaction and is refused (403, nothing sent: the client may send a batch). Read entries
//! decided per resource are answered by running them again after the transaction through the
//! remote path's own reads (FHIR runs a transaction's reads after its writes), so a hidden
//! resource reads as a missing one there exactly as in a request of its own.

use serde_json::{Value, json};

use super::Call;
use super::send::{self, Flow, Halt};
use crate::access::{Interaction, Target};
use crate::definitions::Definitions;
use crate::error::Error;
use crate::format::check_body_content_type;
use crate::interaction::{Gate, Method, Request, Response, Route, bundle_entry, parse_query, response_entry};
use crate::outcome::{Issue, IssueType};
use crate::search::query;

/// One entry of a batch or transaction, as the client sent it.
struct Entry {
    /// How the entry is named in errors.
    label: String,
    request: Request,
}

pub(super) async fn batch(call: &Call<'_>, request: &Request) -> Flow<Response> {
    let (_, raw) = parse(call, request)?;
    let mut out = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        let response = match entry(request, index, raw) {
            Ok(entry) if entry.request.method == Method::Post && entry.request.path.is_empty() => {
                Err(Halt::Error(Error::bad_request("a bundle inside a bundle is not supported").context(&entry.label)))
            }
            Ok(entry) => call.dispatch(&entry.request).await.map_err(|halt| match halt {
                Halt::Error(e) => Halt::Error(e.context(&entry.label)),
                other => other,
            }),
            Err(e) => Err(Halt::Error(e)),
        };
        out.push(match response {
            Ok(response) => response_entry(&response, None),
            Err(Halt::Upstream(response)) => response_entry(&response, None),
            Err(Halt::Error(e)) => response_entry(&Response::json(e.status(), e.outcome_json()), None),
        });
    }
    Ok(Response::json(
        200,
        json!({ "resourceType": "Bundle", "id": (call.config.ids)(), "type": "batch-response", "entry": out }),
    ))
}

pub(super) async fn transaction(call: &Call<'_>, request: &Request) -> Flow<Response> {
    let (bundle, raw) = parse(call, request)?;
    let entries = raw.iter().enumerate().map(|(i, e)| entry(request, i, e)).collect::<Result<Vec<_>, _>>()?;
    let mut gates = Vec::with_capacity(entries.len());
    for entry in &entries {
        let fail = |e: Error| Halt::Error(e.context(&format!("{}; nothing of the transaction ran", entry.label)));
        let route = Route::parse(&entry.request.path).map_err(fail)?;
        let target = Target::of_route(&entry.request, &route).map_err(fail)?;
        if matches!(target.interaction, Interaction::Batch | Interaction::Transaction) {
            return Err(fail(Error::bad_request("a bundle inside a bundle is not supported")));
        }
        let gate = Gate::open(call.access, target).map_err(fail)?;
        check(call, &gate, &entry.request).map_err(fail)?;
        gates.push(gate);
    }
    let mut sent = send::forwarded(request);
    sent.body = serde_json::to_vec(&bundle).unwrap_or_default();
    let mut reply = send::exchange(call.upstream, &sent).await?;
    let mut answer = reply.bundle(&["transaction-response"])?;
    if let Some(Value::Array(list)) = answer.get_mut("entry") {
        if list.len() != gates.len() {
            return Err(super::bad_gateway("the transaction response has not one entry per request entry"));
        }
        for ((slot, gate), entry) in list.iter_mut().zip(&gates).zip(&entries) {
            if gate.covers_data() {
                continue;
            }
            // Only reads get here (`check` refused writes decided per resource). FHIR runs a
            // transaction's reads after its writes, so running them again on their own, through
            // the remote path's reads, answers what the transaction read, decided exactly as a
            // read, search or history request is (a hidden or deleted resource as a missing one).
            *slot = match call.dispatch(&entry.request).await {
                Ok(response) => response_entry(&response, None),
                Err(Halt::Upstream(response)) => response_entry(&response, None),
                Err(Halt::Error(e)) => response_entry(&Response::json(e.status(), e.outcome_json()), None),
            };
        }
    }
    Ok(Response::json(200, Value::Object(answer)))
}

/// Refuses an entry the transaction cannot enforce: a write decided per resource, a search or
/// criteria with chains through types the client may not search whole, `_summary` / `_elements`
/// decided per resource (the remote would subset the resource before the decision).
fn check(call: &Call<'_>, gate: &Gate<'_>, request: &Request) -> Result<(), Error> {
    let target = gate.target();
    let writes = matches!(
        target.interaction,
        Interaction::Create | Interaction::Update | Interaction::Patch | Interaction::Delete | Interaction::Operation
    );
    let criteria_read = gate.reader(&target.resource_type).is_some_and(|r| r.covers_data());
    let conditional = !request.query.is_empty() || request.headers.if_none_exist.is_some();
    if writes && (!gate.covers_data() || conditional && !criteria_read) {
        return Err(Error::Forbidden(format!(
            "`{}` on `{}` is decided on the resource's data, which a transaction on a remote server cannot enforce: \
             send these entries in a batch",
            target.interaction,
            target.path()
        )));
    }
    let subset = request.query.iter().any(|(k, _)| matches!(k.as_str(), "_summary" | "_elements"));
    if subset && !gate.covers_data() {
        return Err(Error::Forbidden(format!(
            "`_summary` and `_elements` in a transaction's `{}` entry cannot be decided on a remote server \
             (the decision needs the whole resource): send the entry in a batch",
            target.interaction
        )));
    }
    let resource_type = (!target.resource_type.is_empty()).then_some(target.resource_type.as_str());
    let mut params = request.query.clone();
    if let Some(text) = &request.headers.if_none_exist {
        params.extend(parse_query(text.split_once('?').map_or(text.as_str(), |(_, q)| q)));
    }
    if params.is_empty() {
        return Ok(());
    }
    let searched = match target.interaction {
        Interaction::SearchCompartment => None,
        _ => resource_type,
    };
    let limits = query::Limits::from(call.config);
    let parsed = query::parse_within(Definitions::r4(), searched, &params, false, &limits)?;
    gate.check_traversals(&parsed.query)
}

/// The Bundle posted and its entries, checked.
fn parse(call: &Call<'_>, request: &Request) -> Flow<(Value, Vec<Value>)> {
    check_body_content_type(request.headers.content_type.as_deref())?;
    let bundle: Value = serde_json::from_slice(&request.body).map_err(|e| {
        Error::BadRequest(vec![Issue::error(IssueType::Structure, format!("the body is not valid JSON: {e}"))])
    })?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Halt::Error(Error::bad_request(
            "`POST` to the base takes a Bundle of type `batch` or `transaction`",
        )));
    }
    let raw = match bundle.get("entry") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(Halt::Error(Error::bad_request("`Bundle.entry` must be an array"))),
    };
    let max = call.config.max_bundle_entries as usize;
    if raw.len() > max {
        return Err(Halt::Error(Error::PayloadTooLarge(format!(
            "the bundle has {} entries; this server takes at most {max} per bundle",
            raw.len()
        ))));
    }
    Ok((bundle, raw))
}

/// Reads one `Bundle.entry` as the request it stands for, as the engine reads its own.
fn entry(outer: &Request, index: usize, raw: &Value) -> Result<Entry, Error> {
    let parsed = bundle_entry(outer, index, raw)?;
    Ok(Entry { label: parsed.label(), request: parsed.request(outer) })
}

//! `Patient/[id]/$everything` and `Encounter/[id]/$everything`
//! (<https://hl7.org/fhir/R4/patient-operation-everything.html>,
//! <https://hl7.org/fhir/R4/encounter-operation-everything.html>).
//!
//! The record is a compartment search (`Patient/[id]/*`, the R4 CompartmentDefinitions): the
//! owner itself and every resource its compartment holds, in the search's default order, paged
//! like any search (`_count`, `next` links that any replica serves). `_since` keeps resources
//! updated at or after an instant (`_lastUpdated=ge`), `_type` the types listed. Each page also
//! includes (`search.mode = include`) the resources its matches refer to that support the record
//! but sit outside the compartment (practitioners, organizations, locations, medications; the
//! patient for an Encounter), as Microsoft's server, HAPI and Firely do.
//!
//! The decisions are those of a search by the same client: the owner is read and decided first,
//! so a hidden or missing owner answers 404 as a read does; then every match and every included
//! resource is decided before counting and paging, so nothing hidden is returned or counted.

use super::gate::Gate;
use super::read::{live_version, not_found};
use super::search::{self, Listing};
use super::{Engine, Request, Response, percent_encode};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType};
use crate::resource::{format_instant, parse_date_time_start};
use crate::search::query::{self, Include};

/// The parameters `$everything` takes besides the formatting ones.
const PARAMS: [&str; 3] = ["_since", "_type", "_count"];
/// Parameters that only shape the response.
const FORMATTING: [&str; 5] = ["_format", "_pretty", "_summary", "_elements", "_total"];

/// The resource types outside a compartment that its record refers to and includes.
fn supporting(owner_type: &str) -> &'static [&'static str] {
    const PATIENT: &[&str] = &["Practitioner", "PractitionerRole", "Organization", "Location", "Medication"];
    const ENCOUNTER: &[&str] =
        &["Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Group"];
    if owner_type == "Encounter" { ENCOUNTER } else { PATIENT }
}

/// Whether `$name` on `resource_type` is this operation.
pub(super) fn is_everything(name: &str, resource_type: Option<&str>) -> bool {
    name == "everything" && matches!(resource_type, Some("Patient" | "Encounter"))
}

/// The CapabilityStatement's `rest.resource.operation` entry of `resource_type`, if it has
/// `$everything`.
pub(super) fn declared(resource_type: &str) -> Option<serde_json::Value> {
    is_everything("everything", Some(resource_type)).then(|| {
        serde_json::json!({
            "name": "everything",
            "definition": format!("http://hl7.org/fhir/OperationDefinition/{resource_type}-everything"),
        })
    })
}

pub(super) async fn handle(
    engine: &Engine,
    gate: &Gate<'_>,
    request: &Request,
    owner_type: &str,
    owner_id: &str,
) -> Result<Response> {
    let (resumed, rerun) = match search::continuation(engine, gate, request).await? {
        search::Paging::First => (None, None),
        search::Paging::Kept(response) => return Ok(response),
        search::Paging::Rerun(rerun) => (Some(rerun.0), Some(rerun.1)),
    };
    let request = rerun.as_ref().unwrap_or(request);
    // The owner first: a record of a resource the client may not see does not exist for it.
    let current = engine.store.read(owner_type, owner_id).await?;
    if let Some(current) = &current {
        gate.check_outgoing(engine, current, || not_found(owner_type, owner_id)).await?;
    }
    live_version(current, owner_type, owner_id)?;

    let defs = Definitions::r4();
    let (params, mut notes) = translate(request, search::handling_strict(request))?;
    let limits = query::Limits::from(&engine.config);
    let parsed = query::parse_within(defs, None, &params, search::handling_strict(request), &limits)?;
    notes.extend(search::ignored(&parsed.ignored));
    let mut query = parsed.query;
    let types = query.result.types.clone();
    let kept = |t: &str| types.is_empty() || types.iter().any(|k| k == t);
    query.compartment = Some(search::compartment(defs, owner_type, owner_id, kept)?);
    query.result.include = supporting(owner_type)
        .iter()
        .filter(|t| kept(t))
        .map(|t| Include { source_type: "*".into(), param: None, target_type: Some((*t).to_owned()), iterate: false })
        .collect();
    let path = format!("{owner_type}/{owner_id}/$everything");
    let self_query = request
        .query
        .iter()
        .filter(|(k, _)| PARAMS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let listing = Listing { path, self_query, notes, params: request.query.clone() };
    search::answer(engine, gate, request, query, listing, resumed.as_ref()).await
}

/// Search parameters as `(name, value)` pairs.
type Params = Vec<(String, String)>;

/// The search parameters of an `$everything` request, and warnings for what it ignores
/// (`start`, `end` and anything unknown; 400 instead under `Prefer: handling=strict`).
fn translate(request: &Request, strict: bool) -> Result<(Params, Vec<Issue>)> {
    let mut params = Vec::new();
    let mut notes = Vec::new();
    for (key, value) in &request.query {
        match key.as_str() {
            "_since" => {
                let since = parse_date_time_start(value).filter(|_| value.contains('T')).ok_or_else(|| {
                    Error::bad_request(format!("`_since` takes an instant (`2024-01-31T10:00:00Z`), not `{value}`"))
                })?;
                params.push(("_lastUpdated".to_owned(), format!("ge{}", format_instant(since))));
            }
            "_type" | "_count" => params.push((key.clone(), value.clone())),
            k if FORMATTING.contains(&k) => params.push((key.clone(), value.clone())),
            _ if strict => {
                return Err(Error::bad_request(format!("`$everything` does not support the parameter `{key}`")));
            }
            _ => notes.push(Issue::warning(
                IssueType::NotSupported,
                format!("`{key}={value}` was ignored: `$everything` supports `_since`, `_type` and `_count`"),
            )),
        }
    }
    Ok((params, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interaction::{Method, parse_query};

    fn translated(query: &str, strict: bool) -> Result<(Params, usize)> {
        let mut request = Request::new(Method::Get, "Patient/1/$everything", "http://x");
        request.query = parse_query(query);
        translate(&request, strict).map(|(p, notes)| (p, notes.len()))
    }

    #[test]
    fn since_becomes_last_updated_and_unknown_parameters_are_noted() {
        let (params, notes) = translated("_since=2024-01-31T10:00:00%2B02:00&_type=Observation&start=2020", false)
            .map_err(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            params,
            vec![
                ("_lastUpdated".to_owned(), "ge2024-01-31T08:00:00.000Z".to_owned()),
                ("_type".to_owned(), "Observation".to_owned())
            ]
        );
        assert_eq!(notes, 1);
        assert!(translated("start=2020", true).is_err());
        assert!(translated("_since=2024-01-31", false).is_err(), "a date is not an instant");
        assert!(translated("_since=yesterday", false).is_err());
    }

    #[test]
    fn only_patient_and_encounter_have_it() {
        assert!(is_everything("everything", Some("Patient")));
        assert!(is_everything("everything", Some("Encounter")));
        assert!(!is_everything("everything", Some("Observation")));
        assert!(!is_everything("everything", None));
        assert!(!is_everything("export", Some("Patient")));
    }
}

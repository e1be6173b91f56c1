//! The kick-off request's parameters (Bulk Data Access IG 2.0, "Query Parameters"): from the
//! query string of a `GET`, or from a `Parameters` body of a `POST`. Anything the server does not
//! support is a 400, never silently ignored.

use serde_json::Value;

use super::job::Level;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::{Method, Request};
use crate::resource::parse_date_time_start;
use crate::search::query::{self, Limits, ResultParams};

/// What a kick-off asks for, checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// `_type`, as named (empty: every type of the level).
    pub(crate) types: Vec<String>,
    pub(crate) since: Option<String>,
    /// `_typeFilter`: per type, its search parameters.
    pub(crate) filters: Vec<(String, Vec<(String, String)>)>,
    /// `patient` (POST only): patient ids.
    pub(crate) patients: Vec<String>,
}

/// The `_outputFormat` values served (all the same NDJSON).
const FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Parameters a kick-off may carry besides the export's own (the engine's rendering options).
const PASSED: [&str; 2] = ["_format", "_pretty"];

/// Most `patient` values one kick-off may name.
pub(crate) const MAX_PATIENTS: usize = 1000;

/// The kick-off's parameters, as name/value pairs, from its query and (`POST`) its body.
fn pairs(request: &Request) -> Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = request.query.clone();
    if request.method != Method::Post || request.body.is_empty() {
        return Ok(pairs);
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| Error::bad_request(format!("the `$export` body is not JSON: {e}")))?;
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::bad_request("the `$export` body must be a `Parameters` resource"));
    }
    for parameter in body.get("parameter").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default();
        let value = ["valueString", "valueInstant", "valueDateTime", "valueCode", "valueUri"]
            .iter()
            .find_map(|k| parameter.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .or_else(|| parameter.pointer("/valueReference/reference").and_then(Value::as_str).map(str::to_owned));
        let Some(value) = value else {
            return Err(Error::bad_request(format!("the `$export` parameter `{name}` has no value this server reads")));
        };
        pairs.push((name.to_owned(), value));
    }
    Ok(pairs)
}

/// Parses and checks the kick-off at `level`.
pub(crate) fn parse(request: &Request, level: &Level, limits: &Limits) -> Result<Asked> {
    let defs = Definitions::r4();
    let mut asked = Asked::default();
    for (name, value) in pairs(request)? {
        match name.as_str() {
            "_outputFormat" if FORMATS.contains(&value.as_str()) => {}
            "_outputFormat" => {
                return Err(Error::bad_request(format!(
                    "`_outputFormat={value}` is not supported: use `application/fhir+ndjson`"
                )));
            }
            "_type" => {
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !defs.is_resource_type(t) {
                        return Err(Error::bad_request(format!("`_type`: unknown resource type `{t}`")));
                    }
                    if !asked.types.iter().any(|x| x == t) {
                        asked.types.push(t.to_owned());
                    }
                }
            }
            "_since" => {
                if parse_date_time_start(&value).is_none() || !value.contains('T') {
                    return Err(Error::bad_request(format!("`_since={value}` is not a FHIR instant")));
                }
                asked.since = Some(value);
            }
            "_typeFilter" => {
                for filter in split_filters(&value) {
                    asked.filters.push(type_filter(defs, filter, limits)?);
                }
            }
            "patient" if request.method == Method::Post && *level != Level::System => {
                let id = value.strip_prefix("Patient/").unwrap_or_default();
                if !crate::resource::is_valid_id(id) {
                    return Err(Error::bad_request(format!(
                        "`patient` must reference a `Patient/[id]`, not `{value}`"
                    )));
                }
                if !asked.patients.iter().any(|p| p == id) {
                    asked.patients.push(id.to_owned());
                }
            }
            "patient" => {
                return Err(Error::bad_request(
                    "`patient` is taken at the Patient and Group levels, in a `POST` kick-off's `Parameters`",
                ));
            }
            p if PASSED.contains(&p) => {}
            other => {
                return Err(Error::bad_request(format!("the `$export` parameter `{other}` is not supported")));
            }
        }
    }
    if asked.patients.len() > MAX_PATIENTS {
        return Err(Error::bad_request(format!("at most {MAX_PATIENTS} `patient` values are taken")));
    }
    for (t, _) in &asked.filters {
        if !asked.types.is_empty() && !asked.types.contains(t) {
            return Err(Error::bad_request(format!("`_typeFilter` on `{t}`, which `_type` does not name")));
        }
        if asked.filters.iter().filter(|(x, _)| x == t).count() > 1 {
            return Err(Error::bad_request(format!(
                "several `_typeFilter` queries on `{t}` are not supported: combine them into one query"
            )));
        }
    }
    Ok(asked)
}

/// The queries of a `_typeFilter` value: comma-separated, each starting with `Type?` (a comma
/// inside a query, between two values of one parameter, stays in it).
fn split_filters(value: &str) -> Vec<&str> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(value.match_indices(',').map(|(i, _)| i + 1).filter(|&i| {
            let rest = &value[i..];
            rest.split_once('?').is_some_and(|(t, _)| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()))
                && rest.starts_with(|c: char| c.is_ascii_uppercase())
        }))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).map_or(value.len(), |next| next - 1);
            &value[start..end]
        })
        .filter(|q| !q.is_empty())
        .collect()
}

/// One `_typeFilter` query, checked by the search parser as a search of its type would be:
/// criteria only (no result parameters), every parameter known.
fn type_filter(defs: &Definitions, filter: &str, limits: &Limits) -> Result<(String, Vec<(String, String)>)> {
    let Some((resource_type, query_string)) = filter.split_once('?') else {
        return Err(Error::bad_request(format!("`_typeFilter={filter}` is not a `Type?query`")));
    };
    if !defs.is_resource_type(resource_type) {
        return Err(Error::bad_request(format!("`_typeFilter`: unknown resource type `{resource_type}`")));
    }
    let params = crate::interaction::parse_query(query_string);
    let parsed = query::parse_within(defs, Some(resource_type), &params, true, limits)
        .map_err(|e| e.context(&format!("`_typeFilter={filter}`")))?;
    if parsed.query.result != ResultParams::default() {
        return Err(Error::bad_request(format!(
            "`_typeFilter={filter}`: only search criteria are taken, no result parameters (`_count`, `_sort`, \
             `_include`...)"
        )));
    }
    Ok((resource_type.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_split_on_the_commas_that_start_a_query() {
        assert_eq!(
            split_filters("Observation?code=a,b&status=final,Patient?gender=female"),
            vec!["Observation?code=a,b&status=final", "Patient?gender=female"]
        );
        assert_eq!(split_filters("Observation?code=x"), vec!["Observation?code=x"]);
    }

    fn kickoff(method: Method, query: &str, body: &str, level: &Level) -> Result<Asked> {
        let mut request = Request::new(method, "$export", "http://x");
        request.query = crate::interaction::parse_query(query);
        request.body = body.as_bytes().to_vec();
        parse(&request, level, &Limits::from(&crate::EngineConfig::default()))
    }

    #[test]
    fn parameters_are_checked() {
        let ok = kickoff(
            Method::Get,
            "_type=Patient,Observation&_since=2024-01-01T00:00:00Z&_typeFilter=Observation%3Fstatus%3Dfinal\
             &_outputFormat=application%2Ffhir%2Bndjson",
            "",
            &Level::System,
        );
        let asked = ok.unwrap_or_default();
        assert_eq!(asked.types, ["Patient", "Observation"]);
        assert_eq!(asked.filters.len(), 1);
        for bad in [
            "_outputFormat=text/csv",
            "_type=Nope",
            "_since=yesterday",
            "_since=2024-01-01",
            "_elements=id",
            "includeAssociatedData=LatestProvenanceResources",
            "_typeFilter=Observation%3Fnope%3D1",
            "_typeFilter=Observation%3F_count%3D1",
            "_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal",
            "patient=Patient/1",
        ] {
            let answer = kickoff(Method::Get, bad, "", &Level::Patient);
            assert!(matches!(answer, Err(Error::BadRequest(_))), "{bad}: {answer:?}");
        }
    }

    #[test]
    fn post_takes_patients_from_parameters() {
        let body = r#"{"resourceType":"Parameters","parameter":[
            {"name":"patient","valueReference":{"reference":"Patient/p1"}},
            {"name":"_type","valueString":"Observation"}]}"#;
        let asked = kickoff(Method::Post, "", body, &Level::Patient).unwrap_or_default();
        assert_eq!(asked.patients, ["p1"]);
        assert_eq!(asked.types, ["Observation"]);
        assert!(kickoff(Method::Post, "", body, &Level::System).is_err(), "no patient at system level");
        assert!(kickoff(Method::Post, "", r#"{"resourceType":"Patient"}"#, &Level::Patient).is_err());
        let bad = r#"{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Group/1"}}]}"#;
        assert!(kickoff(Method::Post, "", bad, &Level::Patient).is_err());
    }
}

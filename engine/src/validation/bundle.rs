//! The rules R4 sets for a Bundle's entries (<https://hl7.org/fhir/R4/bundle.html>), checked on
//! a Bundle resource (a stored one or one given to `$validate`; not on the transactions and
//! batches the server runs, which these rules exempt):
//!
//! - every entry that holds a resource has a `fullUrl` (but a search's outcome), and it is absolute;
//! - a `fullUrl` that looks like a RESTful server URL (`[base]/[type]/[id]`) ends with the
//!   type and id of the resource it identifies;
//! - references between entries, resolved as R4 says ([`resolve`]): a reference that matches
//!   several entries is ambiguous, one that matches an entry of another type is wrong, and in a
//!   document or a message one that should resolve inside the Bundle but does not is an error.
//!
//! [`unresolved_in_document`] adds, for `$validate`, what the reference validator also reports
//! and writes do not refuse (R4's own Bundle-father breaks it).
//!
//! Bounded: references are looked for down to [`super::MAX_DEPTH`] levels in each entry, and
//! entries are indexed once by `fullUrl`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::MAX_DEPTH;
use super::primitive::shorten;
use crate::definitions::Definitions;
use crate::outcome::{Issue, IssueType};

/// The issues of `bundle`'s entries.
pub(crate) fn check(defs: &Definitions, bundle: &Map<String, Value>) -> Vec<Issue> {
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or_default();
    if matches!(kind, "transaction" | "batch" | "transaction-response" | "batch-response") {
        return Vec::new();
    }
    let entries: Vec<&Map<String, Value>> =
        bundle.get("entry").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    let mut issues = Vec::new();
    let mut by_url: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(resource) = entry.get("resource").and_then(Value::as_object) else { continue };
        let at = format!("Bundle.entry[{i}]");
        let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) else {
            // A search's OperationOutcome is the result of the operation, not an identified resource.
            if entry.get("search").and_then(|s| s.get("mode")).and_then(Value::as_str) == Some("outcome") {
                continue;
            }
            issues.push(
                Issue::error(
                    IssueType::Required,
                    "except in transactions and batches, each entry holding a resource must have a `fullUrl` \
                     (the identity of its resource)",
                )
                .at(at),
            );
            continue;
        };
        by_url.entry(full_url).or_default().push(i);
        if !is_absolute(full_url) {
            issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!("the fullUrl must be an absolute URL (not `{}`)", shorten(full_url)),
                )
                .at(format!("{at}.fullUrl")),
            );
            continue;
        }
        if let Some((resource_type, id, _)) = restful(defs, full_url) {
            let own_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default();
            match resource.get("id").and_then(Value::as_str) {
                None => issues.push(
                    Issue::error(
                        IssueType::Invalid,
                        format!(
                            "the fullUrl `{}` looks like a RESTful server URL, but the resource has no id",
                            shorten(full_url)
                        ),
                    )
                    .at(format!("{at}.fullUrl")),
                ),
                Some(own_id) if own_type != resource_type || own_id != id => issues.push(
                    Issue::error(
                        IssueType::Invalid,
                        format!(
                            "the fullUrl `{}` looks like a RESTful server URL, so it must end with the resource's \
                             type and id (`/{own_type}/{}`)",
                            shorten(full_url),
                            shorten(own_id)
                        ),
                    )
                    .at(format!("{at}.fullUrl")),
                ),
                Some(_) => {}
            }
        }
    }
    let must_resolve = matches!(kind, "document" | "message");
    for (i, entry) in entries.iter().enumerate() {
        let Some(resource) = entry.get("resource") else { continue };
        let source = entry.get("fullUrl").and_then(Value::as_str);
        let mut references = Vec::new();
        collect_references(resource, &format!("Bundle.entry[{i}].resource"), 0, &mut references);
        for (path, reference) in references {
            let Some(target) = resolve(defs, source, reference) else { continue };
            let matches: Vec<&Map<String, Value>> = by_url
                .get(target.url.as_str())
                .into_iter()
                .flatten()
                .filter_map(|&j| entries[j].get("resource").and_then(Value::as_object))
                .filter(|r| target.version.is_none_or(|v| version_of(r) == Some(v)))
                .collect();
            let problem = match matches.as_slice() {
                [] if must_resolve && target.in_bundle => {
                    format!(
                        "`{}` cannot be found in the {kind} Bundle (looked for `{}`)",
                        shorten(reference),
                        shorten(&target.url)
                    )
                }
                [] => continue,
                [found] => match (target.resource_type, found.get("resourceType").and_then(Value::as_str)) {
                    (Some(wanted), Some(actual)) if wanted != actual => format!(
                        "the entry that reference `{}` resolves to is a {actual}, not a {wanted}",
                        shorten(reference)
                    ),
                    _ => continue,
                },
                several => {
                    format!("reference `{}` matches {} entries of the Bundle", shorten(reference), several.len())
                }
            };
            issues.push(Issue::error(IssueType::Invalid, problem).at(path));
        }
    }
    issues
}

/// The entry resource of `bundle` that `reference`, made in the entry resource `source` (or in
/// something it contains), points to, when exactly one matches (for checks of what it points to,
/// such as a `targetProfile`).
pub(crate) fn resolve_entry<'b>(
    defs: &Definitions,
    bundle: &'b Value,
    source: &Value,
    reference: &str,
) -> Option<&'b Value> {
    let entries = bundle.get("entry")?.as_array()?;
    let source_url = entries
        .iter()
        .find(|e| e.get("resource").is_some_and(|r| std::ptr::eq(r, source)))
        .and_then(|e| e.get("fullUrl"))
        .and_then(Value::as_str);
    let target = resolve(defs, source_url, reference)?;
    let mut found = entries.iter().filter(|e| e.get("fullUrl").and_then(Value::as_str) == Some(target.url.as_str()));
    let first = found.next()?.get("resource")?;
    found.next().is_none().then_some(first)
}

/// In a document or a message: relative references (`Practitioner/1`) of entries whose fullUrl
/// is a URN. R4 resolves them against a server, not in the Bundle, so the document does not
/// hold what they refer to; the reference validator reports each as not found in the Bundle.
pub(crate) fn unresolved_in_document(defs: &Definitions, bundle: &Map<String, Value>) -> Vec<Issue> {
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(kind, "document" | "message") {
        return Vec::new();
    }
    let mut issues = Vec::new();
    let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        let (Some(resource), Some(source)) = (entry.get("resource"), entry.get("fullUrl").and_then(Value::as_str))
        else {
            continue;
        };
        if !source.starts_with("urn:") {
            continue;
        }
        let mut references = Vec::new();
        collect_references(resource, &format!("Bundle.entry[{i}].resource"), 0, &mut references);
        for (path, reference) in references {
            if local(defs, reference) {
                let message = format!(
                    "`{}` cannot be found in the {kind} Bundle: a relative reference from an entry whose fullUrl is \
                     a URN points to a server, not into the Bundle",
                    shorten(reference)
                );
                issues.push(Issue::error(IssueType::Invalid, message).at(path));
            }
        }
    }
    issues
}

/// What a reference points to inside a Bundle.
struct Target<'a> {
    /// The `fullUrl` an entry must have.
    url: String,
    /// The version asked for (`/_history/[vid]`).
    version: Option<&'a str>,
    /// The resource type the reference names, when it names one.
    resource_type: Option<&'a str>,
    /// Whether R4 expects it inside the Bundle (a relative reference resolved against a RESTful
    /// `fullUrl`, or a `urn:`), as opposed to an absolute URL that may point anywhere.
    in_bundle: bool,
}

/// Resolves `reference` of the entry whose fullUrl is `source` as R4 says
/// (<https://hl7.org/fhir/R4/bundle.html#references>): an absolute URL is the fullUrl to match; a
/// relative `[type]/[id]` is appended to the root of a RESTful `source` (otherwise it points to
/// a server, not into the Bundle); `#id` is a contained resource, not an entry.
fn resolve<'a>(defs: &Definitions, source: Option<&str>, reference: &'a str) -> Option<Target<'a>> {
    if reference.starts_with('#') || reference.is_empty() {
        return None;
    }
    if is_absolute(reference) {
        let urn = reference.starts_with("urn:");
        let (url, resource_type, version) = match restful(defs, reference) {
            Some((t, _, v)) if !urn => (strip_history(reference), Some(t), v),
            _ => (reference, None, None),
        };
        return Some(Target { url: url.to_owned(), version, resource_type, in_bundle: urn });
    }
    let (resource_type, _, version) = restful(defs, reference)?;
    let relative = strip_history(reference);
    if relative.split('/').count() != 2 {
        return None;
    }
    let source = source.filter(|s| !s.starts_with("urn:"))?;
    let (source_type, _, _) = restful(defs, source)?;
    let source = strip_history(source);
    let root_len = source.rfind(&format!("/{source_type}/"))?;
    Some(Target {
        url: format!("{}/{relative}", &source[..root_len]),
        version,
        resource_type: Some(resource_type),
        in_bundle: true,
    })
}

/// Whether `reference` is a relative `[type]/[id]` (optionally `/_history/[vid]`).
fn local(defs: &Definitions, reference: &str) -> bool {
    !is_absolute(reference) && restful(defs, reference).is_some() && strip_history(reference).split('/').count() == 2
}

/// `[..]/[type]/[id]` (optionally `/_history/[vid]`) where `type` is a resource type: the type,
/// the id and the version.
fn restful<'a>(defs: &Definitions, url: &'a str) -> Option<(&'a str, &'a str, Option<&'a str>)> {
    if url.contains(['?', '#']) || url.starts_with("urn:") {
        return None;
    }
    let mut parts: Vec<&str> = url.rsplitn(5, '/').collect();
    let version = match parts.as_slice() {
        [vid, "_history", ..] => {
            let vid = *vid;
            parts.drain(..2);
            Some(vid)
        }
        _ => None,
    };
    let (id, resource_type) = (*parts.first()?, *parts.get(1)?);
    let id_ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (id_ok && defs.is_resource_type(resource_type)).then_some((resource_type, id, version))
}

/// The URL without its `/_history/[vid]`.
fn strip_history(url: &str) -> &str {
    match url.rfind("/_history/") {
        Some(i) => &url[..i],
        None => url,
    }
}

/// Whether a URI has a scheme (`http:`, `urn:`...).
pub(crate) fn is_absolute(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, _)) => {
            scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        }
        None => false,
    }
}

fn version_of(resource: &Map<String, Value>) -> Option<&str> {
    resource.get("meta")?.get("versionId")?.as_str()
}

/// Every `reference` of the Reference values under `value` (contained resources included), with
/// its location.
pub(crate) fn collect_references<'v>(value: &'v Value, path: &str, depth: usize, out: &mut Vec<(String, &'v str)>) {
    if depth >= MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("reference") {
                out.push((path.to_owned(), reference));
            }
            for (key, child) in object {
                if key != "reference" && !key.starts_with('_') {
                    collect_references(child, &format!("{path}.{key}"), depth + 1, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_references(item, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::definitions::Definitions;

    fn errors(bundle: Value) -> Vec<String> {
        let object = bundle.as_object().cloned().unwrap_or_default();
        super::check(Definitions::r4(), &object).into_iter().map(|i| i.diagnostics).collect()
    }

    fn entry(full_url: &str, resource: Value) -> Value {
        json!({"fullUrl": full_url, "resource": resource})
    }

    #[test]
    fn a_consistent_document_passes() {
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
            entry("http://x.org/fhir/Composition/c", json!({"resourceType": "Composition", "id": "c",
                "subject": {"reference": "Patient/p"}, "author": [{"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}]})),
            entry("http://x.org/fhir/Patient/p", json!({"resourceType": "Patient", "id": "p"})),
            entry("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", json!({"resourceType": "Practitioner"})),
        ]});
        assert_eq!(errors(bundle), Vec::<String>::new());
    }

    #[test]
    fn full_urls_follow_the_r4_rules() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}},
            entry("Patient/b", json!({"resourceType": "Patient", "id": "b"})),
            entry("http://x.org/Patient/c", json!({"resourceType": "Patient", "id": "other"})),
            entry("http://x.org/Patient/d", json!({"resourceType": "Patient"})),
            entry("http://x.org/Observation/e", json!({"resourceType": "Patient", "id": "e"})),
        ]});
        let found = errors(bundle);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].contains("must have a `fullUrl`"));
        assert!(found[1].contains("absolute"));
        assert!(found[4].contains("/Patient/e"));
    }

    #[test]
    fn references_between_entries_must_be_unambiguous_and_of_their_type() {
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
            entry("http://x.org/Composition/c", json!({"resourceType": "Composition", "id": "c",
                "subject": {"reference": "Patient/p"}, "author": [{"reference": "Practitioner/o"}],
                "section": [{"entry": [{"reference": "Observation/missing"}, {"reference": "http://elsewhere.org/Observation/1"}]}]})),
            entry("http://x.org/Patient/p", json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1"}})),
            entry("http://x.org/Patient/p", json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "2"}})),
            entry("http://x.org/Practitioner/o", json!({"resourceType": "Practitioner", "id": "o"})),
        ]});
        let found = errors(bundle);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("matches 2 entries"));
        assert!(found[1].contains("cannot be found"));
        let typed = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            entry("http://x.org/Patient/p", json!({"resourceType": "Patient", "id": "p",
                "generalPractitioner": [{"reference": "http://x.org/Organization/o"}]})),
            entry("http://x.org/Organization/o", json!({"resourceType": "Organization", "id": "o",
                "partOf": {"reference": "Patient/p/_history/1"}})),
        ]});
        // A versioned reference to an entry without that version: not in a collection's scope.
        assert_eq!(errors(typed), Vec::<String>::new());
    }

    #[test]
    fn a_documents_relative_references_from_urn_entries_point_outside_it() {
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
            entry("urn:uuid:10a67a86-a9ec-427e-ba3f-f042cef21733", json!({"resourceType": "Composition",
                "author": [{"reference": "Organization/666"}, {"reference": "urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2"}]})),
            entry("urn:uuid:2aaf815f-3ebe-4a03-9b87-05d0700313b2", json!({"resourceType": "Organization", "id": "666"})),
        ]});
        let object = bundle.as_object().cloned().unwrap_or_default();
        assert_eq!(errors(bundle), Vec::<String>::new(), "not a write's business");
        let found = super::unresolved_in_document(Definitions::r4(), &object);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].expression.as_deref(), Some("Bundle.entry[0].resource.author[0]"));
    }

    #[test]
    fn transactions_and_search_outcomes_are_exempt() {
        let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
        assert_eq!(errors(transaction), Vec::<String>::new());
        let search = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}]});
        assert_eq!(errors(search), Vec::<String>::new());
    }
}

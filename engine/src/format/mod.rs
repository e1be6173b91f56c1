//! Content negotiation and response rendering: `Accept`, `_format`, `_pretty`, request body
//! content types, `_summary` and `_elements`. See <https://hl7.org/fhir/R4/http.html#mime-type>
//! and <https://hl7.org/fhir/R4/search.html#summary>.
//!
//! The engine works on FHIR JSON; FHIR XML is converted at the edges: an XML request body into
//! JSON before anything reads it ([`xml_body_as_json`]), an answer into XML when it is rendered.

mod xml_read;
mod xml_shape;
mod xml_write;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::interaction::Request;

/// The media type a response is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    FhirJson,
    Json,
    FhirXml,
    Xml,
}

impl MediaType {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::FhirJson => "application/fhir+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
            Self::FhirXml => "application/fhir+xml; charset=utf-8",
            Self::Xml => "application/xml; charset=utf-8",
        }
    }

    /// Whether this is one of the XML media types.
    pub fn is_xml(self) -> bool {
        matches!(self, Self::FhirXml | Self::Xml)
    }
}

/// Renders a FHIR resource (JSON with `resourceType`) as a FHIR XML document, in the
/// definitions' element order; a 406 when it has no XML form (a property R4 does not define).
pub fn json_to_xml(resource: &Value, pretty: bool) -> Result<Vec<u8>> {
    xml_write::to_xml(resource, pretty)
}

/// Reads a FHIR XML document into FHIR JSON; a 400 for anything that is not one well-formed R4
/// resource (and for DTDs, undefined entities, nesting beyond the JSON path's limit).
pub fn xml_to_json(xml: &[u8]) -> Result<Value> {
    xml_read::from_xml(xml, xml_read::Leniency::Strict)
}

/// Reads FHIR XML as a client reading what others wrote (TestScripts of other suites, other
/// servers' answers): as [`xml_to_json`], but elements R4 does not define are kept (so the
/// reader can name them), unknown attributes and stray text passed over, malformed primitive
/// values kept as strings, and the root may lack the namespace. Hostile XML (DTDs, undefined
/// entities, deep nesting) is refused all the same.
pub fn xml_to_json_lenient(xml: &[u8]) -> Result<Value> {
    xml_read::from_xml(xml, xml_read::Leniency::Lenient)
}

/// Whether a `Content-Type` names XML.
pub fn is_xml_content_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| matches!(classify(ct), Named::FhirXml | Named::Xml))
}

/// `request` with its FHIR XML body converted to FHIR JSON (and its `Content-Type` with it),
/// or `None` when the body is not XML. Everything behind this reads JSON only.
pub fn xml_body_as_json(request: &Request) -> Result<Option<Request>> {
    if !is_xml_content_type(request.headers.content_type.as_deref()) {
        return Ok(None);
    }
    let mut converted = request.clone();
    if !request.body.iter().all(u8::is_ascii_whitespace) {
        converted.body = render(&xml_to_json(&request.body)?, false);
    }
    converted.headers.content_type = Some(MediaType::FhirJson.content_type().to_string());
    Ok(Some(converted))
}

/// What kind of format a MIME type or `_format` value names.
enum Named {
    FhirJson,
    Json,
    FhirXml,
    Xml,
    Turtle,
    Any,
    Other,
}

fn classify(value: &str) -> Named {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "json" | "application/fhir+json" | "application/json+fhir" => Named::FhirJson,
        "application/json" | "text/json" => Named::Json,
        "xml" | "application/fhir+xml" | "application/xml+fhir" => Named::FhirXml,
        "application/xml" | "text/xml" => Named::Xml,
        "ttl" | "application/fhir+turtle" | "text/turtle" => Named::Turtle,
        "*/*" | "application/*" | "" => Named::Any,
        _ => Named::Other,
    }
}

/// Chooses the response media type from `_format` (which wins) or the `Accept` header.
pub fn negotiate(format_param: Option<&str>, accept: Option<&str>) -> Result<MediaType> {
    if let Some(f) = format_param {
        return match classify(f) {
            Named::FhirJson | Named::Any => Ok(MediaType::FhirJson),
            Named::Json => Ok(MediaType::Json),
            Named::FhirXml => Ok(MediaType::FhirXml),
            Named::Xml => Ok(MediaType::Xml),
            Named::Turtle | Named::Other => Err(Error::NotAcceptable(format!(
                "`_format={f}` is not supported: this server speaks FHIR JSON and FHIR XML"
            ))),
        };
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(MediaType::FhirJson);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let q = range
            .split(';')
            .skip(1)
            .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let media = match classify(range) {
            Named::FhirJson | Named::Any => MediaType::FhirJson,
            Named::Json => MediaType::Json,
            Named::FhirXml => MediaType::FhirXml,
            Named::Xml => MediaType::Xml,
            Named::Turtle | Named::Other => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, media));
        }
    }
    best.map(|(_, m)| m).ok_or_else(|| {
        Error::NotAcceptable(format!("cannot produce any of `{accept}`: this server speaks FHIR JSON and FHIR XML"))
    })
}

/// Checks the `Content-Type` of a request body. A missing type is taken as FHIR JSON; an XML body
/// was converted to JSON before ([`xml_body_as_json`]).
pub(crate) fn check_body_content_type(content_type: Option<&str>) -> Result<()> {
    let Some(ct) = content_type.filter(|c| !c.trim().is_empty()) else {
        return Ok(());
    };
    match classify(ct) {
        Named::FhirJson | Named::Json => Ok(()),
        _ => Err(Error::UnsupportedMediaType(format!(
            "content type `{ct}` is not supported: send `application/fhir+json` or `application/fhir+xml`"
        ))),
    }
}

/// `_summary` values (search.html#summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

impl Summary {
    /// Parses a `_summary` value.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "true" => Ok(Self::True),
            "text" => Ok(Self::Text),
            "data" => Ok(Self::Data),
            "count" => Ok(Self::Count),
            "false" => Ok(Self::False),
            other => Err(Error::bad_request(format!(
                "invalid `_summary` value `{other}`: expected one of true, text, data, count, false"
            ))),
        }
    }
}

/// Elements every subset keeps.
const ALWAYS_KEPT: [&str; 3] = ["resourceType", "id", "meta"];

/// Marks a resource as a subset (`meta.tag` SUBSETTED), as the spec asks.
fn mark_subsetted(resource: &mut Map<String, Value>) {
    let tag = serde_json::json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
        "display": "Resource encoded in summary mode"
    });
    let meta = resource.entry("meta").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if let Value::Array(tags) = meta.entry("tag").or_insert_with(|| Value::Array(Vec::new())) {
            tags.push(tag);
        }
    }
}

/// Applies `_summary` to a resource. `is_summary(type, element)` tells which top-level elements
/// are summary elements (from the definitions); mandatory elements are kept as well.
pub(crate) fn apply_summary(
    resource: &mut Map<String, Value>,
    summary: Summary,
    is_kept_in_summary: impl Fn(&str) -> bool,
    is_mandatory: impl Fn(&str) -> bool,
) {
    let keep: Box<dyn Fn(&str) -> bool> = match summary {
        Summary::False | Summary::Count => return,
        Summary::True => Box::new(|k: &str| is_kept_in_summary(k)),
        Summary::Text => Box::new(|k: &str| k == "text" || is_mandatory(k)),
        Summary::Data => Box::new(|k: &str| k != "text"),
    };
    let before = resource.len();
    resource.retain(|k, _| ALWAYS_KEPT.contains(&k.as_str()) || keep(k.trim_start_matches('_')));
    if resource.len() != before || summary != Summary::Data {
        mark_subsetted(resource);
    }
}

/// Applies `_elements=a,b,c` to a resource: keeps the named top-level elements plus the
/// mandatory ones.
pub(crate) fn apply_elements(
    resource: &mut Map<String, Value>,
    elements: &[String],
    is_mandatory: impl Fn(&str) -> bool,
) {
    resource.retain(|k, _| {
        let base = k.trim_start_matches('_');
        ALWAYS_KEPT.contains(&k.as_str()) || is_mandatory(base) || elements.iter().any(|e| e == base)
    });
    mark_subsetted(resource);
}

/// Renders a FHIR JSON value in `media`: JSON as it is, XML converted.
pub(crate) fn render_as(value: &Value, media: MediaType, pretty: bool) -> Result<Vec<u8>> {
    if media.is_xml() { json_to_xml(value, pretty) } else { Ok(render(value, pretty)) }
}

/// Serialises a JSON value, pretty-printed or compact.
pub(crate) fn render(value: &Value, pretty: bool) -> Vec<u8> {
    let out = if pretty { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) };
    // Serialising a `Value` to memory cannot fail (no I/O, string keys only).
    out.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None, None).ok(), Some(MediaType::FhirJson));
        assert_eq!(negotiate(None, Some("application/json")).ok(), Some(MediaType::Json));
        assert_eq!(negotiate(None, Some("*/*")).ok(), Some(MediaType::FhirJson));
        assert_eq!(
            negotiate(None, Some("application/fhir+xml;q=0.9, application/fhir+json;q=0.8")).ok(),
            Some(MediaType::FhirXml)
        );
        assert_eq!(
            negotiate(None, Some("application/fhir+xml;q=0.5, application/fhir+json")).ok(),
            Some(MediaType::FhirJson)
        );
        assert_eq!(negotiate(None, Some("application/fhir+xml")).ok(), Some(MediaType::FhirXml));
        assert_eq!(negotiate(None, Some("application/xml")).ok(), Some(MediaType::Xml));
        assert_eq!(negotiate(Some("xml"), None).ok(), Some(MediaType::FhirXml));
        assert_eq!(negotiate(Some("application/fhir+xml"), Some("application/json")).ok(), Some(MediaType::FhirXml));
        assert_eq!(negotiate(Some("ttl"), None).map_err(|e| e.status()).err(), Some(406));
        assert_eq!(negotiate(None, Some("text/turtle")).map_err(|e| e.status()).err(), Some(406));
        assert_eq!(negotiate(Some("json"), Some("application/xml")).ok(), Some(MediaType::FhirJson));
        assert_eq!(negotiate(Some("application/json"), None).ok(), Some(MediaType::Json));
    }

    #[test]
    fn body_content_types() {
        assert!(check_body_content_type(None).is_ok());
        assert!(check_body_content_type(Some("application/fhir+json; charset=utf-8")).is_ok());
        assert!(is_xml_content_type(Some("application/fhir+xml; charset=utf-8")));
        assert!(is_xml_content_type(Some("text/xml")));
        assert!(!is_xml_content_type(Some("application/fhir+json")));
        assert_eq!(check_body_content_type(Some("text/plain")).map_err(|e| e.status()).err(), Some(415));
    }

    #[test]
    fn elements_keep_named_and_mandatory() {
        let mut r = serde_json::json!({"resourceType":"Patient","id":"a","active":true,"gender":"male",
            "_gender":{"extension":[]},"name":[{"family":"x"}]});
        if let Some(o) = r.as_object_mut() {
            apply_elements(o, &["gender".to_string()], |_| false);
        }
        let keys: Vec<_> = r.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["resourceType", "id", "gender", "_gender", "meta"]);
        assert_eq!(r["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    #[test]
    fn summary_text_keeps_text_and_mandatory() {
        let mut r = serde_json::json!({"resourceType":"Observation","id":"a","status":"final",
            "text":{"status":"generated","div":"<div/>"},"valueString":"x"});
        if let Some(o) = r.as_object_mut() {
            apply_summary(o, Summary::Text, |_| false, |k| k == "status");
        }
        assert!(r.get("valueString").is_none());
        assert_eq!(r["status"], "final");
        assert!(r.get("text").is_some());
    }
}

#[cfg(test)]
mod xml_tests;

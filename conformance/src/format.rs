//! FHIR's two formats in the runner: a `format` code as a CapabilityStatement writes it, FHIR
//! XML read and written with the engine's converter (the one the server uses), and a request
//! body in either format changed as a resource (JSON or FHIR XML read into JSON, changed, and
//! written back in the format it came in, so an XML update keeps being XML).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::script::{Format, parse_resource};

/// FHIR XML read as a client reads what others wrote: the engine's lenient reading, so an
/// element R4 does not define is kept (and named in a warning) instead of failing the script.
pub(crate) fn xml_to_json(text: &str) -> Result<Value> {
    fhirgate_engine::xml_to_json_lenient(text.as_bytes()).map_err(|e| Error::Xml(e.to_string()))
}

/// FHIR JSON as a FHIR XML document, in the definitions' element order, indented when `pretty`.
/// A property R4 does not define has no XML form: an error.
pub(crate) fn json_to_xml(resource: &Value, pretty: bool) -> Result<String> {
    let bytes = fhirgate_engine::json_to_xml(resource, pretty).map_err(|e| Error::Xml(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::Xml(e.to_string()))
}

/// The format a CapabilityStatement's `format` entry names: `json` or `xml` for the codes and
/// MIME types of either, the entry itself otherwise (`ttl`, ...).
pub(crate) fn format_code(entry: &str) -> String {
    let essence = entry.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "json" | "application/fhir+json" | "application/json+fhir" | "application/json" => "json".to_owned(),
        "xml" | "application/fhir+xml" | "application/xml+fhir" | "application/xml" | "text/xml" => "xml".to_owned(),
        _ => essence,
    }
}

/// `body` (a JSON or XML resource) with its `id` set to `id`; `None` when it is no resource or
/// already has that id.
pub(crate) fn with_id(body: &str, id: &str) -> Option<String> {
    let (Value::Object(mut resource), format) = parse_resource(body).ok()? else { return None };
    if resource.get("id").and_then(Value::as_str) == Some(id) {
        return None;
    }
    resource.insert("id".to_owned(), Value::String(id.to_owned()));
    let resource = Value::Object(resource);
    match format {
        Format::Json => Some(resource.to_string()),
        Format::Xml => json_to_xml(&resource, false).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::{format_code, with_id};

    #[test]
    fn format_codes() {
        assert_eq!(format_code("application/fhir+xml; charset=utf-8"), "xml");
        assert_eq!(format_code("json"), "json");
        assert_eq!(format_code("ttl"), "ttl");
    }

    #[test]
    fn json_and_xml_bodies_get_the_id() {
        assert_eq!(
            with_id(r#"{"resourceType":"Patient","id":"a","active":true}"#, "b").as_deref(),
            Some(r#"{"resourceType":"Patient","id":"b","active":true}"#)
        );
        let xml =
            with_id(r#"<Patient xmlns="http://hl7.org/fhir"><id value="a"/><active value="true"/></Patient>"#, "b")
                .unwrap_or_default();
        assert!(xml.contains(r#"<id value="b"/>"#) && xml.contains(r#"<active value="true"/>"#), "{xml}");
        assert_eq!(with_id(r#"{"resourceType":"Patient","id":"b"}"#, "b"), None);
        assert_eq!(with_id("[1]", "b"), None);
    }
}

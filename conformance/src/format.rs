//! FHIR's two formats in the runner: a `format` code as a CapabilityStatement writes it, and a
//! request body in either format changed as a resource (JSON or FHIR XML read into JSON,
//! changed, and written back in the format it came in, so an XML update keeps being XML).

use serde_json::Value;

use crate::script::{Format, parse_resource};

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
        Format::Xml => crate::xml::from_json(&resource).ok(),
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

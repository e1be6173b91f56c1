//! FHIR XML at the front (<https://hl7.org/fhir/R4/http.html#mime-type>): everything behind the
//! front (routing, id prefixes and URL rewriting, the engine, remote targets) speaks FHIR JSON.
//! A client that asks for XML (`_format` or `Accept`) or sends it (`Content-Type`) has its
//! request body converted to JSON and its negotiation made JSON on the way in, and every answer
//! written to it (errors of authentication and policy included) converted to XML on the way out.
//! A `_format` that asked for XML is put back into a Bundle's links (they name the search as it
//! was sent behind the front), so a client following `next` keeps getting XML.

use fhirgate_engine::interaction::{Request, Response, parse_query, percent_encode};
use fhirgate_engine::{Error as FhirError, MediaType};
use pingora::http::RequestHeader;

/// The format the client asked its answers in, when it is XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFormat {
    /// The XML media type asked for; `None` for JSON (or a format the engine refuses itself).
    xml: Option<MediaType>,
    pretty: bool,
    /// The `_format` value, when it is what asked for XML.
    by_param: Option<String>,
}

impl ClientFormat {
    /// What the request head asks for: `_format` (which wins) or `Accept`, and `_pretty`.
    pub fn of(header: &RequestHeader) -> Self {
        let query = header.uri.query().unwrap_or("");
        let accept = header.headers.get("accept").and_then(|v| v.to_str().ok());
        // Most requests name no XML at all: no query parsing for them.
        if !query.contains("xml") && !accept.is_some_and(|a| a.contains("xml")) {
            return Self::default();
        }
        let pairs = parse_query(query);
        let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let xml = fhirgate_engine::negotiate(param("_format"), accept).ok().filter(|m| m.is_xml());
        let by_param = param("_format").filter(|_| xml.is_some()).map(str::to_owned);
        Self { xml, pretty: param("_pretty") == Some("true"), by_param }
    }

    /// Whether the answers go to the client as XML.
    pub fn is_xml(&self) -> bool {
        self.xml.is_some()
    }

    /// Makes `request` JSON for everything behind the front: an XML body converted (a 400 when
    /// it is not FHIR XML), a negotiation naming XML replaced by JSON.
    pub fn json_request(&self, request: &mut Request) -> Result<(), FhirError> {
        if let Some(converted) = fhirgate_engine::xml_body_as_json(request)? {
            *request = converted;
        }
        if self.is_xml() {
            request.query.retain(|(k, _)| k != "_format");
            request.headers.accept = Some("application/fhir+json".into());
        }
        Ok(())
    }

    /// The answer as the client asked for it.
    pub fn answer(&self, mut response: Response) -> Response {
        let Some(media) = self.xml else { return response };
        if let Some(format) = &self.by_param {
            with_format_in_links(&mut response, format);
        }
        response.in_media(media, self.pretty)
    }
}

/// Adds `_format=…` to the links of a JSON Bundle answer.
fn with_format_in_links(response: &mut Response, format: &str) {
    if !response.header("Content-Type").is_some_and(|t| t.contains("json")) {
        return;
    }
    let Ok(mut bundle) = serde_json::from_slice::<serde_json::Value>(&response.body) else { return };
    let Some(links) = bundle.get_mut("link").and_then(serde_json::Value::as_array_mut) else { return };
    let param = format!("_format={}", percent_encode(format));
    for url in links.iter_mut().filter_map(|l| l.get_mut("url")) {
        if let Some(text) = url.as_str().filter(|u| !u.contains("_format=")) {
            let separator = if text.contains('?') { '&' } else { '?' };
            *url = serde_json::Value::String(format!("{text}{separator}{param}"));
        }
    }
    response.body = serde_json::to_vec(&bundle).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use fhirgate_engine::interaction::Method;

    use super::*;

    fn head(uri: &str, accept: Option<&str>) -> RequestHeader {
        let mut header = RequestHeader::build("GET", uri.as_bytes(), None).unwrap_or_else(|_| unreachable!());
        if let Some(accept) = accept {
            let _ = header.insert_header("Accept", accept);
        }
        header
    }

    #[test]
    fn asked_by_format_or_accept() {
        assert!(!ClientFormat::of(&head("/Patient", None)).is_xml());
        assert!(!ClientFormat::of(&head("/Patient", Some("application/fhir+json"))).is_xml());
        assert!(ClientFormat::of(&head("/Patient", Some("application/fhir+xml"))).is_xml());
        assert!(ClientFormat::of(&head("/Patient?_format=xml", Some("application/json"))).is_xml());
        assert!(
            !ClientFormat::of(&head("/Patient?_format=json", Some("application/fhir+xml"))).is_xml(),
            "_format wins"
        );
        assert!(!ClientFormat::of(&head("/Patient?name=xml", None)).is_xml());
        let pretty = ClientFormat::of(&head("/Patient?_format=application%2Ffhir%2Bxml&_pretty=true", None));
        assert_eq!(pretty.xml, Some(MediaType::FhirXml));
        assert!(pretty.pretty);
        assert_eq!(pretty.by_param.as_deref(), Some("application/fhir+xml"));
    }

    #[test]
    fn requests_go_on_as_json_and_answers_come_back_as_xml() {
        let format = ClientFormat::of(&head("/Patient?_format=xml", None));
        let mut request = Request::new(Method::Post, "Patient", "http://gw");
        request.query.push(("_format".into(), "xml".into()));
        request.headers.content_type = Some("application/fhir+xml".into());
        request.body = br#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>"#.to_vec();
        assert!(format.json_request(&mut request).is_ok());
        assert_eq!(request.body, br#"{"resourceType":"Patient","active":true}"#);
        assert!(request.query.is_empty());
        assert_eq!(request.headers.content_type.as_deref(), Some("application/fhir+json; charset=utf-8"));

        let mut bad = Request::new(Method::Post, "Patient", "http://gw");
        bad.headers.content_type = Some("application/fhir+xml".into());
        bad.body = b"<!DOCTYPE x><Patient/>".to_vec();
        assert_eq!(format.json_request(&mut bad).map_err(|e| e.status()), Err(400));

        let answer = format.answer(Response::rendered(
            201,
            "application/fhir+json",
            br#"{"resourceType":"Patient","id":"a"}"#.to_vec(),
        ));
        assert_eq!(answer.header("Content-Type"), Some("application/fhir+xml; charset=utf-8"));
        assert!(
            String::from_utf8_lossy(&answer.body).contains("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\"/>")
        );
        let page = format.answer(Response::rendered(
            200,
            "application/fhir+json",
            br#"{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"http://gw/?_getpages=t"}]}"#
                .to_vec(),
        ));
        assert!(
            String::from_utf8_lossy(&page.body).contains(r#"<url value="http://gw/?_getpages=t&amp;_format=xml"/>"#),
            "the client's _format stays in the links"
        );
        let health = format.answer(Response::rendered(200, "application/json", br#"{"status":"ok"}"#.to_vec()));
        assert_eq!(health.body, br#"{"status":"ok"}"#, "not a FHIR resource: left as it is");
    }
}

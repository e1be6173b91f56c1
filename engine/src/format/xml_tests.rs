//! FHIR XML both ways: the shapes of <https://hl7.org/fhir/R4/xml.html> on small resources, and
//! hostile documents refused with a 400.

use serde_json::{Value, json};

use super::{json_to_xml, xml_to_json};

fn xml(value: &Value) -> String {
    String::from_utf8(json_to_xml(value, false).unwrap_or_default()).unwrap_or_default()
}

fn status_of(xml: &str) -> u16 {
    xml_to_json(xml.as_bytes()).map_or_else(|e| e.status(), |_| 200)
}

#[test]
fn primitives_choices_extensions_and_order() {
    let patient = json!({
        "resourceType": "Patient",
        "gender": "female",
        "id": "p1",
        "_birthDate": {"id": "b", "extension": [{"url": "http://x/e", "valueDateTime": "2020-01-01T10:00:00Z"}]},
        "birthDate": "1970-01-01",
        "name": [{"given": ["Ann", null, "Zoe"], "_given": [null, {"extension": [{"url": "u", "valueString": "x"}]}, null]}],
        "multipleBirthInteger": 2,
        "active": true,
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &amp; b<br/></p></div>"}
    });
    let text = xml(&patient);
    assert!(
        text.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Patient xmlns=\"http://hl7.org/fhir\"><id value=\"p1\"/><text>"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &amp; b<br/></p></div></text><active value=\"true\"/>"
        ),
        "{text}"
    );
    assert!(text.contains("<given value=\"Ann\"/><given><extension url=\"u\"><valueString value=\"x\"/></extension></given><given value=\"Zoe\"/>"), "{text}");
    assert!(
        text.contains(
            "<gender value=\"female\"/><birthDate id=\"b\" value=\"1970-01-01\"><extension url=\"http://x/e\">"
        ),
        "{text}"
    );
    assert!(text.contains("<multipleBirthInteger value=\"2\"/>"), "{text}");
    let back = xml_to_json(text.as_bytes()).ok();
    assert_eq!(back.as_ref(), Some(&patient));
    let keys: Vec<String> = back.and_then(|b| b.as_object().map(|o| o.keys().cloned().collect())).unwrap_or_default();
    assert_eq!(
        keys,
        ["resourceType", "id", "text", "active", "name", "gender", "birthDate", "_birthDate", "multipleBirthInteger"]
    );
}

#[test]
fn decimals_keep_their_digits_and_strings_their_whitespace() {
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "a \"b\" <c>\n\td"},
        "valueQuantity": {"value": 1.50, "unit": "mg"}, "component": [{"code": {"text": "x"}, "valueQuantity": {"value": 1e-7}}]});
    let observation: Value = serde_json::from_str(&observation.to_string().replace("1.5", "1.50")).unwrap_or_default();
    let text = xml(&observation);
    assert!(text.contains("<value value=\"1.50\"/>"), "{text}");
    assert!(text.contains("value=\"a &quot;b&quot; &lt;c&gt;&#10;&#9;d\""), "{text}");
    let back = xml_to_json(text.as_bytes()).ok().unwrap_or_default();
    assert_eq!(back.to_string(), observation.to_string(), "same text, digits and order");
}

#[test]
fn contained_and_bundle_resources_are_wrapped() {
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "a",
            "contained": [{"resourceType": "Organization", "id": "o", "name": "Acme"}],
            "managingOrganization": {"reference": "#o"}}}]});
    let text = xml(&bundle);
    assert!(text.contains("<resource><Patient><id value=\"a\"/><contained><Organization><id value=\"o\"/>"), "{text}");
    assert_eq!(xml_to_json(text.as_bytes()).ok(), Some(bundle));
}

#[test]
fn pretty_xml_reads_the_same() {
    let patient = json!({"resourceType": "Patient", "id": "p", "name": [{"family": "F", "given": ["A"]}],
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}});
    let pretty = String::from_utf8(json_to_xml(&patient, true).unwrap_or_default()).unwrap_or_default();
    assert!(pretty.contains("\n  <name>\n    <family value=\"F\"/>"), "{pretty}");
    assert!(
        pretty.contains("\n    <status value=\"generated\"/>\n    <div xmlns="),
        "the narrative on its own line: {pretty}"
    );
    assert_eq!(xml_to_json(pretty.as_bytes()).ok(), Some(patient));
}

#[test]
fn what_xml_cannot_say_is_a_406() {
    let status = |v: Value| json_to_xml(&v, false).map_or_else(|e| e.status(), |_| 200);
    assert_eq!(status(json!({"resourceType": "Patient", "unknown": 1})), 406);
    assert_eq!(status(json!({"resourceType": "NoSuchType"})), 406);
    assert_eq!(status(json!([1])), 406);
    assert_eq!(status(json!({"resourceType": "Patient", "name": [{"family": "a\u{1}b"}]})), 406, "control character");
    let broken = "<div xmlns=\"http://www.w3.org/1999/xhtml\"></div><id value=\"x\"/>";
    assert_eq!(status(json!({"resourceType": "Patient", "text": {"status": "generated", "div": broken}})), 406);
    assert_eq!(status(json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>"}})), 406);
}

#[test]
fn malformed_and_hostile_xml_is_a_400() {
    const NS: &str = "xmlns=\"http://hl7.org/fhir\"";
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
         <Patient {NS}><id value=\"&lol2;\"/></Patient>"
    );
    assert_eq!(status_of(&laughs), 400, "billion laughs");
    let xxe =
        format!("<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Patient {NS}><id value=\"&x;\"/></Patient>");
    assert_eq!(status_of(&xxe), 400, "external entity");
    assert_eq!(status_of(&format!("<Patient {NS}><id value=\"&x;\"/></Patient>")), 400, "undeclared entity");
    let deep = format!("<Questionnaire {NS}>{}{}</Questionnaire>", "<item>".repeat(200), "</item>".repeat(200));
    assert_eq!(status_of(&deep), 400, "nested beyond the limit");
    let attributes: String = (0..10_000).map(|i| format!(" a{i}=\"x\"")).collect();
    assert_eq!(status_of(&format!("<Patient {NS}{attributes}/>")), 400, "many attributes");
    let huge = "x".repeat(1 << 20);
    assert_eq!(status_of(&format!("<Patient {NS}><id value=\"a\" bad=\"{huge}\"/></Patient>")), 400);
    for bad in [
        "",
        "not xml",
        "<Patient/>",
        "<Patient xmlns=\"http://example.org\"/>",
        "<Nothing xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><unknown value=\"1\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"yes\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/><active value=\"true\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active>true</active></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><multipleBirthInteger value=\"01\"/></Patient>",
        "<Observation xmlns=\"http://hl7.org/fhir\"><valueQuantity><value value=\" 1\"/></valueQuantity></Observation>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><contained/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><text><div xmlns=\"http://www.w3.org/1999/xhtml\">&nbsp;</div></text></Patient>",
    ] {
        assert_eq!(status_of(bad), 400, "{bad}");
    }
}

#[test]
fn the_xml_declaration_bom_comments_and_schema_hints_are_allowed() {
    let text = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?><!-- c --><Patient xmlns=\"http://hl7.org/fhir\" \
                xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://hl7.org/fhir patient.xsd\">\
                <!-- c --><id value=\"a\"/><active value=\"false\"/></Patient>\n";
    assert_eq!(xml_to_json(text.as_bytes()).ok(), Some(json!({"resourceType": "Patient", "id": "a", "active": false})));
}

#[test]
fn lenient_reading_keeps_what_r4_does_not_define_and_refuses_what_is_hostile() {
    let lenient = |text: &str| super::xml_to_json_lenient(text.as_bytes());
    let script = "<TestScript><name value=\"t\"/><origin><index value=\"1\"/><profile><code value=\"x\"/></profile>\
                  </origin><oldThing value=\"a\"/><oldThing value=\"b\"/><status value=\"active\" colour=\"red\"/>\
                  stray text<test><name value=\"n\"/></test></TestScript>";
    assert_eq!(
        lenient(script).ok(),
        Some(json!({"resourceType": "TestScript", "name": "t", "status": "active", "test": [{"name": "n"}],
            "origin": [{"index": 1, "profile": {"code": "x"}}], "oldThing": ["a", "b"]}))
    );
    assert_eq!(status_of(script), 400, "strictly, the same document is refused");
    assert_eq!(
        lenient("<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"yes\"/><multipleBirthInteger value=\"01\"/></Patient>").ok(),
        Some(json!({"resourceType": "Patient", "active": "yes", "multipleBirthInteger": "01"})),
        "values of the wrong form stay strings"
    );
    let deep = format!("<Patient>{}{}</Patient>", "<odd>".repeat(200), "</odd>".repeat(200));
    for hostile in [
        "<!DOCTYPE p [<!ENTITY x \"y\">]><Patient><id value=\"&x;\"/></Patient>",
        "<Patient><id value=\"&x;\"/></Patient>",
        "<Patient><odd>&x;</odd></Patient>",
        deep.as_str(),
        "<Nothing/>",
        "<Patient><odd>",
    ] {
        assert_eq!(lenient(hostile).map_err(|e| e.status()).err(), Some(400), "{hostile}");
    }
}

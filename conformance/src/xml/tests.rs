#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

use serde_json::json;

use super::{from_json, to_json};

#[test]
fn primitives_arrays_and_types() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <id value="p1"/>
  <!-- a comment -->
  <active value="true"/>
  <name>
    <family value="O&apos;Brien &amp; Co"/>
    <given value="Anna"/>
    <given value="Maria"/>
  </name>
  <birthDate value="1970-01-01">
    <extension url="http://example.org/time">
      <valueTime value="12:00:00"/>
    </extension>
  </birthDate>
  <multipleBirthInteger value="2"/>
</Patient>"#;
    assert_eq!(
        to_json(xml).unwrap(),
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "active": true,
            "name": [{"family": "O'Brien & Co", "given": ["Anna", "Maria"]}],
            "birthDate": "1970-01-01",
            "_birthDate": {"extension": [{"url": "http://example.org/time", "valueTime": "12:00:00"}]},
            "multipleBirthInteger": 2
        })
    );
}

#[test]
fn narrative_contained_and_backbone_elements() {
    let xml = r#"<Bundle xmlns="http://hl7.org/fhir">
  <type value="searchset"/>
  <total value="1"/>
  <entry>
    <fullUrl value="http://x/Observation/o"/>
    <resource>
      <Observation>
        <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a &lt; b</p></div></text>
        <contained><Patient><id value="c"/></Patient></contained>
        <status value="final"/>
        <code><coding><system value="http://loinc.org"/><code value="1-8"/></coding></code>
        <valueQuantity><value value="1.50"/><unit value="mg"/></valueQuantity>
        <component><code><text value="x"/></code><valueString value="y"/></component>
      </Observation>
    </resource>
  </entry>
</Bundle>"#;
    let json = to_json(xml).unwrap();
    assert_eq!(json["total"], json!(1));
    let observation = &json["entry"][0]["resource"];
    assert_eq!(observation["resourceType"], "Observation");
    assert_eq!(observation["text"]["div"], r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &lt; b</p></div>"#);
    assert_eq!(observation["contained"], json!([{"resourceType": "Patient", "id": "c"}]));
    assert_eq!(observation["code"]["coding"][0]["code"], "1-8");
    assert_eq!(observation["valueQuantity"]["value"].to_string(), "1.50");
    assert_eq!(observation["component"][0]["valueString"], "y");
}

#[test]
fn repeating_primitive_with_an_extension_on_one_item() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><given value="A"/><given id="g2"><extension url="u"><valueBoolean value="false"/></extension></given></name></Patient>"#;
    assert_eq!(
        to_json(xml).unwrap()["name"][0],
        json!({"given": ["A", null], "_given": [null, {"id": "g2", "extension": [{"url": "u", "valueBoolean": false}]}]})
    );
}

#[test]
fn unknown_elements_are_kept_and_bad_roots_refused() {
    let json = to_json(r#"<TestScript xmlns="http://hl7.org/fhir"><origin><index value="1"/></origin><oldThing value="x"/></TestScript>"#).unwrap();
    assert_eq!(json["oldThing"], "x");
    assert!(to_json("<NotAResource/>").is_err());
    assert!(to_json("<Patient><id value='x'/>").is_err());
}

#[test]
fn json_to_xml_and_back_is_the_same_resource() {
    let resources = [
        json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "2"}, "active": true,
               "name": [{"given": ["A", null], "_given": [null, {"id": "g", "extension": [{"url": "u", "valueInteger": 3}]}], "family": "F"}],
               "birthDate": "1970-01-01", "_birthDate": {"extension": [{"url": "t", "valueTime": "12:00:00"}]},
               "extension": [{"url": "http://x", "valueString": "a < b & \"c\""}],
               "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p></div>"}}),
        json!({"resourceType": "Bundle", "type": "collection", "total": 1, "entry": [{"resource":
               {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "valueQuantity": {"value": 1.50, "unit": "mg"},
                "contained": [{"resourceType": "Patient", "id": "c"}]}}]}),
    ];
    for resource in resources {
        let xml = from_json(&resource).unwrap();
        assert_eq!(to_json(&xml).unwrap(), resource, "{xml}");
    }
}

#[test]
fn xml_elements_come_in_definition_order() {
    let patient = json!({"resourceType": "Patient", "gender": "male", "id": "p", "name": [{"given": ["G"], "family": "F", "id": "n1"}]});
    assert_eq!(
        from_json(&patient).unwrap(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><id value="p"/><name id="n1"><family value="F"/><given value="G"/></name><gender value="male"/></Patient>"#
    );
}

//! Unit tests of the primitive formats, with the edge cases of the spec's regexes.

use serde_json::{Value, json};

use super::check;

fn ok(type_name: &str, value: Value) -> bool {
    check(type_name, &value).is_ok()
}

#[test]
fn json_types_matter() {
    assert!(ok("boolean", json!(true)));
    assert!(!ok("boolean", json!("true")));
    assert!(ok("integer", json!(-5)));
    assert!(!ok("integer", json!("5")));
    assert!(!ok("integer", json!(1.5)));
    assert!(!ok("integer", json!(2_147_483_648_i64)));
    assert!(ok("integer", json!(2_147_483_647)));
    assert!(ok("unsignedInt", json!(0)));
    assert!(!ok("unsignedInt", json!(-1)));
    assert!(!ok("positiveInt", json!(0)));
    assert!(ok("positiveInt", json!(1)));
    assert!(ok("decimal", json!(1.50)));
    assert!(ok("decimal", json!(3)));
    assert!(!ok("decimal", json!("1.5")));
    assert!(!ok("string", json!(5)));
    assert!(!ok("date", json!(2020)));
    assert_eq!(
        check("boolean", &json!("true")),
        Err("a boolean must be a JSON boolean, found string `true`".to_owned())
    );
}

#[test]
fn strings() {
    assert!(ok("string", json!(" padded\ttext\r\n")));
    assert!(!ok("string", json!("")));
    assert!(!ok("string", json!("bell\u{7}")));
    assert!(ok("markdown", json!("# title\n\n*x*")));
    assert!(ok("code", json!("final")));
    assert!(ok("code", json!("a b")));
    assert!(!ok("code", json!(" final")));
    assert!(!ok("code", json!("final ")));
    assert!(!ok("code", json!("a  b")));
    assert!(ok("id", json!("abc-1.2")));
    assert!(!ok("id", json!("a_b")));
    assert!(ok("id", json!("a".repeat(64))));
    assert!(!ok("id", json!("a".repeat(65))));
    assert!(ok("uri", json!("http://example.org/x?y=1")));
    assert!(ok("canonical", json!("http://hl7.org/fhir/ValueSet/x|4.0.1")));
    assert!(!ok("url", json!("http://example.org/a b")));
    assert!(!ok("uri", json!("")));
    assert_eq!(check("uri", &json!("")), Err("empty string is not a valid uri".to_owned()));
}

#[test]
fn identifiers() {
    assert!(ok("oid", json!("urn:oid:1.2.840.10008")));
    assert!(!ok("oid", json!("urn:oid:3.2")));
    assert!(!ok("oid", json!("urn:oid:1")));
    assert!(!ok("oid", json!("urn:oid:1.02")));
    assert!(!ok("oid", json!("1.2.3")));
    assert!(ok("uuid", json!("urn:uuid:c757873d-ec9a-4326-a141-556f43239520")));
    assert!(!ok("uuid", json!("urn:uuid:C757873D-EC9A-4326-A141-556F43239520")));
    assert!(!ok("uuid", json!("c757873d-ec9a-4326-a141-556f43239520")));
}

#[test]
fn base64_and_xhtml() {
    assert!(ok("base64Binary", json!("SGVsbG8=")));
    assert!(ok("base64Binary", json!("SGVs\nbG8=")));
    assert!(!ok("base64Binary", json!("SGVsbG8")));
    assert!(!ok("base64Binary", json!("SGV*bG8=")));
    assert!(ok("xhtml", json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">hi</div>")));
    assert!(!ok("xhtml", json!("hi")));
}

#[test]
fn dates_and_times() {
    for good in ["2020", "2020-02", "2020-02-29", "0001-01-01"] {
        assert!(ok("date", json!(good)), "{good}");
    }
    for bad in ["0000", "2020-2", "2020-13", "2021-02-29", "2020-04-31", "2020-01-01T10:00:00Z", "20"] {
        assert!(!ok("date", json!(bad)), "{bad}");
    }
    for good in [
        "2015",
        "2015-02-07",
        "2015-02-07T13:28:17-05:00",
        "2017-01-01T00:00:00.000Z",
        "2017-01-01T23:59:60+14:00",
        "2017-01-01T00:00:00.1234+13:59",
    ] {
        assert!(ok("dateTime", json!(good)), "{good}");
    }
    for bad in [
        "2015-02T10:00:00Z",
        "2015-02-07T13:28:17",
        "2015-02-07T13:28Z",
        "2015-02-07T24:00:00Z",
        "2015-02-07T10:00:00+14:30",
        "2015-02-07T10:00:00.Z",
        "2015-02-07 10:00:00Z",
    ] {
        assert!(!ok("dateTime", json!(bad)), "{bad}");
    }
    assert!(ok("instant", json!("2015-02-07T13:28:17.239+02:00")));
    assert!(!ok("instant", json!("2015-02-07")));
    assert!(!ok("instant", json!("2015-02-07T13:28:17")));
    assert!(ok("time", json!("13:28:17")));
    assert!(ok("time", json!("13:28:17.5")));
    assert!(!ok("time", json!("13:28")));
    assert!(!ok("time", json!("13:28:17Z")));
    assert_eq!(check("date", &json!("2020-13-01")), Err("invalid date `2020-13-01`".to_owned()));
}

#[test]
fn strings_hold_at_most_one_megabyte() {
    let limit = super::MAX_STRING_BYTES;
    assert!(ok("string", json!("a".repeat(limit))));
    let long = check("string", &json!("a".repeat(limit + 1))).err().unwrap_or_default();
    assert!(long.contains("1 MB"), "{long}");
    assert!(!ok("markdown", json!("a".repeat(limit + 1))));
}

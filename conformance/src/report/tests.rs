#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::path::Path;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::validate;

use crate::http::{Request, Response};
use crate::run::result::{ActionKind, ActionResult, Exchange, Outcome, ScriptResult, TestResult};

fn result() -> ScriptResult {
    let mut result = ScriptResult::not_run(Path::new("dir/a&b.json"), "http://server", String::new());
    result.error = None;
    result.name = "A<B>".into();
    let request = Request {
        method: "POST".into(),
        url: "http://server/Patient".into(),
        headers: vec![("Authorization".into(), "Bearer very-secret".into())],
        body: Some(r#"{"resourceType":"Patient"}"#.into()),
    };
    let response =
        Response::new(201, vec![("ETag".into(), "W/\"1\"".into())], r#"{"resourceType":"Patient","id":"1"}"#.into());
    let mut operation = ActionResult::new(ActionKind::Operation, "create", Outcome::Pass, "POST → 201");
    operation.exchange = Some(Exchange { request, response: Some(response), millis: 3 });
    result.tests = vec![
        TestResult {
            name: "t1".into(),
            description: String::new(),
            actions: vec![
                operation,
                ActionResult::new(ActionKind::Assert, "check", Outcome::Fail, "<script>alert(1)</script>"),
            ],
        },
        TestResult {
            name: "t2".into(),
            description: "d".into(),
            actions: vec![ActionResult::new(ActionKind::Assert, "later", Outcome::Skip, "setup failed")],
        },
    ];
    result
}

#[test]
fn html_escapes_hides_the_token_and_indents_json() {
    let page = super::html::html(&[result()]);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>"));
    assert!(page.contains("Authorization: (hidden)") && !page.contains("very-secret"));
    assert!(page.contains("A&lt;B&gt;") && page.contains("a&amp;b.json"));
    assert!(page.contains("&quot;id&quot;: &quot;1&quot;"), "JSON bodies are indented");
}

#[test]
fn junit_counts_failures_and_skips() {
    let xml = super::junit::junit(&[result()]);
    assert!(xml.contains(r#"<testsuite name="A&lt;B&gt;" tests="2" failures="1" errors="0" skipped="1""#), "{xml}");
    assert!(xml.contains(r#"<failure message="check: &lt;script&gt;alert(1)&lt;/script&gt;"/>"#), "{xml}");
    assert!(xml.contains(r#"<skipped message="setup failed"/>"#), "{xml}");
    let mut reader = quick_xml::Reader::from_str(&xml);
    while !matches!(reader.read_event().unwrap(), quick_xml::events::Event::Eof) {}
}

#[test]
fn test_reports_are_valid_r4_even_for_scripts_that_did_not_run() {
    let not_run = ScriptResult::not_run(Path::new("x.json"), "http://server", "invalid JSON".into());
    for result in [result(), not_run] {
        let report = super::testreport::test_report(&result);
        assert_eq!(report["result"], "fail");
        assert!(validate(Definitions::r4(), &report).is_empty(), "{:#?}", validate(Definitions::r4(), &report));
    }
}

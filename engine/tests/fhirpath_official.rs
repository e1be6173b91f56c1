//! Runs the official FHIRPath test suite for R4 (`tests/data/fhirpath/tests-fhir-r4.xml`, from
//! FHIR/fhir-test-cases) and fails if fewer cases pass than [`FLOOR`]. The XML inputs it names
//! are read as their JSON twins from the R4 package; cases whose input is missing count as
//! failures.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;

use std::collections::HashMap;

use fhirgate_engine::fhirpath::{Env, Item, evaluate, parse};
use serde_json::Value;

/// The pass count reached; raise it when more cases pass, never lower it.
const FLOOR: usize = 908;

#[derive(Debug)]
struct Case {
    name: String,
    input: String,
    expression: String,
    invalid: bool,
    predicate: bool,
    outputs: Vec<(String, String)>,
}

#[test]
fn official_fhirpath_suite() {
    let dir = common::manifest_dir().join("tests/data/fhirpath");
    let xml = std::fs::read_to_string(dir.join("tests-fhir-r4.xml")).unwrap();
    let cases = read_cases(&xml);
    let mut inputs: HashMap<String, Option<Value>> = HashMap::new();
    let mut passed = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let input = inputs.entry(case.input.clone()).or_insert_with(|| {
            let file = case.input.replace(".xml", ".json");
            std::fs::read_to_string(dir.join(file)).ok().and_then(|t| serde_json::from_str(&t).ok())
        });
        let outcome = run(case, input.as_ref());
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{}: `{}`: {why}", case.name, case.expression.trim())),
        }
    }
    if std::env::var_os("FHIRPATH_FAILURES").is_some() {
        for failure in &failures {
            println!("FAIL {failure}");
        }
    }
    println!("FHIRPath official tests: {passed} of {} pass", cases.len());
    assert!(passed >= FLOOR, "{passed} pass, below the floor of {FLOOR}");
}

fn run(case: &Case, input: Option<&Value>) -> Result<(), String> {
    let null = Value::Null;
    let input = match input {
        Some(input) => input,
        None if case.input.is_empty() => &null,
        None => return Err(format!("input `{}` missing", case.input)),
    };
    let result = parse(&case.expression).and_then(|expr| evaluate(&expr, input, &Env::new()));
    let items = match (result, case.invalid) {
        (Err(_), true) => return Ok(()),
        (Ok(items), true) => return Err(format!("expected an error, got {} items", items.len())),
        (Err(e), false) => return Err(e.to_string()),
        (Ok(items), false) => items,
    };
    let actual: Vec<(String, String)> = if case.predicate {
        vec![("boolean".into(), (!items.is_empty()).to_string())]
    } else {
        items.iter().map(describe).collect()
    };
    let same = actual.len() == case.outputs.len()
        && actual
            .iter()
            .zip(&case.outputs)
            .all(|(a, e)| (e.0.is_empty() || a.0.eq_ignore_ascii_case(&e.0)) && a.1 == e.1);
    if same { Ok(()) } else { Err(format!("expected {:?}, got {actual:?}", case.outputs)) }
}

/// The (type, text) of an item as the suite writes outputs.
fn describe(item: &Item<'_>) -> (String, String) {
    let type_name = item.type_name().unwrap_or("?").to_owned();
    let text = match item {
        Item::Node(_) => match item.to_json().as_deref() {
            Some(Value::String(s)) => match type_name.as_str() {
                "date" | "dateTime" | "instant" => format!("@{s}"),
                "time" => format!("@T{s}"),
                _ => s.clone(),
            },
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        },
        Item::String(s) => s.clone(),
        Item::Temporal(t) => match type_name.as_str() {
            "Time" => format!("@T{t}"),
            _ => format!("@{t}"),
        },
        Item::Quantity(v, u) => format!("{v} '{u}'"),
        other => match other.to_json().as_deref() {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        },
    };
    (type_name, text)
}

/// A small reader for the suite's XML: `<test>` elements with `<expression>` and `<output>`.
fn read_cases(xml: &str) -> Vec<Case> {
    let xml = strip_comments(xml);
    let mut cases = Vec::new();
    let mut rest = xml.as_str();
    while let Some(start) = rest.find("<test ").or_else(|| rest.find("<test>")) {
        let Some(len) = rest[start..].find("</test>") else { break };
        let body = &rest[start..start + len];
        rest = &rest[start + len + 7..];
        let head_end = body.find('>').unwrap_or(body.len());
        let head = &body[..head_end];
        let mut case = Case {
            name: attribute(head, "name").unwrap_or_default(),
            input: attribute(head, "inputfile").unwrap_or_default(),
            expression: String::new(),
            invalid: false,
            predicate: attribute(head, "predicate").as_deref() == Some("true"),
            outputs: Vec::new(),
        };
        if let Some((tag, text)) = element(body, "expression") {
            case.invalid = attribute(tag, "invalid").is_some();
            case.expression = unescape(text);
        }
        let mut outputs = body;
        while let Some(i) = outputs.find("<output") {
            outputs = &outputs[i..];
            let Some((tag, text)) = element(outputs, "output") else { break };
            case.outputs.push((attribute(tag, "type").unwrap_or_default(), unescape(text)));
            outputs = &outputs[1..];
        }
        cases.push(case);
    }
    cases
}

fn strip_comments(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("-->").map_or("", |j| &rest[i + j + 3..]);
    }
    out.push_str(rest);
    out
}

/// The first `<name ...>text</name>` (or `<name .../>`) in `body`: its start tag and text.
fn element<'b>(body: &'b str, name: &str) -> Option<(&'b str, &'b str)> {
    let start = body.find(&format!("<{name}"))?;
    let tag_end = start + body[start..].find('>')?;
    let tag = &body[start..tag_end];
    if tag.ends_with('/') {
        return Some((tag, ""));
    }
    let close = body[tag_end..].find(&format!("</{name}>"))?;
    Some((tag, &body[tag_end + 1..tag_end + close]))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut search = tag;
    loop {
        let i = search.find(name)?;
        let before_ok = i > 0 && search.as_bytes()[i - 1].is_ascii_whitespace();
        let after = search[i + name.len()..].trim_start();
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                let quote = value.chars().next()?;
                let end = value[1..].find(quote)?;
                return Some(unescape(&value[1..1 + end]));
            }
        }
        search = &search[i + name.len()..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

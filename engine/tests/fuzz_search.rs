//! Fuzz target: the search query parser (`query::parse_within`) on arbitrary keys and values, on
//! keys assembled from real parameter names, modifiers, chains and `_has`, and on chains
//! thousands of links deep. It must never panic or overflow the stack; it answers a parsed
//! search within the limits, or a 400 (`Error::BadRequest`) with at least one issue.

mod fuzz;

use fhirgate_engine::Error;
use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::search::query::{Clause, Limits, Predicate, chain_depth, parse_within};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Pieces real keys are made of.
const PIECES: &[&str] = &[
    "subject",
    "subject:Patient",
    "patient",
    "organization",
    "partof",
    "name",
    "family",
    "general-practitioner",
    "performer",
    "code",
    "_id",
    "_has:Observation:patient:",
    "_has:Observation:subject:",
    "_has:AuditEvent:entity:",
    "_has:",
    ".",
    ":",
    ":exact",
    ":missing",
    ":not",
    ":text",
    ":identifier",
    "_count",
    "_sort",
    "_include",
    "_type",
    "_summary",
];

fn structured_key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..24).prop_map(|pieces| pieces.concat())
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9|,$\\\\:/.*-]{0,30}",
        any::<String>(),
        Just("Patient/1".to_owned()),
        Just("true".to_owned()),
        Just("ge2020-01-01".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![structured_key(), any::<String>(), "[a-z_:.\\-]{0,40}"]
}

/// A chain `depth` links deep, through reference parameters that exist.
fn deep_chain() -> impl Strategy<Value = (String, usize)> {
    (0usize..4_000, prop::bool::ANY).prop_map(|(depth, has)| {
        let key = if has {
            format!("{}name", "_has:Patient:organization:".repeat(depth))
        } else {
            format!("subject:Patient.organization{}.name", ".partof".repeat(depth))
        };
        let links = chain_depth(&key);
        (key, links)
    })
}

/// The deepest chain or `_has` nesting of a clause, counted without recursion.
fn depth_of(clause: &Clause) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(clause, 0usize)];
    while let Some((clause, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        for alternative in &clause.alternatives {
            match alternative {
                Predicate::Chain(chain) => stack.push((&chain.next, depth + 1)),
                Predicate::Has(has) => stack.push((&has.next, depth + 1)),
                _ => {}
            }
        }
    }
    deepest
}

/// Parses and checks the answer's shape.
fn check(
    resource_type: Option<&str>,
    params: &[(String, String)],
    strict: bool,
    limits: &Limits,
) -> Result<(), TestCaseError> {
    match parse_within(Definitions::r4(), resource_type, params, strict, limits) {
        Ok(parsed) => {
            for clause in &parsed.query.clauses {
                prop_assert!(depth_of(clause) <= limits.chain_depth(), "a clause deeper than the limit: {clause:?}");
            }
            for (key, _) in params {
                prop_assert!(
                    chain_depth(key) <= limits.chain_depth() || parsed.ignored.iter().any(|(k, _, _)| k == key)
                );
            }
            Ok(())
        }
        Err(Error::BadRequest(issues)) => {
            prop_assert!(!issues.is_empty());
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("unexpected error kind: {other:?}"))),
    }
}

#[test]
fn arbitrary_and_structured_parameters() {
    let resource_type = prop::sample::select(&["Observation", "Patient", "Organization", "Encounter"][..]);
    let params = prop::collection::vec((key(), value()), 0..6);
    let strategy = (resource_type, params, prop::bool::ANY, 0usize..6);
    fuzz::run("search parameters", fuzz::CASES, strategy, |(resource_type, params, strict, depth)| {
        let limits = Limits { max_chain_depth: depth, ..Limits::default() };
        check(Some(resource_type), &params, strict, &limits)?;
        // The same parameters as a system search.
        check(None, &params, strict, &limits)
    });
}

#[test]
fn deep_chains_and_reverse_chains_are_refused_without_recursion() {
    let strategy = (deep_chain(), 0usize..40);
    fuzz::run("deep chains", 64, strategy, |((key, links), max)| {
        let limits = Limits { max_chain_depth: max, ..Limits::default() };
        let resource_type = if key.starts_with("_has") { "Organization" } else { "Observation" };
        let params = vec![(key, "x".to_owned())];
        let result = parse_within(Definitions::r4(), Some(resource_type), &params, true, &limits);
        if links > limits.chain_depth() {
            prop_assert!(matches!(result, Err(Error::BadRequest(_))), "{links} links passed: {result:?}");
        }
        check(Some(resource_type), &params, false, &limits)
    });
}

#[test]
fn many_and_long_parameters_are_refused() {
    let strategy = (1usize..400, 0usize..200_000);
    fuzz::run("sizes", 32, strategy, |(count, length)| {
        let mut params: Vec<(String, String)> = (0..count).map(|i| ("name".to_owned(), format!("n{i}"))).collect();
        params.push(("_id".to_owned(), format!("{}a", "a,".repeat(length / 2))));
        let limits = Limits::default();
        let total: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
        let result = parse_within(Definitions::r4(), Some("Patient"), &params, false, &limits);
        if params.len() > limits.max_params || total > limits.max_bytes {
            prop_assert!(matches!(result, Err(Error::BadRequest(_))));
        } else {
            prop_assert!(result.is_ok(), "{result:?}");
        }
        Ok(())
    });
}

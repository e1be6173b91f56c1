//! Known answers for the query parser, one test per area of search.html.
#![expect(clippy::panic, reason = "a test fails by panicking")]

use super::limits::CHAIN_DEPTH_CEILING;
use super::*;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn parsed(resource_type: &str, pairs: &[(&str, &str)]) -> ParsedSearch {
    match parse(Definitions::r4(), Some(resource_type), &params(pairs), true) {
        Ok(p) => p,
        Err(e) => panic!("{pairs:?}: {e}"),
    }
}

/// The predicates of the only clause of a strict search.
fn one(resource_type: &str, key: &str, value: &str) -> Vec<Predicate> {
    let mut q = parsed(resource_type, &[(key, value)]).query;
    assert_eq!(q.clauses.len(), 1);
    q.clauses.remove(0).alternatives
}

fn issues(resource_type: Option<&str>, pairs: &[(&str, &str)], strict: bool) -> Vec<String> {
    match parse(Definitions::r4(), resource_type, &params(pairs), strict) {
        Ok(p) => panic!("{pairs:?} parsed: {p:?}"),
        Err(Error::BadRequest(issues)) => issues.into_iter().map(|i| i.diagnostics).collect(),
        Err(e) => panic!("{e}"),
    }
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn strings_default_exact_contains() {
    assert_eq!(
        one("Patient", "name", "Müller"),
        [Predicate::String { mode: StringMatch::StartsWith, value: s("muller") }]
    );
    assert_eq!(
        one("Patient", "name:exact", "Müller"),
        [Predicate::String { mode: StringMatch::Exact, value: s("Müller") }]
    );
    assert_eq!(
        one("Patient", "family:contains", "EV"),
        [Predicate::String { mode: StringMatch::Contains, value: s("ev") }]
    );
    // Comma is OR, `\,` a literal comma.
    assert_eq!(one("Patient", "name", "a,b\\,c").len(), 2);
    assert_eq!(one("Patient", "name", "b\\,c"), [Predicate::String { mode: StringMatch::StartsWith, value: s("b,c") }]);
}

#[test]
fn tokens_in_all_four_forms_and_modifiers() {
    let tok = |system: TokenSystem, code: Option<&str>| Predicate::Token {
        not: false,
        token: Token { system, code: code.map(str::to_owned) },
    };
    assert_eq!(one("Observation", "code", "1234-5"), [tok(TokenSystem::Any, Some("1234-5"))]);
    assert_eq!(
        one("Observation", "code", "http://loinc.org|1234-5"),
        [tok(TokenSystem::Is(s("http://loinc.org")), Some("1234-5"))]
    );
    assert_eq!(one("Observation", "code", "|1234-5"), [tok(TokenSystem::None, Some("1234-5"))]);
    assert_eq!(one("Observation", "code", "http://loinc.org|"), [tok(TokenSystem::Is(s("http://loinc.org")), None)]);
    assert_eq!(
        one("Patient", "gender:not", "male"),
        [Predicate::Token { not: true, token: Token { system: TokenSystem::Any, code: Some(s("male")) } }]
    );
    assert_eq!(one("Observation", "code:text", "Blood Préssure"), [Predicate::TokenText(s("blood pressure"))]);
    assert_eq!(
        one("Patient", "identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053"),
        [Predicate::OfType {
            type_system: s("http://terminology.hl7.org/CodeSystem/v2-0203"),
            type_code: s("MR"),
            value: s("446053")
        }]
    );
    assert_eq!(
        one("Observation", "code:in", "http://vs"),
        [Predicate::Concepts { modifier: ConceptMatch::In, value: s("http://vs") }]
    );
    assert_eq!(
        one("Observation", "code:below", "http://loinc.org|1234"),
        [Predicate::Concepts { modifier: ConceptMatch::Below, value: s("http://loinc.org|1234") }]
    );
    assert_eq!(one("Patient", "_id", "abc"), [tok(TokenSystem::Any, Some("abc"))]);
    assert_eq!(one("Patient", "_tag", "http://s|t"), [tok(TokenSystem::Is(s("http://s")), Some("t"))]);
}

#[test]
fn every_prefix() {
    for (text, prefix) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
        ("", Prefix::Eq),
    ] {
        assert_eq!(Prefix::split(&format!("{text}2020")), (prefix, "2020"));
        match one("Patient", "birthdate", &format!("{text}2020")).as_slice() {
            [Predicate::Date { prefix: p, .. }] => assert_eq!(*p, prefix),
            other => panic!("{other:?}"),
        }
        match one("RiskAssessment", "probability", &format!("{text}0.8")).as_slice() {
            [Predicate::Number { prefix: p, .. }] => assert_eq!(*p, prefix),
            other => panic!("{other:?}"),
        }
        assert_eq!(Prefix::split(&format!("{text}1")).0.code(), if text.is_empty() { "eq" } else { text });
    }
}

#[test]
fn date_precision_ranges() {
    let date = |prefix, start: &str, end: &str| Predicate::Date { prefix, start: s(start), end: s(end) };
    assert_eq!(
        one("Patient", "birthdate", "2020"),
        [date(Prefix::Eq, "2020-01-01T00:00:00.000Z", "2020-12-31T23:59:59.999Z")]
    );
    assert_eq!(
        one("Patient", "birthdate", "ge2020-03"),
        [date(Prefix::Ge, "2020-03-01T00:00:00.000Z", "2020-03-31T23:59:59.999Z")]
    );
    assert_eq!(
        one("Observation", "date", "lt2013-04-02T09:30:10+01:00"),
        [date(Prefix::Lt, "2013-04-02T08:30:10.000Z", "2013-04-02T08:30:10.999Z")]
    );
    assert_eq!(
        one("Patient", "_lastUpdated", "gt2021-06-01"),
        [date(Prefix::Gt, "2021-06-01T00:00:00.000Z", "2021-06-01T23:59:59.999Z")]
    );
}

#[test]
fn numbers_and_quantities_keep_implicit_precision() {
    assert_eq!(
        one("RiskAssessment", "probability", "100"),
        [Predicate::Number { prefix: Prefix::Eq, value: s("100"), low: s("99.5"), high: s("100.5") }]
    );
    let q = |value: &str, low: &str, high: &str, system: Option<&str>, code: Option<&str>| Predicate::Quantity {
        prefix: Prefix::Le,
        value: s(value),
        low: s(low),
        high: s(high),
        system: system.map(s),
        code: code.map(s),
    };
    assert_eq!(
        one("Observation", "value-quantity", "le5.4|http://unitsofmeasure.org|mg"),
        [q("5.4", "5.35", "5.45", Some("http://unitsofmeasure.org"), Some("mg"))]
    );
    assert_eq!(one("Observation", "value-quantity", "le5.4||mg"), [q("5.4", "5.35", "5.45", None, Some("mg"))]);
    assert_eq!(one("Observation", "value-quantity", "le5.4"), [q("5.4", "5.35", "5.45", None, None)]);
}

#[test]
fn references_and_uris() {
    let local = |types: &[&str], id: &str| {
        Predicate::Reference(ReferenceTarget::Local { types: types.iter().map(|t| s(t)).collect(), id: s(id) })
    };
    assert_eq!(one("Observation", "subject", "123"), [local(&[], "123")]);
    assert_eq!(one("Observation", "subject", "Patient/123"), [local(&["Patient"], "123")]);
    assert_eq!(one("Observation", "subject:Patient", "123"), [local(&["Patient"], "123")]);
    assert_eq!(
        one("Observation", "subject", "http://other.org/fhir/Patient/1"),
        [Predicate::Reference(ReferenceTarget::Url(s("http://other.org/fhir/Patient/1")))]
    );
    assert_eq!(
        one("Observation", "subject:identifier", "http://ids|42"),
        [Predicate::ReferenceIdentifier(Token { system: TokenSystem::Is(s("http://ids")), code: Some(s("42")) })]
    );
    assert!(matches!(one("Observation", "subject", "Patient/1/_history/2").as_slice(), [Predicate::Unsupported(_)]));
    assert_eq!(one("Observation", "subject:missing", "true"), [Predicate::Missing(true)]);
    assert_eq!(one("Patient", "birthdate:missing", "false"), [Predicate::Missing(false)]);
    assert_eq!(
        one("ValueSet", "url:below", "http://acme.org/fhir/"),
        [Predicate::Uri { mode: UriMatch::Below, value: s("http://acme.org/fhir/") }]
    );
    // R4 types `_profile` and `_source` as uri, `_security` as token.
    assert_eq!(
        one("Patient", "_profile", "http://p"),
        [Predicate::Uri { mode: UriMatch::Exact, value: s("http://p") }]
    );
    assert_eq!(one("Patient", "_source", "http://s"), [Predicate::Uri { mode: UriMatch::Exact, value: s("http://s") }]);
    assert!(matches!(one("Patient", "_security", "http://s|R").as_slice(), [Predicate::Token { .. }]));
}

#[test]
fn composite_components_are_parsed_by_their_types() {
    match one("Observation", "code-value-quantity", "http://loinc.org|8480-6$lt60").as_slice() {
        [Predicate::Composite { components, values }] => {
            assert_eq!(components, &[s("code"), s("value-quantity")]);
            assert_eq!(
                values,
                &[
                    Predicate::Token {
                        not: false,
                        token: Token { system: TokenSystem::Is(s("http://loinc.org")), code: Some(s("8480-6")) }
                    },
                    Predicate::Quantity {
                        prefix: Prefix::Lt,
                        value: s("60"),
                        low: s("59.5"),
                        high: s("60.5"),
                        system: None,
                        code: None
                    },
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let errors = issues(Some("Observation"), &[("code-value-quantity", "8480-6")], false);
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn chains_single_typed_and_multi_level() {
    match one("Observation", "subject:Patient.name", "peter").as_slice() {
        [Predicate::Chain(chain)] => {
            assert_eq!(chain.target_types, [s("Patient")]);
            assert_eq!(chain.next.param, "name");
            assert_eq!(
                chain.next.alternatives,
                [Predicate::String { mode: StringMatch::StartsWith, value: s("peter") }]
            );
        }
        other => panic!("{other:?}"),
    }
    match one("Patient", "general-practitioner.organization.name", "acme").as_slice() {
        [Predicate::Chain(first)] => {
            // Only PractitionerRole among the targets has `organization`.
            assert_eq!(first.target_types, [s("PractitionerRole")]);
            match first.next.alternatives.as_slice() {
                [Predicate::Chain(second)] => {
                    assert_eq!(second.target_types, [s("Organization")]);
                    assert_eq!(second.next.param, "name");
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // Ambiguous: every target with a `name` is kept.
    match one("Observation", "subject.name", "x").as_slice() {
        [Predicate::Chain(chain)] => {
            assert!(chain.target_types.len() > 1, "{:?}", chain.target_types);
            assert!(chain.target_types.contains(&s("Patient")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reverse_chains_nest() {
    match one("Patient", "_has:Observation:patient:code", "1234-5").as_slice() {
        [Predicate::Has(has)] => {
            assert_eq!((has.resource_type.as_str(), has.reference_param.as_str()), ("Observation", "patient"));
            assert_eq!(has.next.param, "code");
        }
        other => panic!("{other:?}"),
    }
    match one("Patient", "_has:Observation:patient:_has:AuditEvent:entity:agent", "MyUserId").as_slice() {
        [Predicate::Has(outer)] => match outer.next.alternatives.as_slice() {
            [Predicate::Has(inner)] => assert_eq!(inner.resource_type, "AuditEvent"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let errors = issues(Some("Patient"), &[("_has:Observation:code:code", "1")], false);
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn result_parameters() {
    let q = parsed(
        "Observation",
        &[
            ("_count", "10"),
            ("_sort", "-date,code"),
            ("_total", "accurate"),
            ("_summary", "count"),
            ("_elements", "id,code"),
            ("_include", "Observation:subject:Patient"),
            ("_include:iterate", "*"),
            ("_revinclude", "Provenance:target"),
            ("_format", "json"),
            ("_pretty", "true"),
        ],
    )
    .query;
    let r = &q.result;
    assert!(q.clauses.is_empty());
    assert_eq!(r.count, Some(10));
    assert_eq!(
        r.sort,
        [SortKey { param: s("date"), descending: true }, SortKey { param: s("code"), descending: false }]
    );
    assert_eq!((r.total, r.summary), (Some(Total::Accurate), Some(Summary::Count)));
    assert_eq!(r.elements, [s("id"), s("code")]);
    assert_eq!(
        r.include,
        [
            Include {
                source_type: s("Observation"),
                param: Some(s("subject")),
                target_type: Some(s("Patient")),
                iterate: false
            },
            Include { source_type: s("*"), param: None, target_type: None, iterate: true },
        ]
    );
    assert_eq!(r.revinclude[0].source_type, "Provenance");
}

#[test]
fn system_search_uses_type_or_common_parameters() {
    let defs = Definitions::r4();
    let p = parse(defs, None, &params(&[("_type", "Patient,Practitioner"), ("name", "x")]), true);
    assert!(matches!(p, Ok(ref p) if p.query.result.types.len() == 2 && p.query.clauses.len() == 1), "{p:?}");
    assert!(parse(defs, None, &params(&[("_id", "1")]), true).is_ok());
    assert_eq!(issues(None, &[("name", "x")], true).len(), 1);
}

#[test]
fn lenient_skips_unknown_but_rejects_bad_values() {
    let defs = Definitions::r4();
    let pairs = params(&[("foo", "1"), ("name:sounds-like", "x"), ("gender", "male"), ("_sort", "nope")]);
    let Ok(p) = parse(defs, Some("Patient"), &pairs, false) else { panic!("lenient must parse") };
    assert_eq!(p.query.clauses.len(), 1);
    let skipped: Vec<&str> = p.ignored.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(skipped, ["_sort", "foo", "name:sounds-like"]);
    assert!(p.ignored.iter().all(|(_, _, why)| why.contains('`')));
    // Malformed values of known parameters are a 400 even when lenient.
    assert_eq!(issues(Some("Patient"), &[("birthdate", "notadate")], false).len(), 1);
    assert_eq!(issues(Some("Patient"), &[("_count", "-1")], false).len(), 1);
}

#[test]
fn strict_reports_every_problem_together() {
    let found = issues(
        Some("Patient"),
        &[
            ("foo", "1"),
            ("name:sounds-like", "x"),
            ("birthdate", "notadate"),
            ("_count", "-1"),
            ("gender:missing", "maybe"),
            ("_total", "all"),
        ],
        true,
    );
    assert_eq!(found.len(), 6, "{found:?}");
    assert!(found.iter().any(|m| m.contains("`foo`")), "{found:?}");
    assert!(found.iter().all(|m| m.chars().next().is_some_and(|c| !c.is_uppercase())), "{found:?}");
    // Lenient: only the malformed values.
    assert_eq!(issues(Some("Patient"), &[("foo", "1"), ("birthdate", "x"), ("_count", "y")], false).len(), 2);
}

#[test]
fn renders_what_was_applied() {
    let q = parsed(
        "Observation",
        &[("code", "http://loinc.org|1234-5"), ("date", "ge2020"), ("_count", "5"), ("_sort", "-date")],
    )
    .query;
    assert_eq!(to_query_string(&q), "code=http://loinc.org|1234-5&date=ge2020&_sort=-date&_count=5");
    let q = parsed("Patient", &[("name", "a b&c")]).query;
    assert_eq!(to_query_string(&q), "name=a%20b%26c");
}

#[test]
fn bad_references_and_chains_are_reported() {
    // A type that is no target of the parameter is a malformed value.
    assert_eq!(issues(Some("Observation"), &[("subject", "Foo/1")], false).len(), 1);
    // Chaining a non-reference, or through a type that is no target, is unsupported.
    assert_eq!(issues(Some("Patient"), &[("name.family", "x")], true).len(), 1);
    assert_eq!(issues(Some("Observation"), &[("subject:Foo.name", "x")], true).len(), 1);
    let lenient = parse(Definitions::r4(), Some("Patient"), &params(&[("name.family", "x")]), false);
    assert!(matches!(lenient, Ok(ref p) if p.ignored.len() == 1 && p.query.clauses.is_empty()), "{lenient:?}");
}

#[test]
fn escapes_split_and_unescape() {
    assert_eq!(value::split_escaped(r"a\\,b\,c,d", ','), [s(r"a\\"), s(r"b\,c"), s("d")]);
    assert_eq!(value::unescape(r"b\,c\$d\|e\\"), r"b,c$d|e\");
    assert_eq!(value::token(r"http://s|a\|b"), Token { system: TokenSystem::Is(s("http://s")), code: Some(s("a|b")) });
}

fn limited(resource_type: &str, pairs: &[(String, String)], limits: &Limits) -> Result<ParsedSearch, Error> {
    parse_within(Definitions::r4(), Some(resource_type), pairs, false, limits)
}

fn owned(key: &str, value: &str) -> Vec<(String, String)> {
    vec![(key.to_owned(), value.to_owned())]
}

/// The diagnostics of a 400, or a panic.
fn refused(result: Result<ParsedSearch, Error>) -> String {
    match result {
        Err(Error::BadRequest(issues)) => issues.into_iter().map(|i| i.diagnostics).collect::<Vec<_>>().join("; "),
        other => panic!("expected a 400: {other:?}"),
    }
}

#[test]
fn chains_deeper_than_the_limit_are_refused_before_parsing() {
    let limits = Limits::default();
    let four = "subject:Patient.organization.partof.partof.name";
    assert_eq!(chain_depth(four), 4);
    assert!(limited("Observation", &owned(four, "x"), &limits).is_ok());
    let five = "subject:Patient.organization.partof.partof.partof.name";
    let message = refused(limited("Observation", &owned(five, "x"), &limits));
    assert!(message.contains("at most 4") && message.contains("max_chain_depth"), "{message}");
    // 3,000 levels: refused from the key alone, the message does not echo 20 KB.
    let hostile = format!("subject:Patient.organization{}.name", ".partof".repeat(3_000));
    let message = refused(limited("Observation", &owned(&hostile, "x"), &limits));
    assert!(message.len() < 300 && message.contains("3002 chain"), "{message}");
    // Also under lenient handling, with an unknown parameter beside it.
    let mut pairs = owned(&hostile, "x");
    pairs.push(("unknown-thing".to_owned(), "1".to_owned()));
    refused(limited("Observation", &pairs, &limits));
}

#[test]
fn reverse_chains_count_as_levels_also_nested_and_mixed() {
    let limits = Limits { max_chain_depth: 2, ..Limits::default() };
    let two = "_has:Observation:patient:_has:AuditEvent:entity:agent";
    assert!(limited("Patient", &owned(two, "u"), &limits).is_ok());
    let three = "_has:Observation:patient:_has:AuditEvent:entity:_has:Provenance:target:agent";
    assert!(refused(limited("Patient", &owned(three, "u"), &limits)).contains("at most 2"));
    let mixed = "_has:Observation:patient:performer:Practitioner.name";
    assert!(limited("Patient", &owned(mixed, "u"), &limits).is_ok());
    let deeper = "_has:Observation:patient:performer:Practitioner.organization.name";
    refused(limited("Patient", &owned(deeper, "u"), &limits));
    let hostile = format!("_has{}", ":Observation:patient:_has".repeat(5_000));
    refused(limited("Patient", &owned(&hostile, "u"), &limits));
    // No chain at all when the limit is 0; a configured limit never passes the ceiling.
    let none = Limits { max_chain_depth: 0, ..Limits::default() };
    refused(limited("Observation", &owned("subject.name", "x"), &none));
    assert!(limited("Observation", &owned("subject", "Patient/1"), &none).is_ok());
    assert_eq!(Limits { max_chain_depth: 10_000, ..Limits::default() }.chain_depth(), CHAIN_DEPTH_CEILING);
}

#[test]
fn too_many_or_too_long_parameters_are_refused() {
    let limits = Limits { max_params: 3, max_bytes: 100, ..Limits::default() };
    let pairs: Vec<(String, String)> = (0..4).map(|i| ("name".to_owned(), format!("n{i}"))).collect();
    assert!(refused(limited("Patient", &pairs, &limits)).contains("4 parameters"));
    assert!(limited("Patient", &pairs[..3], &limits).is_ok());
    let long = owned("name", &"a,".repeat(60));
    assert!(refused(limited("Patient", &long, &limits)).contains("max_search_bytes"));
}

#[test]
fn the_engine_configuration_defaults_to_the_default_limits() {
    assert_eq!(Limits::from(&crate::interaction::EngineConfig::default()), Limits::default());
}

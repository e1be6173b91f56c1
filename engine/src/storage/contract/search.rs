//! Contract cases for [`Store::search`] and [`Store::count`]: every parameter type and modifier
//! of search.html on small resources whose answers are worked out by hand below. Resources are
//! indexed by the engine's own extraction, as every write is, and queries come from the engine's
//! own parser, so a case states a search exactly as a client would write it.

use serde_json::{Value, json};

use super::{at, ok};
use crate::definitions::Definitions;
use crate::resource::set_meta;
use crate::search::index::extract;
use crate::search::query::{SearchQuery, parse};
use crate::storage::{ResourceVersion, Store, StoreError, Write, WriteKind};

/// Writes `resource` as version `version` (1 = create) at [`at`]`(ms)`, indexed as the engine
/// indexes every write.
pub async fn index_put(store: &dyn Store, mut resource: Value, version: u64, ms: i64) {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default().to_owned();
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    if let Some(map) = resource.as_object_mut() {
        set_meta(map, version, at(ms));
    }
    let index = extract(Definitions::r4(), &resource);
    let kind = if version == 1 { WriteKind::Create } else { WriteKind::Update };
    let version =
        ResourceVersion { resource_type, id, version, last_updated: at(ms), kind, json: Some(resource.to_string()) };
    let what = format!("writing {}/{}", version.resource_type, version.id);
    ok(store.transact(vec![Write { version, index }]).await, &what);
}

/// The parsed query `params` (`a=1&b=2`, values not encoded) on `resource_type`.
#[track_caller]
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub fn query(resource_type: Option<&str>, params: &str) -> SearchQuery {
    let pairs: Vec<(String, String)> = params
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    match parse(Definitions::r4(), resource_type, &pairs, true) {
        Ok(parsed) => parsed.query,
        Err(e) => panic!("`{params}` does not parse: {e}"),
    }
}

/// The ids `store` finds for `params` on `resource_type`, in the store's order; checks that
/// [`Store::count`] agrees.
pub async fn ids(store: &dyn Store, resource_type: &str, params: &str) -> Vec<String> {
    let q = query(Some(resource_type), params);
    let found = ok(store.search(&q, 1000).await, &format!("searching `{resource_type}?{params}`"));
    let count = ok(store.count(&q).await, &format!("counting `{resource_type}?{params}`"));
    assert_eq!(count, found.len() as u64, "count and search disagree for `{resource_type}?{params}`");
    found.into_iter().map(|m| m.id).collect()
}

/// Like [`ids`], sorted, for cases where the order is not the point.
async fn set(store: &dyn Store, resource_type: &str, params: &str) -> Vec<String> {
    let mut found = ids(store, resource_type, params).await;
    found.sort();
    found
}

pub(super) fn patient(id: &str, family: &str, given: &str, birth: &str, gender: &str) -> Value {
    json!({
        "resourceType": "Patient", "id": id, "gender": gender, "birthDate": birth,
        "name": [{ "family": family, "given": [given] }],
    })
}

pub(super) async fn patients(store: &dyn Store) {
    index_put(store, patient("p1", "Müller", "Zoë", "1974-12-25", "female"), 1, 0).await;
    index_put(store, patient("p2", "Miller", "Adam", "1980-02", "male"), 1, 1).await;
    index_put(store, patient("p3", "Chalmers", "Peter", "2001-07-14", "male"), 1, 2).await;
}

/// string: case- and accent-insensitive prefix by default, `:exact`, `:contains`; names match
/// on any part.
pub async fn search_string_modes(store: &dyn Store) {
    patients(store).await;
    assert_eq!(set(store, "Patient", "family=mul").await, ["p1"]);
    assert_eq!(set(store, "Patient", "family=MÜL").await, ["p1"]);
    assert_eq!(set(store, "Patient", "family=m").await, ["p1", "p2"]);
    assert_eq!(set(store, "Patient", "family:exact=Müller").await, ["p1"]);
    assert!(set(store, "Patient", "family:exact=muller").await.is_empty());
    assert_eq!(set(store, "Patient", "family:contains=LLE").await, ["p1", "p2"]);
    assert_eq!(set(store, "Patient", "name=zoe").await, ["p1"], "given names are part of `name`");
    assert_eq!(set(store, "Patient", "name=pet,adam").await, ["p2", "p3"], "comma is OR");
    assert_eq!(set(store, "Patient", "name=m&name=adam").await, ["p2"], "repetition is AND");
    assert!(set(store, "Patient", "family=100%").await.is_empty(), "LIKE wildcards are literal");
}

/// token: `code`, `system|code`, `|code`, `system|`, `:not`, `:text`, `:of-type`, `:missing`.
pub async fn search_token_forms(store: &dyn Store) {
    let mrn = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] });
    index_put(store, json!({
        "resourceType": "Patient", "id": "a", "active": true,
        "identifier": [{ "system": "urn:sys:1", "value": "123", "type": mrn }],
        "communication": [{ "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "nl", "display": "Dutch" }] } }],
    }), 1, 0).await;
    index_put(
        store,
        json!({
            "resourceType": "Patient", "id": "b", "active": false,
            "identifier": [{ "value": "123" }, { "system": "urn:sys:2", "value": "456" }],
            "communication": [{ "language": { "text": "Dutch (Flemish)" } }, { "language": { "text": "English" } }],
        }),
        1,
        1,
    )
    .await;
    index_put(store, json!({ "resourceType": "Patient", "id": "c" }), 1, 2).await;
    assert_eq!(set(store, "Patient", "identifier=123").await, ["a", "b"]);
    assert_eq!(set(store, "Patient", "identifier=urn:sys:1|123").await, ["a"]);
    assert_eq!(set(store, "Patient", "identifier=|123").await, ["b"]);
    assert_eq!(set(store, "Patient", "identifier=urn:sys:2|").await, ["b"]);
    assert_eq!(set(store, "Patient", "active=true").await, ["a"]);
    assert_eq!(set(store, "Patient", "active:not=true").await, ["b", "c"], ":not includes resources without a value");
    assert_eq!(set(store, "Patient", "language:text=dutch").await, ["a", "b"]);
    assert_eq!(set(store, "Patient", "language:text=engl").await, ["b"]);
    assert_eq!(set(store, "Patient", "language=urn:ietf:bcp:47|nl").await, ["a"]);
    let of_type = "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123";
    assert_eq!(set(store, "Patient", of_type).await, ["a"]);
    assert_eq!(set(store, "Patient", "identifier:missing=true").await, ["c"]);
    assert_eq!(set(store, "Patient", "identifier:missing=false").await, ["a", "b"]);
    assert_eq!(set(store, "Patient", "_id=a,c").await, ["a", "c"]);
}

/// A `code` bound to a value set of one code system is a token with that system.
pub async fn search_bound_codes_have_their_system(store: &dyn Store) {
    patients(store).await; // p1 female, p2 and p3 male
    assert_eq!(set(store, "Patient", "gender=male").await, ["p2", "p3"]);
    assert_eq!(set(store, "Patient", "gender=http://hl7.org/fhir/administrative-gender|female").await, ["p1"]);
    assert!(set(store, "Patient", "gender=|male").await.is_empty(), "the code has a system");
    assert!(set(store, "Patient", "gender=http://example.org/other|male").await.is_empty());
}

/// A token set (what `:in`, `:not-in`, `:above` and `:below` become once the engine has
/// resolved them): any of its `system|code` pairs; `not`: none of them; empty: nothing (`not`:
/// everything).
pub async fn search_token_sets(store: &dyn Store) {
    use crate::search::query::{Predicate, Token, TokenSystem};
    patients(store).await; // p1 female, p2 and p3 male
    index_put(store, json!({ "resourceType": "Patient", "id": "p4" }), 1, 3).await;
    let gender = |code: &str| Token {
        system: TokenSystem::Is("http://hl7.org/fhir/administrative-gender".into()),
        code: Some(code.into()),
    };
    let run = |not: bool, tokens: Vec<Token>| {
        let mut q = query(Some("Patient"), "gender=male");
        q.clauses[0].alternatives = vec![Predicate::TokenSet { not, tokens }];
        q
    };
    let found = |q: SearchQuery| async move {
        let mut ids: Vec<String> = ok(store.search(&q, 100).await, "token set").into_iter().map(|m| m.id).collect();
        ids.sort();
        let count = ok(store.count(&q).await, "token set count");
        assert_eq!(count, ids.len() as u64, "count and search disagree");
        ids
    };
    assert_eq!(found(run(false, vec![gender("female"), gender("other")])).await, ["p1"]);
    assert_eq!(found(run(false, vec![gender("female"), gender("male")])).await, ["p1", "p2", "p3"]);
    assert_eq!(found(run(true, vec![gender("female"), gender("other")])).await, ["p2", "p3", "p4"]);
    assert!(found(run(false, Vec::new())).await.is_empty());
    assert_eq!(found(run(true, Vec::new())).await, ["p1", "p2", "p3", "p4"]);
    let other_system = Token { system: TokenSystem::Is("http://example.org".into()), code: Some("male".into()) };
    assert!(found(run(false, vec![other_system])).await.is_empty());
}

/// reference: `id`, `Type/id`, `:Type`, absolute URL, `:identifier`, `:missing`.
pub async fn search_reference_forms(store: &dyn Store) {
    patients(store).await;
    let observation = |id: &str, subject: Value| json!({ "resourceType": "Observation", "id": id, "status": "final", "code": { "text": "x" }, "subject": subject });
    index_put(store, observation("o1", json!({ "reference": "Patient/p1" })), 1, 10).await;
    index_put(store, observation("o2", json!({ "reference": "Group/p1" })), 1, 11).await;
    index_put(store, observation("o3", json!({ "reference": "http://other.org/fhir/Patient/9" })), 1, 12).await;
    index_put(store, observation("o4", json!({ "identifier": { "system": "urn:mrn", "value": "77" } })), 1, 13).await;
    index_put(
        store,
        json!({ "resourceType": "Observation", "id": "o5", "status": "final", "code": { "text": "x" } }),
        1,
        14,
    )
    .await;
    assert_eq!(set(store, "Observation", "subject=Patient/p1").await, ["o1"]);
    assert_eq!(set(store, "Observation", "subject=p1").await, ["o1", "o2"]);
    assert_eq!(set(store, "Observation", "subject:Group=p1").await, ["o2"]);
    assert_eq!(set(store, "Observation", "patient=p1").await, ["o1"], "`patient` only targets Patient");
    assert_eq!(set(store, "Observation", "subject=http://other.org/fhir/Patient/9").await, ["o3"]);
    assert_eq!(set(store, "Observation", "subject:identifier=urn:mrn|77").await, ["o4"]);
    assert_eq!(set(store, "Observation", "subject:missing=true").await, ["o4", "o5"]);
}

/// date: every prefix, against values of different precision.
pub async fn search_date_prefixes(store: &dyn Store) {
    patients(store).await; // p1 1974-12-25, p2 1980-02, p3 2001-07-14
    let cases: &[(&str, &[&str])] = &[
        ("birthdate=1974", &["p1"]),
        ("birthdate=1974-12-25", &["p1"]),
        ("birthdate=1980-02-10", &[]), // the value's month is wider than the day searched
        ("birthdate=1980", &["p2"]),
        ("birthdate=ne1980", &["p1", "p3"]),
        ("birthdate=gt1980-02-10", &["p2", "p3"]),
        ("birthdate=lt1980-02-10", &["p1", "p2"]),
        ("birthdate=ge1980-02", &["p2", "p3"]),
        ("birthdate=le1980-02", &["p1", "p2"]),
        ("birthdate=sa1980-01-31", &["p2", "p3"]),
        ("birthdate=sa1980-02-01", &["p3"]),
        ("birthdate=eb1980-02-29", &["p1"]),
        ("birthdate=ap2001-07-15", &["p3"]),
        ("birthdate=ge1975&birthdate=lt2000", &["p2"]),
        ("birthdate=2001-07-14T10:00:00Z", &[]),
        ("birthdate=gt2001-07-14T10:00:00Z", &["p3"]),
    ];
    for (params, expected) in cases {
        assert_eq!(set(store, "Patient", params).await, *expected, "Patient?{params}");
    }
    // A period: the encounter ran through February 2020.
    index_put(
        store,
        json!({
            "resourceType": "Encounter", "id": "e1", "status": "finished", "class": { "code": "AMB" },
            "period": { "start": "2020-02-01T08:00:00Z", "end": "2020-02-28T17:00:00Z" },
        }),
        1,
        5,
    )
    .await;
    assert_eq!(set(store, "Encounter", "date=2020-02").await, ["e1"]);
    assert!(set(store, "Encounter", "date=2020-02-10").await.is_empty(), "the period is wider than the day");
    assert_eq!(set(store, "Encounter", "date=ge2020-02-10").await, ["e1"], "it goes on after the day");
    assert_eq!(set(store, "Encounter", "date=lt2020-02-10").await, ["e1"], "it began before the day");
    assert!(set(store, "Encounter", "date=sa2020-01-31").await.len() == 1);
    assert!(set(store, "Encounter", "date=eb2020-02-28").await.is_empty());
}

/// number and quantity: prefixes, implicit precision, units.
pub async fn search_number_quantity(store: &dyn Store) {
    let risk = |id: &str, p: &str| {
        let probability: Value = serde_json::from_str(p).unwrap_or(Value::Null);
        json!({ "resourceType": "RiskAssessment", "id": id, "status": "final", "subject": { "reference": "Patient/p" },
                "prediction": [{ "probabilityDecimal": probability }] })
    };
    index_put(store, risk("r1", "0.25"), 1, 0).await;
    index_put(store, risk("r2", "0.8"), 1, 1).await;
    index_put(store, risk("r3", "0.249"), 1, 2).await;
    assert_eq!(set(store, "RiskAssessment", "probability=0.25").await, ["r1", "r3"], "0.25 means [0.245, 0.255)");
    assert_eq!(set(store, "RiskAssessment", "probability=0.250").await, ["r1"], "0.250 means [0.2495, 0.2505)");
    assert_eq!(set(store, "RiskAssessment", "probability=gt0.25").await, ["r2"]);
    assert_eq!(set(store, "RiskAssessment", "probability=ge0.25").await, ["r1", "r2"]);
    assert_eq!(set(store, "RiskAssessment", "probability=lt0.25").await, ["r3"]);
    assert_eq!(set(store, "RiskAssessment", "probability=ne0.25").await, ["r2"]);
    assert_eq!(set(store, "RiskAssessment", "probability=ap0.75").await, ["r2"]);

    let weight = |id: &str, value: &str, code: &str| {
        let value: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        json!({ "resourceType": "Observation", "id": id, "status": "final",
                "code": { "coding": [{ "system": "http://loinc.org", "code": "29463-7" }] },
                "valueQuantity": { "value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code } })
    };
    index_put(store, weight("w1", "72.5", "kg"), 1, 3).await;
    index_put(store, weight("w2", "160", "[lb_av]"), 1, 4).await;
    index_put(store, weight("w3", "5400", "g"), 1, 5).await;
    assert_eq!(set(store, "Observation", "value-quantity=72.5").await, ["w1"]);
    assert_eq!(set(store, "Observation", "value-quantity=gt100").await, ["w2", "w3"]);
    assert_eq!(set(store, "Observation", "value-quantity=gt100|http://unitsofmeasure.org|g").await, ["w3"]);
    assert_eq!(set(store, "Observation", "value-quantity=lt200||[lb_av]").await, ["w2"]);
    assert_eq!(set(store, "Observation", "value-quantity=le72.5|http://unitsofmeasure.org|kg").await, ["w1"]);
    // Composite: code and value of one observation together.
    let composite = "code-value-quantity=http://loinc.org|29463-7$gt100|http://unitsofmeasure.org|[lb_av]";
    assert_eq!(set(store, "Observation", composite).await, ["w2"]);
    assert!(set(store, "Observation", "code-value-quantity=http://loinc.org|1234-5$gt100").await.is_empty());
}

/// uri: exact, `:above`, `:below`.
pub async fn search_uri_modes(store: &dyn Store) {
    let vs = |id: &str, url: &str| json!({ "resourceType": "ValueSet", "id": id, "status": "active", "url": url });
    index_put(store, vs("v1", "http://acme.org/fhir/ValueSet/a"), 1, 0).await;
    index_put(store, vs("v2", "http://acme.org/fhir/ValueSet/a/b"), 1, 1).await;
    index_put(store, vs("v3", "http://acme.org/fhir"), 1, 2).await;
    assert_eq!(set(store, "ValueSet", "url=http://acme.org/fhir/ValueSet/a").await, ["v1"]);
    assert_eq!(set(store, "ValueSet", "url:below=http://acme.org/fhir/ValueSet").await, ["v1", "v2"]);
    assert_eq!(set(store, "ValueSet", "url:above=http://acme.org/fhir/ValueSet/a/b/c").await, ["v1", "v2", "v3"]);
    assert_eq!(set(store, "ValueSet", "url:above=http://acme.org/fhir/ValueSet/a").await, ["v1", "v3"]);
}

/// Chains over several levels, and `_has`.
pub async fn search_chains_and_has(store: &dyn Store) {
    patients(store).await;
    index_put(store, json!({ "resourceType": "Organization", "id": "org", "name": "Acme Health" }), 1, 5).await;
    index_put(store, json!({ "resourceType": "Practitioner", "id": "doc", "name": [{ "family": "House" }] }), 1, 6)
        .await;
    let mut p3 = patient("p3", "Chalmers", "Peter", "2001-07-14", "male");
    p3["managingOrganization"] = json!({ "reference": "Organization/org" });
    p3["generalPractitioner"] = json!([{ "reference": "Practitioner/doc" }]);
    index_put(store, p3, 2, 7).await;
    let observation = |id: &str, subject: &str, code: &str| {
        json!({ "resourceType": "Observation", "id": id, "status": "final",
                "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
                "subject": { "reference": subject } })
    };
    index_put(store, observation("o1", "Patient/p1", "1"), 1, 8).await;
    index_put(store, observation("o3", "Patient/p3", "2"), 1, 9).await;
    assert_eq!(set(store, "Observation", "subject:Patient.name=peter").await, ["o3"]);
    assert_eq!(set(store, "Observation", "patient.organization.name=acme").await, ["o3"]);
    assert_eq!(set(store, "Observation", "patient.general-practitioner:Practitioner.family=house").await, ["o3"]);
    assert_eq!(set(store, "Observation", "subject:Patient.birthdate=lt1975").await, ["o1"]);
    assert_eq!(set(store, "Patient", "_has:Observation:patient:code=2").await, ["p3"]);
    assert_eq!(set(store, "Patient", "_has:Observation:subject:code=1,2").await, ["p1", "p3"]);
    assert_eq!(set(store, "Organization", "_has:Patient:organization:_has:Observation:patient:code=2").await, ["org"]);
}

/// Clauses together: every kind of value tested alongside a narrower clause (a store may find
/// the candidates through one clause and test the others on each), in either written order.
pub async fn search_clauses_combined(store: &dyn Store) {
    patients(store).await; // p1 Müller female, p2 Miller male, p3 Chalmers male
    let observation = |id: &str, patient: &str, code: &str, status: &str| {
        json!({ "resourceType": "Observation", "id": id, "status": status,
                "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
                "subject": { "reference": format!("Patient/{patient}") } })
    };
    let measured = |mut o: Value, value: &str, unit: &str, date: &str| {
        o["valueQuantity"] = json!({ "value": serde_json::from_str::<Value>(value).unwrap_or(Value::Null),
                                     "unit": unit, "system": "http://unitsofmeasure.org", "code": unit });
        o["effectiveDateTime"] = json!(date);
        o
    };
    index_put(store, measured(observation("o1", "p1", "29463-7", "final"), "72.5", "kg", "2020-01-01"), 1, 10).await;
    index_put(store, measured(observation("o2", "p1", "8302-2", "final"), "180", "cm", "2021-06-01"), 1, 11).await;
    index_put(store, measured(observation("o3", "p2", "29463-7", "amended"), "80", "kg", "2020-05-01"), 1, 12).await;
    index_put(store, observation("o4", "p1", "29463-7", "preliminary"), 1, 13).await;
    // Two names starting with M, the same code twice: one match all the same.
    index_put(store, patient("p4", "Moss", "Mia", "1990-01-01", "female"), 1, 3).await;
    let mut twice = observation("o5", "p3", "8302-2", "final");
    twice["code"]["coding"] =
        json!([{ "system": "http://loinc.org", "code": "8302-2" }, { "system": "http://loinc.org", "code": "8302-2" }]);
    index_put(store, twice, 1, 14).await;
    let weight = "http://loinc.org|29463-7";
    let cases: &[(&str, &str, &[&str])] = &[
        ("Patient", "name=m", &["p1", "p2", "p4"]),
        ("Observation", "code=http://loinc.org|8302-2", &["o2", "o5"]),
        ("Observation", "code=8302-2&status=final", &["o2", "o5"]),
        ("Observation", &format!("code={weight}&patient=p1"), &["o1", "o4"]),
        ("Observation", &format!("patient=p1&code={weight}"), &["o1", "o4"]),
        ("Observation", &format!("patient=p1&code:not={weight}"), &["o2"]),
        ("Observation", &format!("code:not={weight}&status=final"), &["o2", "o5"]),
        ("Observation", "patient=p1&value-quantity:missing=true", &["o4"]),
        ("Observation", "patient=p1&value-quantity:missing=false", &["o1", "o2"]),
        ("Observation", "date=ge2021&patient=p1", &["o2"]),
        ("Observation", "patient=p1&value-quantity=gt100", &["o2"]),
        ("Observation", &format!("patient=p1&code-value-quantity={weight}$lt100"), &["o1"]),
        ("Observation", &format!("subject:Patient.name=miller&code={weight}"), &["o3"]),
        ("Observation", "_id=o1,o3&patient=p1", &["o1"]),
        ("Patient", "_id=p1,p2&family=mil", &["p2"]),
        ("Patient", &format!("_has:Observation:patient:code={weight}&gender=male"), &["p2"]),
        ("Patient", &format!("name=m&_has:Observation:patient:code={weight}"), &["p1", "p2"]),
        ("Patient", "gender=male&_has:Observation:patient:status=final", &["p3"]),
    ];
    for (resource_type, params, expected) in cases {
        assert_eq!(set(store, resource_type, params).await, *expected, "{resource_type}?{params}");
    }
}

/// A continuation ([`SearchQuery::after`]): the matches after a `(type, id)` in the default
/// order, across types too, counted the same way.
pub async fn search_continues_after_a_key(store: &dyn Store) {
    patients(store).await; // p1 female, p2 and p3 male
    let observation = json!({ "resourceType": "Observation", "id": "o1", "status": "final", "code": { "text": "x" } });
    index_put(store, observation, 1, 10).await;
    // (type searched, parameters, after type and id, expected ids)
    type Case<'a> = (Option<&'a str>, &'a str, (&'a str, &'a str), &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (Some("Patient"), "", ("Patient", "p1"), &["p2", "p3"]),
        (Some("Patient"), "gender=male", ("Patient", "p2"), &["p3"]),
        (Some("Patient"), "", ("Patient", "p3"), &[]),
        (None, "_type=Observation,Patient", ("Observation", "o1"), &["p1", "p2", "p3"]),
        (None, "_type=Observation,Patient", ("Observation", "a"), &["o1", "p1", "p2", "p3"]),
        (None, "_type=Observation,Patient", ("Patient", "p2"), &["p3"]),
    ];
    for (resource_type, params, (after_type, after_id), expected) in cases {
        let mut q = query(*resource_type, params);
        q.after = Some(((*after_type).to_owned(), (*after_id).to_owned()));
        let what = format!("`{params}` after {after_type}/{after_id}");
        let found: Vec<String> = ok(store.search(&q, 100).await, &what).into_iter().map(|m| m.id).collect();
        assert_eq!(found, *expected, "{what}");
        assert_eq!(ok(store.count(&q).await, &what), expected.len() as u64, "counting {what}");
        let first: Vec<String> = ok(store.search(&q, 1).await, &what).into_iter().map(|m| m.id).collect();
        assert_eq!(first, expected.iter().take(1).copied().collect::<Vec<_>>(), "the first of {what}");
    }
}

/// `_sort` over several keys, both directions, resources without a value last; ties by id.
pub async fn search_sort(store: &dyn Store) {
    patients(store).await; // p1 Müller 1974 female, p2 Miller 1980 male, p3 Chalmers 2001 male
    index_put(store, json!({ "resourceType": "Patient", "id": "p0" }), 1, 3).await;
    assert_eq!(ids(store, "Patient", "_sort=family").await, ["p3", "p2", "p1", "p0"]);
    assert_eq!(ids(store, "Patient", "_sort=-family").await, ["p1", "p2", "p3", "p0"]);
    assert_eq!(ids(store, "Patient", "_sort=-birthdate").await, ["p3", "p2", "p1", "p0"]);
    assert_eq!(ids(store, "Patient", "_sort=gender,-birthdate").await, ["p1", "p3", "p2", "p0"]);
    assert_eq!(ids(store, "Patient", "_sort=-_lastUpdated").await, ["p0", "p3", "p2", "p1"]);
    assert_eq!(ids(store, "Patient", "").await, ["p0", "p1", "p2", "p3"], "by id without `_sort`");
    let q = query(Some("Patient"), "_sort=family");
    let first_two: Vec<String> = ok(store.search(&q, 2).await, "limited search").into_iter().map(|m| m.id).collect();
    assert_eq!(first_two, ["p3", "p2"]);
}

/// Common parameters: `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`.
pub async fn search_common_parameters(store: &dyn Store) {
    index_put(
        store,
        json!({ "resourceType": "Patient", "id": "a", "meta": {
            "tag": [{ "system": "urn:tags", "code": "vip" }],
            "profile": ["http://example.org/StructureDefinition/p"],
            "security": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" }],
            "source": "urn:app:intake",
        }}),
        1,
        0,
    )
    .await;
    index_put(store, json!({ "resourceType": "Patient", "id": "b" }), 1, 86_400_000).await; // a day later
    assert_eq!(set(store, "Patient", "_tag=urn:tags|vip").await, ["a"]);
    assert_eq!(set(store, "Patient", "_profile=http://example.org/StructureDefinition/p").await, ["a"]);
    assert_eq!(set(store, "Patient", "_security=R").await, ["a"]);
    assert_eq!(set(store, "Patient", "_source=urn:app:intake").await, ["a"]);
    assert_eq!(set(store, "Patient", "_lastUpdated=2024-01-01").await, ["a"]);
    assert_eq!(set(store, "Patient", "_lastUpdated=gt2024-01-01").await, ["b"]);
    assert_eq!(set(store, "Patient", "_tag:missing=true").await, ["b"]);
}

/// A search sees each resource's current version only; deleted resources are gone.
pub async fn search_sees_current_versions(store: &dyn Store) {
    patients(store).await;
    index_put(store, patient("p1", "Schmidt", "Zoë", "1974-12-25", "female"), 2, 10).await;
    assert!(set(store, "Patient", "family=muller").await.is_empty(), "the old name is no longer current");
    assert_eq!(set(store, "Patient", "family=schmidt").await, ["p1"]);
    let found = ok(store.search(&query(Some("Patient"), "family=schmidt"), 10).await, "search");
    assert_eq!(found[0].version, 2, "a match names the version that matched");
    let deletion = ResourceVersion {
        resource_type: "Patient".into(),
        id: "p2".into(),
        version: 2,
        last_updated: at(11),
        kind: WriteKind::Delete,
        json: None,
    };
    ok(store.transact(vec![Write { version: deletion, index: Vec::new() }]).await, "deleting p2");
    assert_eq!(set(store, "Patient", "").await, ["p1", "p3"]);
    assert!(set(store, "Patient", "family=miller").await.is_empty());
    index_put(store, patient("p2", "Miller", "Adam", "1980-02", "male"), 3, 12).await;
    assert_eq!(set(store, "Patient", "family=miller").await, ["p2"], "recreated after deletion");
}

/// Compartments and searches over several types.
pub async fn search_compartments_and_types(store: &dyn Store) {
    patients(store).await;
    let observation = |id: &str, subject: &str| {
        json!({ "resourceType": "Observation", "id": id, "status": "final", "code": { "text": "x" },
                "subject": { "reference": subject } })
    };
    index_put(store, observation("o1", "Patient/p1"), 1, 5).await;
    index_put(store, observation("o2", "Patient/p2"), 1, 6).await;
    index_put(
        store,
        json!({ "resourceType": "Encounter", "id": "e1", "status": "finished", "class": { "code": "AMB" },
                             "subject": { "reference": "Patient/p1" } }),
        1,
        7,
    )
    .await;
    let in_compartment = |types: &[&str]| {
        let mut q = query(None, "");
        q.compartment = Some(crate::search::query::Compartment {
            resource_type: "Patient".into(),
            id: "p1".into(),
            params: types
                .iter()
                .map(|t| {
                    let params =
                        Definitions::r4().compartment("Patient").map(|c| c.params(t).to_vec()).unwrap_or_default();
                    ((*t).to_owned(), params)
                })
                .collect(),
        });
        q
    };
    let q = in_compartment(&["Observation", "Encounter"]);
    let mut found: Vec<String> = ok(store.search(&q, 100).await, "compartment search")
        .into_iter()
        .map(|m| format!("{}/{}", m.resource_type, m.id))
        .collect();
    found.sort();
    assert_eq!(found, ["Encounter/e1", "Observation/o1", "Patient/p1"]);
    let q = query(None, "_type=Observation,Encounter&_id=o2,e1");
    let found: Vec<String> = ok(store.search(&q, 100).await, "system search").into_iter().map(|m| m.id).collect();
    assert_eq!(found, ["e1", "o2"], "ordered by type, then id");
}

/// What a store cannot answer is an error, never a wrong answer.
#[expect(clippy::panic, reason = "contract cases are tests: a panic is a failed assertion")]
pub async fn search_unsupported_is_an_error(store: &dyn Store) {
    patients(store).await;
    for params in ["gender:in=http://hl7.org/fhir/ValueSet/administrative-gender", "_sort=code-value-quantity"] {
        let resource_type = if params.starts_with("_sort") { "Observation" } else { "Patient" };
        match store.search(&query(Some(resource_type), params), 10).await {
            Err(StoreError::Unsupported(_)) => {}
            other => panic!("`{params}`: expected Unsupported, got {other:?}"),
        }
    }
}

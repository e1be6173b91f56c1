//! Which clause of a search should drive it: a store that finds the candidates of one clause
//! through its index and tests the other clauses per candidate does best starting from the
//! clause with the fewest matches. Without statistics, the kind of value is the estimate:
//! an id or identifier names one resource, a reference one resource's dependants, while a code,
//! a date range or a negation can match a large part of the data (`Observation?patient=X&code=Y`
//! must start from the patient, not from every Observation with the code).

use super::expr::{Clause, Predicate, StringMatch, UriMatch};

/// The position in `clauses` of the clause expected to match the fewest resources (the first of
/// equals), or `None` when there are no clauses.
pub fn driving_clause(clauses: &[Clause]) -> Option<usize> {
    clauses.iter().enumerate().min_by_key(|(n, clause)| (rank(clause), *n)).map(|(n, _)| n)
}

/// A clause matches what any of its alternatives matches: it is as broad as its broadest.
fn rank(clause: &Clause) -> u8 {
    clause.alternatives.iter().map(|p| predicate_rank(&clause.param, p)).max().unwrap_or(u8::MAX)
}

/// Smaller is expected to match fewer resources.
fn predicate_rank(param: &str, predicate: &Predicate) -> u8 {
    match predicate {
        Predicate::Token { not: false, .. } if matches!(param, "_id" | "identifier" | "url") => 0,
        Predicate::OfType { .. } | Predicate::ReferenceIdentifier(_) => 0,
        Predicate::Reference(_) => 1,
        Predicate::String { mode: StringMatch::Exact, .. } | Predicate::Uri { mode: UriMatch::Exact, .. } => 2,
        Predicate::String { .. } | Predicate::Uri { .. } | Predicate::TokenText(_) => 3,
        Predicate::Token { not: false, .. } | Predicate::Composite { .. } | Predicate::TokenSet { not: false, .. } => 4,
        Predicate::Date { .. } | Predicate::Number { .. } | Predicate::Quantity { .. } => 5,
        // The inner search may be narrow or broad; it runs as its own index lookup either way.
        Predicate::Chain(_) | Predicate::Has(_) => 6,
        // What a negation or an absence matches cannot be found through a value index.
        Predicate::Token { not: true, .. } | Predicate::TokenSet { not: true, .. } | Predicate::Missing(_) => 9,
        Predicate::Unsupported(_) | Predicate::Concepts { .. } => u8::MAX,
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::definitions::Definitions;
    use crate::search::query::parse;

    fn driver(resource_type: &str, params: &[(&str, &str)]) -> Option<String> {
        let params: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let query = parse(Definitions::r4(), Some(resource_type), &params, true).expect("parses").query;
        driving_clause(&query.clauses).map(|n| query.clauses[n].written.0.clone())
    }

    #[test]
    fn a_reference_drives_before_a_code_wherever_it_is_written() {
        let code = ("code", "http://loinc.org|29463-7");
        assert_eq!(driver("Observation", &[code, ("patient", "p1")]).as_deref(), Some("patient"));
        assert_eq!(driver("Observation", &[("patient", "p1"), code]).as_deref(), Some("patient"));
    }

    #[test]
    fn an_identifier_drives_and_a_negation_never_does_while_anything_else_can() {
        let params = [("gender", "male"), ("birthdate", "ge2000"), ("identifier", "urn:mrn|42")];
        assert_eq!(driver("Patient", &params).as_deref(), Some("identifier"));
        assert_eq!(driver("Patient", &[("gender:not", "male"), ("birthdate", "ge2000")]).as_deref(), Some("birthdate"));
        assert_eq!(driver("Patient", &[("family", "Smith"), ("gender", "male")]).as_deref(), Some("family"));
    }

    #[test]
    fn ties_keep_the_written_order() {
        // `_id=a,b` names two resources: narrower than any code.
        assert_eq!(driver("Observation", &[("code", "x"), ("_id", "a,b")]).as_deref(), Some("_id"));
        assert_eq!(driver("Observation", &[("code", "x"), ("category", "vital-signs")]).as_deref(), Some("code"));
        assert_eq!(driver("Observation", &[]), None);
    }
}

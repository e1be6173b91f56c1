//! Corrections to the contexts of a few extensions whose R4 definitions state a context that
//! the R4 specification's own resources contradict, made as the reference validator makes them
//! (its `fixContexts`), so that what R4 publishes validates:
//!
//! - `structuredefinition-fhir-type` is defined on `ElementDefinition.type.code`, but every
//!   snapshot of the R4 package carries it on `ElementDefinition.type` (1,810 times): its context
//!   is `ElementDefinition.type`;
//! - `regex`'s second context, `ElementDefinition`, is `ElementDefinition.type`, where R4's
//!   snapshots put it;
//! - `structuredefinition-normative-version` and, before R5 (4.6), `capabilitystatement-expectation`
//!   and `capabilitystatement-prohibited` are used on far more elements than their definitions
//!   list: their first context is `Element` (anywhere).
//!
//! Only the context the reference replaces is replaced; the others stay.

/// (extension URL, index of the context replaced, the expression it becomes).
const ERRATA: [(&str, usize, &str); 5] = [
    ("http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type", 0, "ElementDefinition.type"),
    ("http://hl7.org/fhir/StructureDefinition/regex", 1, "ElementDefinition.type"),
    ("http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version", 0, "Element"),
    ("http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation", 0, "Element"),
    ("http://hl7.org/fhir/StructureDefinition/capabilitystatement-prohibited", 0, "Element"),
];

/// `contexts` (`(type, expression)`) of the extension `url`, corrected when R4 errs.
pub(crate) fn corrected(url: &str, mut contexts: Vec<(String, String)>) -> Vec<(String, String)> {
    let url = url.split('|').next().unwrap_or(url);
    for (_, index, expression) in ERRATA.iter().filter(|(u, _, _)| *u == url) {
        if let Some(context) = contexts.get_mut(*index) {
            *context = ("element".to_owned(), (*expression).to_owned());
        }
    }
    contexts
}

#[cfg(test)]
mod tests {
    use super::corrected;

    fn element(expression: &str) -> (String, String) {
        ("element".to_owned(), expression.to_owned())
    }

    #[test]
    fn only_the_contexts_r4_states_wrongly_are_replaced() {
        let fhir_type = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
        assert_eq!(
            corrected(fhir_type, vec![element("ElementDefinition.type.code")]),
            [element("ElementDefinition.type")]
        );
        let regex = "http://hl7.org/fhir/StructureDefinition/regex|4.0.1";
        assert_eq!(
            corrected(regex, vec![element("Questionnaire.item"), element("ElementDefinition")]),
            [element("Questionnaire.item"), element("ElementDefinition.type")]
        );
        let other = "http://example.org/StructureDefinition/x";
        assert_eq!(corrected(other, vec![element("Patient")]), [element("Patient")]);
        assert_eq!(corrected(regex, Vec::new()), Vec::<(String, String)>::new(), "a context missing is not made up");
    }
}

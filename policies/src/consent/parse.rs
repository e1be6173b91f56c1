//! An R4 Consent's JSON read into the rules [`super::evaluate`] applies. Parsing is bounded
//! (provision depth and count); a Consent that counts (active, patient-privacy) but whose
//! provisions cannot be read becomes a rule that denies everything: fail closed.

use serde_json::Value;

use super::Asker;
use super::Verdict;
use super::matching::{Match, ResourceCodes};

/// Deepest nesting of provisions read.
const MAX_DEPTH: usize = 8;
/// Most provisions one Consent may have.
const MAX_RULES: usize = 256;

/// The scope code of privacy Consents (`http://terminology.hl7.org/CodeSystem/consentscope`).
const PRIVACY_SCOPE: &str = "patient-privacy";

/// A coded value: `code`, with its `system` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Code {
    pub system: Option<String>,
    pub code: String,
}

/// An actor named by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    /// `Type/id` (relative, without `_history`).
    Reference(String),
    /// `reference.identifier`: system and value.
    Identifier(String, String),
    /// Something the gateway cannot compare with a principal.
    Unreadable,
}

/// One provision: the criteria it states (empty: any) and its own nested exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rule {
    pub kind: Option<Verdict>,
    /// `period` as Unix seconds (start, end); `None` ends are open.
    pub period: Option<(Option<i64>, Option<i64>)>,
    /// A `period` whose dates could not be read.
    pub bad_period: bool,
    pub actors: Vec<Actor>,
    pub actions: Vec<Code>,
    pub security_labels: Vec<Code>,
    pub purposes: Vec<Code>,
    pub classes: Vec<Code>,
    pub codes: Vec<Code>,
    /// `data`: (meaning, `Type/id`).
    pub data: Vec<(String, String)>,
    pub data_period: bool,
    pub nested: Vec<Rule>,
}

/// A patient's privacy Consent, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    /// The patient id (`Consent.patient` is `Patient/<id>`).
    pub patient: String,
    pub(crate) root: Rule,
}

/// The Consent `resource` states, or `None` when it does not count: not a Consent, not
/// active, not a patient-privacy Consent, or about no local patient.
pub fn parse(resource: &Value) -> Option<Consent> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Consent")
        || resource.get("status").and_then(Value::as_str) != Some("active")
    {
        return None;
    }
    let privacy = codings(resource.get("scope")).iter().any(|c| c.code == PRIVACY_SCOPE);
    if !privacy {
        return None;
    }
    let patient = resource.pointer("/patient/reference").and_then(Value::as_str).and_then(local_reference)?;
    let patient = patient.strip_prefix("Patient/")?.to_owned();
    let id = resource.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut budget = MAX_RULES;
    let root = match resource.get("provision") {
        Some(provision) => rule(provision, 0, &mut budget).unwrap_or_else(deny_all),
        // No provision: the Consent states no rule (policyRule is not evaluated).
        None => Rule::default(),
    };
    Some(Consent { id, patient, root })
}

fn deny_all() -> Rule {
    Rule { kind: Some(Verdict::Deny), ..Rule::default() }
}

/// One provision and its nested ones; `None` when it cannot be read.
fn rule(provision: &Value, depth: usize, budget: &mut usize) -> Option<Rule> {
    if depth >= MAX_DEPTH || *budget == 0 || !provision.is_object() {
        return None;
    }
    *budget -= 1;
    let kind = match provision.get("type").and_then(Value::as_str) {
        Some("deny") => Some(Verdict::Deny),
        Some("permit") => Some(Verdict::Permit),
        None => None,
        Some(_) => return None,
    };
    let mut out = Rule { kind, ..Rule::default() };
    if let Some(period) = provision.get("period") {
        let start = period.get("start").and_then(Value::as_str);
        let end = period.get("end").and_then(Value::as_str);
        let (s, e) = (start.map(instant), end.map(instant));
        out.bad_period = matches!(s, Some(None)) || matches!(e, Some(None));
        out.period = Some((s.flatten(), e.flatten()));
    }
    for actor in array(provision.get("actor")) {
        out.actors.push(match actor.get("reference") {
            Some(reference) => actor_of(reference),
            None => Actor::Unreadable,
        });
    }
    for action in array(provision.get("action")) {
        out.actions.extend(codings(action.get("coding")));
    }
    out.security_labels = codings(provision.get("securityLabel"));
    out.purposes = codings(provision.get("purpose"));
    out.classes = codings(provision.get("class"));
    for code in array(provision.get("code")) {
        out.codes.extend(codings(code.get("coding")));
    }
    for data in array(provision.get("data")) {
        let meaning = data.get("meaning").and_then(Value::as_str).unwrap_or_default().to_owned();
        let reference = data.pointer("/reference/reference").and_then(Value::as_str).and_then(local_reference);
        // A data reference the gateway cannot read names nothing it can match.
        out.data.push((meaning, reference.unwrap_or_default()));
    }
    out.data_period = provision.get("dataPeriod").is_some();
    for nested in array(provision.get("provision")) {
        out.nested.push(rule(nested, depth + 1, budget)?);
    }
    Some(out)
}

fn actor_of(reference: &Value) -> Actor {
    if let Some(r) = reference.get("reference").and_then(Value::as_str) {
        return local_reference(r).map_or(Actor::Unreadable, Actor::Reference);
    }
    let system = reference.pointer("/identifier/system").and_then(Value::as_str);
    let value = reference.pointer("/identifier/value").and_then(Value::as_str);
    match (system, value) {
        (Some(system), Some(value)) => Actor::Identifier(system.to_owned(), value.to_owned()),
        _ => Actor::Unreadable,
    }
}

/// `Type/id` of a reference, relative or absolute (its last two segments), without
/// `/_history/n`; `None` for contained (`#x`) and other unreadable references.
pub(crate) fn local_reference(reference: &str) -> Option<String> {
    let reference = match reference.find("/_history/") {
        Some(at) => &reference[..at],
        None => reference,
    };
    let mut segments = reference.rsplit('/');
    let id = segments.next().filter(|s| !s.is_empty())?;
    let resource_type = segments.next().filter(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))?;
    Some(format!("{resource_type}/{id}"))
}

/// A FHIR date or dateTime as Unix seconds (a date alone: its first instant, UTC).
fn instant(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let padded = match text.len() {
        4 => format!("{text}-01-01T00:00:00Z"),
        7 => format!("{text}-01T00:00:00Z"),
        10 => format!("{text}T00:00:00Z"),
        _ => return None,
    };
    time::OffsetDateTime::parse(&padded, &Rfc3339).ok().map(time::OffsetDateTime::unix_timestamp)
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The Codings of a Coding array, a CodeableConcept, or an array of CodeableConcepts.
pub(crate) fn codings(value: Option<&Value>) -> Vec<Code> {
    let mut out = Vec::new();
    let one = |coding: &Value, out: &mut Vec<Code>| {
        if let Some(code) = coding.get("code").and_then(Value::as_str) {
            let system = coding.get("system").and_then(Value::as_str).map(str::to_owned);
            out.push(Code { system, code: code.to_owned() });
        }
    };
    let concept = |concept: &Value, out: &mut Vec<Code>| {
        if concept.get("coding").is_some() {
            array(concept.get("coding")).iter().for_each(|c| one(c, out));
        } else {
            one(concept, out);
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter().for_each(|item| concept(item, &mut out)),
        Some(item @ Value::Object(_)) => concept(item, &mut out),
        _ => {}
    }
    out
}

impl Consent {
    /// This Consent's answer to `asker` about a resource with `codes`.
    pub(crate) fn answer(&self, asker: &Asker<'_>, codes: &ResourceCodes) -> Verdict {
        self.root.answer(asker, codes).unwrap_or_default()
    }
}

impl Rule {
    /// The deepest applying rule's kind, a deny winning between siblings; `None` when this
    /// rule does not apply.
    fn answer(&self, asker: &Asker<'_>, codes: &ResourceCodes) -> Option<Verdict> {
        let applies = match (self.kind, self.matches(asker, codes)) {
            (_, Match::No) => false,
            (Some(Verdict::Deny), _) => true,
            (_, Match::Unknown) => false,
            (_, Match::Yes) => true,
        };
        if !applies {
            return None;
        }
        let nested = self.nested.iter().filter_map(|n| n.answer(asker, codes)).max();
        nested.or(self.kind)
    }
}

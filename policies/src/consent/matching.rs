//! Whether a rule's criteria hold for a request on a resource. Each criterion the rule states
//! must hold (any one of its listed values); the answer is [`Match::Unknown`] when one cannot be
//! checked, which a deny rule takes as a match and a permit rule as none.
//!
//! Actors are compared with the principal: `Type/id` references with the `fhirUser` claim
//! (`Practitioner`, `PractitionerRole`, `RelatedPerson`, `Patient`, `Device`), identifiers of
//! the systems below with the token's client id, tenant, roles and groups. Any other actor
//! (`Organization/x`, `CareTeam/x`, `Group/x`...) cannot be checked.

use serde_json::Value;

use super::Asker;
use super::parse::{Actor, Code, Rule, codings, local_reference};
use crate::action::Action;

/// `actor.reference.identifier.system` naming the token's client id (`azp` / `appid`).
pub const CLIENT_ID_SYSTEM: &str = "urn:fhirgate:client-id";
/// ... the token's tenant (`tid`).
pub const TENANT_SYSTEM: &str = "urn:fhirgate:tenant";
/// ... one of the token's `roles`.
pub const ROLE_SYSTEM: &str = "urn:fhirgate:role";
/// ... one of the token's `groups`.
pub const GROUP_SYSTEM: &str = "urn:fhirgate:group";

/// Resource types whose references are compared with `fhirUser`.
const PERSON_TYPES: [&str; 5] = ["Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Device"];
/// Elements whose codes `provision.code` is compared with.
const CODE_ELEMENTS: [&str; 7] =
    ["code", "category", "type", "class", "vaccineCode", "medicationCodeableConcept", "serviceType"];

/// Whether a criterion (or all of a rule's) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    Yes,
    No,
    Unknown,
}

impl Match {
    /// Both must hold.
    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::No, _) | (_, Self::No) => Self::No,
            (Self::Unknown, _) | (_, Self::Unknown) => Self::Unknown,
            _ => Self::Yes,
        }
    }

    /// One of `items` must hold; an empty list states no criterion.
    fn any<T>(items: &[T], test: impl Fn(&T) -> Self) -> Self {
        if items.is_empty() {
            return Self::Yes;
        }
        let mut out = Self::No;
        for item in items {
            match test(item) {
                Self::Yes => return Self::Yes,
                Self::Unknown => out = Self::Unknown,
                Self::No => {}
            }
        }
        out
    }

    fn of(yes: bool) -> Self {
        if yes { Self::Yes } else { Self::No }
    }
}

/// What the criteria look at in a resource, read once per decision.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceCodes {
    /// `Type/id`.
    reference: String,
    resource_type: String,
    profiles: Vec<String>,
    security: Vec<Code>,
    codes: Vec<Code>,
}

impl ResourceCodes {
    pub fn of(resource: &Value) -> Self {
        let text = |name: &str| resource.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let resource_type = text("resourceType");
        let meta = resource.get("meta");
        let profiles = meta
            .and_then(|m| m.get("profile"))
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let security = codings(meta.and_then(|m| m.get("security")));
        let mut codes = codings(meta.and_then(|m| m.get("tag")));
        codes.extend(security.iter().cloned());
        for element in CODE_ELEMENTS {
            codes.extend(codings(resource.get(element)));
        }
        Self { reference: format!("{resource_type}/{}", text("id")), resource_type, profiles, security, codes }
    }
}

/// Whether `wanted` names `have`: same code, and the same system when `wanted` gives one.
fn same(wanted: &Code, have: &Code) -> bool {
    wanted.code == have.code && wanted.system.as_ref().is_none_or(|s| have.system.as_ref() == Some(s))
}

impl Rule {
    pub(crate) fn matches(&self, asker: &Asker<'_>, resource: &ResourceCodes) -> Match {
        [
            self.period_matches(asker),
            Match::any(&self.actors, |a| actor_matches(a, asker)),
            Match::any(&self.actions, |a| action_matches(a, asker.action)),
            Match::any(&self.security_labels, |l| Match::of(resource.security.iter().any(|s| same(l, s)))),
            Match::any(&self.purposes, |p| purpose_matches(p, &asker.context.purpose_of_use)),
            Match::any(&self.classes, |c| class_matches(c, resource)),
            Match::any(&self.codes, |c| Match::of(resource.codes.iter().any(|have| same(c, have)))),
            Match::any(&self.data, |(meaning, reference)| data_matches(meaning, reference, resource)),
            if self.data_period { Match::Unknown } else { Match::Yes },
        ]
        .into_iter()
        .fold(Match::Yes, Match::and)
    }

    fn period_matches(&self, asker: &Asker<'_>) -> Match {
        if self.bad_period {
            return Match::Unknown;
        }
        let Some((start, end)) = self.period else { return Match::Yes };
        let now = asker.context.epoch_seconds;
        Match::of(start.is_none_or(|s| s <= now) && end.is_none_or(|e| now <= e))
    }
}

fn actor_matches(actor: &Actor, asker: &Asker<'_>) -> Match {
    let p = asker.principal;
    match actor {
        Actor::Reference(reference) => {
            let resource_type = reference.split('/').next().unwrap_or_default();
            if !PERSON_TYPES.contains(&resource_type) {
                return Match::Unknown;
            }
            Match::of(local_reference(&p.fhir_user).is_some_and(|me| me == *reference))
        }
        Actor::Identifier(system, value) => match system.as_str() {
            CLIENT_ID_SYSTEM => Match::of(!p.client_id.is_empty() && p.client_id == *value),
            TENANT_SYSTEM => Match::of(!p.tenant.is_empty() && p.tenant == *value),
            ROLE_SYSTEM => Match::of(p.roles.contains(value)),
            GROUP_SYSTEM => Match::of(p.groups.contains(value)),
            _ => Match::Unknown,
        },
        Actor::Unreadable => Match::Unknown,
    }
}

/// `provision.action` (consentaction: access, collect, use, disclose, correct) against the
/// interaction: reading and searching is `access`, `use` and `disclose`; writing is `collect`
/// and `correct`; deleting is `correct`.
fn action_matches(code: &Code, action: Action) -> Match {
    use Action as A;
    if code.system.as_deref().is_some_and(|s| s != "http://terminology.hl7.org/CodeSystem/consentaction") {
        return Match::Unknown;
    }
    let covered: &[&str] = match action {
        A::Create | A::Update | A::Patch | A::Import => &["collect", "correct"],
        A::Delete => &["correct"],
        A::Batch | A::Transaction | A::Operation | A::ConvertData | A::Capabilities => {
            &["access", "use", "disclose", "collect", "correct"]
        }
        _ => &["access", "use", "disclose"],
    };
    match code.code.as_str() {
        "access" | "use" | "disclose" | "collect" | "correct" => Match::of(covered.contains(&code.code.as_str())),
        _ => Match::Unknown,
    }
}

/// `provision.purpose` against `X-Purpose-Of-Use` (a code, or `system|code`).
fn purpose_matches(purpose: &Code, asked: &str) -> Match {
    let have = match asked.split_once('|') {
        Some((system, code)) => Code { system: Some(system.to_owned()), code: code.to_owned() },
        None => Code { system: None, code: asked.to_owned() },
    };
    Match::of(
        !asked.is_empty() && purpose.code == have.code && (have.system.is_none() || purpose.system == have.system),
    )
}

/// `provision.class`: a resource type (`Observation`) or a profile URL.
fn class_matches(class: &Code, resource: &ResourceCodes) -> Match {
    let code = class.code.as_str();
    if code.contains("://") {
        return Match::of(resource.profiles.iter().any(|p| p == code));
    }
    let resource_types = "http://hl7.org/fhir/resource-types";
    let plain = code.chars().all(|c| c.is_ascii_alphanumeric()) && code.starts_with(|c: char| c.is_ascii_uppercase());
    if plain && class.system.as_deref().is_none_or(|s| s == resource_types) {
        return Match::of(resource.resource_type == code);
    }
    Match::Unknown
}

/// `provision.data`: the resource itself (meaning `instance` or `related`); `dependents` and
/// `authoredby` name more than the gateway can see.
fn data_matches(meaning: &str, reference: &str, resource: &ResourceCodes) -> Match {
    if !reference.is_empty() && reference == resource.reference {
        return Match::Yes;
    }
    match meaning {
        "instance" | "related" => Match::No,
        _ => Match::Unknown,
    }
}

//! Search values for generated tests: for an index value the engine extracts from a fixture
//! (the spec's own SearchParameter expressions), a query value that must find the fixture and
//! one that must not. FHIR's special characters `,` `$` `|` `\` are escaped with `\`
//! (search.html "Escaping Search Parameters"); values holding `&` `=` `%` (which the runner
//! sends as they are in the query) or a `|` in a reference (a canonical's version) are passed
//! over; strings are searched by a prefix, as string search matches.

use fhirgate_engine::storage::IndexValue;

/// How long a string prefix is searched.
const PREFIX_CHARS: usize = 24;

/// A value that must match and one that must not, as written after `code=`; several
/// `code=value` pairs are joined by `&code=` (a date range is two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Probe {
    /// A modifier the parameter is searched with (`:text` for a concept with text only).
    pub modifier: &'static str,
    pub matching: Vec<String>,
    pub missing: String,
}

/// The probe of one index value, if it can be written plainly. `targets` are the types a
/// reference parameter may point to (empty: any).
pub(super) fn probe(value: &IndexValue, targets: &[String]) -> Option<Probe> {
    let one = |matching: String, missing: &str| {
        Some(Probe { modifier: "", matching: vec![matching], missing: missing.to_owned() })
    };
    match value {
        IndexValue::String { exact, .. } => one(escaped(&prefix(exact)?), "zzqx-no-such-text"),
        // A concept with text only is found by `:text` (text search, by a prefix of it).
        IndexValue::Token { code: None, text: Some(text), .. } => Some(Probe {
            modifier: ":text",
            matching: vec![escaped(&prefix(text)?)],
            missing: "zzqx-no-such-text".into(),
        }),
        IndexValue::Token { system, code: Some(code), .. } => {
            writable(code).then_some(())?;
            if matches!(code.as_str(), "true" | "false") && system.is_none() {
                let other = if code == "true" { "false" } else { "true" };
                return one(code.clone(), other);
            }
            match system {
                Some(system) if writable(system) => {
                    one(format!("{}|{}", escaped(system), escaped(code)), "http://example.org/no-such-system|x")
                }
                _ => one(escaped(code), "zzqx-no-such-code"),
            }
        }
        IndexValue::Reference { reference, resource_type, id } => {
            (writable(reference) && !reference.contains('|')).then_some(())?;
            let reference = escaped(reference);
            match (resource_type, id) {
                // A reference to a type the parameter does not point to is the example's slip:
                // a query naming that type is refused.
                (Some(t), Some(_)) if targets.is_empty() || targets.contains(t) => {
                    one(reference, &format!("{t}/zzqx-no-such-id"))
                }
                (None, _) if reference.contains("://") || reference.starts_with("urn:") => {
                    one(reference, "http://example.org/zzqx-no-such-thing")
                }
                // `#contained`, or neither `Type/id` nor a URL (a bare query value is an id).
                _ => None,
            }
        }
        IndexValue::Date { start, end } => {
            // Overlapping ranges: the fixture's value lies within [start, end].
            // An open end (a period without one) is not searched as a bound.
            let far = if start.as_str() > "1001" { "lt1001-01-01" } else { "gt9000-01-01" };
            (end.as_str() < "9000" || far.starts_with("lt")).then_some(())?;
            let mut matching = vec![format!("ge{start}")];
            if end.as_str() < "9000" {
                matching.push(format!("le{end}"));
            }
            Some(Probe { modifier: "", matching, missing: far.to_owned() })
        }
        IndexValue::Number { value, .. } => {
            writable(value).then_some(())?;
            one(value.clone(), "-987654321")
        }
        IndexValue::Quantity { value, system, code, .. } => {
            writable(value).then_some(())?;
            match (system, code) {
                (Some(s), Some(c)) if writable(s) && writable(c) => {
                    one(format!("{value}|{}|{}", escaped(s), escaped(c)), "-987654321")
                }
                _ => one(value.clone(), "-987654321"),
            }
        }
        IndexValue::Uri { value } => {
            writable(value).then_some(())?;
            one(escaped(value), "http://example.org/zzqx-no-such-uri")
        }
        IndexValue::Composite { components } => {
            // Every component as a single value, joined by `$`; the first one made missing.
            let probes: Option<Vec<Probe>> = components.iter().map(|c| probe(c, &[])).collect();
            let probes = probes?;
            probes.iter().all(|p| p.matching.len() == 1 && p.modifier.is_empty()).then_some(())?;
            let matching = probes.iter().map(|p| p.matching[0].as_str()).collect::<Vec<_>>().join("$");
            let mut missing: Vec<&str> = probes.iter().map(|p| p.matching[0].as_str()).collect();
            let first = probes.first()?;
            missing[0] = &first.missing;
            one(matching, &missing.join("$"))
        }
        _ => None,
    }
}

/// Characters the runner sends as they are in a query, so a value cannot hold them.
fn unsendable(c: char) -> bool {
    matches!(c, '&' | '=' | '%') || c.is_control()
}

/// Whether a value can be searched for (escaped).
fn writable(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(unsendable) && value.len() <= 200
}

/// A string's first [`PREFIX_CHARS`] characters, up to one that cannot be sent; none when that
/// leaves less than two (a short prefix says little).
fn prefix(text: &str) -> Option<String> {
    let prefix: String = text.trim().chars().take_while(|c| !unsendable(*c)).take(PREFIX_CHARS).collect();
    let prefix = prefix.trim_end();
    (prefix.chars().count() >= 2).then(|| prefix.to_owned())
}

/// A value with FHIR search's special characters escaped.
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '$' | '|' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use fhirgate_engine::storage::IndexValue;

    use super::{Probe, probe};

    fn probe_of(value: IndexValue) -> Result<Probe, String> {
        probe(&value, &["Patient".to_owned()]).ok_or_else(|| format!("no probe for {value:?}"))
    }

    #[test]
    fn probes_by_type() -> Result<(), String> {
        let string = |s: &str| IndexValue::String { value: s.to_lowercase(), exact: s.into() };
        assert_eq!(probe_of(string("Chalmers, Peter"))?.matching, [r"Chalmers\, Peter"]);
        assert!(probe_of(string("&x")).is_err(), "a value starting with a character the query cannot carry");
        let token = IndexValue::Token { system: Some("urn:x".into()), code: Some("a|b,c".into()), text: None };
        assert_eq!(probe_of(token)?.matching, [r"urn:x|a\|b\,c"]);
        let token = IndexValue::Token { system: Some("http://loinc.org".into()), code: Some("1-8".into()), text: None };
        assert_eq!(probe_of(token)?.matching, ["http://loinc.org|1-8"]);
        let boolean = IndexValue::Token { system: None, code: Some("true".into()), text: None };
        assert_eq!(probe_of(boolean)?.missing, "false");
        let text_only = IndexValue::Token { system: None, code: None, text: Some("Weight loss".into()) };
        assert_eq!(
            (probe_of(text_only.clone())?.modifier, probe_of(text_only)?.matching),
            (":text", vec!["Weight loss".into()])
        );
        let reference = IndexValue::Reference {
            reference: "Patient/1".into(),
            resource_type: Some("Patient".into()),
            id: Some("1".into()),
        };
        assert_eq!(probe_of(reference)?.missing, "Patient/zzqx-no-such-id");
        let elsewhere = IndexValue::Reference {
            reference: "Practitioner/1".into(),
            resource_type: Some("Practitioner".into()),
            id: Some("1".into()),
        };
        assert!(probe_of(elsewhere).is_err(), "a type the parameter does not point to");
        let bare = IndexValue::Reference { reference: "lib-1".into(), resource_type: None, id: None };
        assert!(probe_of(bare).is_err(), "neither Type/id nor a URL");
        let open =
            IndexValue::Date { start: "2020-01-01T00:00:00.000Z".into(), end: "9999-12-31T23:59:59.999Z".into() };
        assert_eq!(probe_of(open)?.matching, ["ge2020-01-01T00:00:00.000Z"]);
        let date =
            IndexValue::Date { start: "2020-01-01T00:00:00.000Z".into(), end: "2020-01-01T23:59:59.999Z".into() };
        assert_eq!(
            probe_of(date)?,
            Probe {
                modifier: "",
                matching: vec!["ge2020-01-01T00:00:00.000Z".into(), "le2020-01-01T23:59:59.999Z".into()],
                missing: "lt1001-01-01".into()
            }
        );
        let composite = IndexValue::Composite {
            components: vec![
                IndexValue::Token { system: Some("http://loinc.org".into()), code: Some("1-8".into()), text: None },
                IndexValue::Uri { value: "http://x".into() },
            ],
        };
        assert_eq!(
            probe_of(composite)?,
            Probe {
                modifier: "",
                matching: vec!["http://loinc.org|1-8$http://x".into()],
                missing: "http://example.org/no-such-system|x$http://x".into()
            }
        );
        Ok(())
    }
}

//! `compose.include.filter` on a loaded code system (<https://hl7.org/fhir/R4/valueset.html#compose>,
//! operators of <https://hl7.org/fhir/R4/valueset-filter-operator.html>): the concepts a filter
//! selects, or why it cannot be answered from what is loaded.

use std::collections::HashSet;

use super::code_system::CodeSystem;

/// Largest compiled size of a `regex` filter (the regex crate runs in linear time; this bounds
/// its memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The concepts (indexes into [`CodeSystem::concepts`]) that `property op value` selects.
pub(super) fn select(system: &CodeSystem, property: &str, op: &str, value: &str) -> Result<Vec<usize>, String> {
    let all = || 0..system.concepts.len();
    let concept =
        |code: &str| system.find(code).ok_or_else(|| format!("code `{code}` of the filter is not in `{}`", system.url));
    let hierarchy = matches!(property, "concept" | "code" | "parent" | "child");
    Ok(match op {
        "is-a" if hierarchy => system.descendants_and_self(concept(value)?),
        "descendent-of" if hierarchy => {
            let start = concept(value)?;
            system.descendants_and_self(start).into_iter().filter(|&i| i != start).collect()
        }
        "is-not-a" if hierarchy => {
            let below: HashSet<usize> = system.descendants_and_self(concept(value)?).into_iter().collect();
            all().filter(|i| !below.contains(i)).collect()
        }
        "generalizes" if hierarchy => system.ancestors_and_self(concept(value)?),
        "in" | "not-in" if hierarchy => {
            let listed: HashSet<usize> = value.split(',').filter_map(|c| system.find(c.trim())).collect();
            all().filter(|i| listed.contains(i) == (op == "in")).collect()
        }
        "=" if hierarchy => concept(value).map(|i| vec![i])?,
        "regex" => {
            let pattern = regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("the regex filter `{value}` is not a valid pattern: {e}"))?;
            all()
                .filter(|&i| {
                    let c = &system.concepts[i];
                    if hierarchy {
                        pattern.is_match(&c.code)
                    } else {
                        CodeSystem::property_values(c, property).any(|v| pattern.is_match(&v))
                    }
                })
                .collect()
        }
        "=" => {
            all().filter(|&i| CodeSystem::property_values(&system.concepts[i], property).any(|v| v == value)).collect()
        }
        "in" | "not-in" => {
            let listed: HashSet<&str> = value.split(',').map(str::trim).collect();
            all()
                .filter(|&i| {
                    let has =
                        CodeSystem::property_values(&system.concepts[i], property).any(|v| listed.contains(v.as_str()));
                    has == (op == "in")
                })
                .collect()
        }
        "exists" => {
            let wanted = value != "false";
            all()
                .filter(|&i| CodeSystem::property_values(&system.concepts[i], property).next().is_some() == wanted)
                .collect()
        }
        other => {
            return Err(format!(
                "the filter `{property} {other} {value}` on `{}` is not supported by this server",
                system.url
            ));
        }
    })
}

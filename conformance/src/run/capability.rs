//! Whether a script may run against this server (before anything is sent for it):
//!
//! - `TestScript.metadata.capability` with `required = true` names a CapabilityStatement
//!   (`capabilities`: a contained `#id`, a file relative to the script, the `url` of a
//!   contained one, or a canonical found in the loaded packages and `--capabilities`
//!   directories; one that cannot be found is a warning and the script runs). Every resource
//!   type, interaction, search parameter and operation it lists, every system interaction and
//!   operation, and every format but JSON, must be claimed by the server's own
//!   CapabilityStatement (`GET [base]/metadata`, read once per run); otherwise the script is
//!   skipped with the list of what is missing (`Options::capability_check` turns this off).
//! - A variable with nothing to take its value from (only a `hint` for the tester) needs
//!   `--var`; without it the script is skipped, saying so.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::canonical::Library;
use super::fixture::fixture_file;
use super::operation::mime;
use super::{Options, text};
use crate::http::{Client, Request};
use crate::script::{Script, read_resource};

/// What a CapabilityStatement claims, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Claims {
    /// System interactions (`transaction`, `batch`, `history-system`, `search-system`) and
    /// operations as `$name`.
    system: BTreeSet<String>,
    /// Per resource type: interactions, search parameters as `?name`, operations as `$name`.
    types: BTreeMap<String, BTreeSet<String>>,
    /// Formats (`json`, `xml`: [`crate::format::format_code`]).
    formats: BTreeSet<String>,
}

impl Claims {
    /// The claims of the `server` (or unspecified mode) `rest` entries of a statement.
    pub(super) fn of(statement: &Value) -> Self {
        let mut claims = Self::default();
        let formats = statement.get("format").and_then(Value::as_array).into_iter().flatten();
        claims.formats.extend(formats.filter_map(Value::as_str).map(crate::format::format_code));
        let rests = statement.get("rest").and_then(Value::as_array).into_iter().flatten();
        for rest in rests.filter(|r| text(r, "mode").is_none_or(|m| m == "server")) {
            claims.system.extend(names(rest));
            for resource in list(rest, "resource") {
                if let Some(resource_type) = text(resource, "type") {
                    claims.types.entry(resource_type.to_owned()).or_default().extend(names(resource));
                }
            }
        }
        claims
    }

    /// Whether `name` is claimed for `resource_type` (`None`: at system level).
    pub(super) fn claims(&self, resource_type: Option<&str>, name: &str) -> bool {
        match resource_type {
            None => self.system.contains(name),
            Some(t) => self.types.get(t).is_some_and(|names| names.contains(name)),
        }
    }

    /// What `required` lists that these claims do not, as readable items.
    pub(super) fn missing(&self, required: &Self) -> Vec<String> {
        let mut missing: Vec<String> =
            required.system.difference(&self.system).map(|name| format!("system `{name}`")).collect();
        // A server is taken to speak JSON whether it says so or not.
        let spoken = |format: &&String| format.as_str() != "json" && !self.formats.contains(*format);
        missing.extend(required.formats.iter().filter(spoken).map(|format| format!("format `{format}`")));
        for (resource_type, wanted) in &required.types {
            match self.types.get(resource_type) {
                None => missing.push(format!("resource `{resource_type}`")),
                Some(claimed) => {
                    missing.extend(wanted.difference(claimed).map(|name| format!("`{resource_type}` `{name}`")));
                }
            }
        }
        missing
    }
}

/// The objects of an array property.
fn list<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    value.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Interactions by code, search parameters as `?name`, operations as `$name`, and the
/// conditional interactions claimed (`conditionalCreate`, `conditionalUpdate`, and
/// `conditionalRead`/`conditionalDelete` other than `not-supported`) by their element name.
fn names(value: &Value) -> impl Iterator<Item = String> + '_ {
    let interactions = list(value, "interaction").filter_map(|i| text(i, "code")).map(str::to_owned);
    let params = list(value, "searchParam").filter_map(|p| text(p, "name")).map(|n| format!("?{n}"));
    let operations =
        list(value, "operation").filter_map(|o| text(o, "name")).map(|n| format!("${}", n.trim_start_matches('$')));
    let conditional = ["conditionalCreate", "conditionalUpdate", "conditionalRead", "conditionalDelete"]
        .into_iter()
        .filter(|key| match value.get(*key) {
            Some(Value::Bool(claimed)) => *claimed,
            Some(Value::String(code)) => code != "not-supported",
            _ => false,
        })
        .map(str::to_owned);
    interactions.chain(params).chain(operations).chain(conditional)
}

/// Reads the server's CapabilityStatement.
pub(super) fn server_claims(client: &Client, options: &Options) -> Result<Claims, String> {
    let mut headers = vec![("Accept".to_owned(), mime("json").unwrap_or_default())];
    if let Some(token) = &options.bearer {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    let url = format!("{}/metadata", options.base_url);
    let request = Request { method: "GET".into(), url: url.clone(), headers, body: None };
    let response = client.send(&request).map_err(|e| e.to_string())?;
    match &response.resource {
        Some(statement) if response.status == 200 && text(statement, "resourceType") == Some("CapabilityStatement") => {
            Ok(Claims::of(statement))
        }
        _ => Err(format!("`GET {url}` answered {} without a CapabilityStatement", response.status)),
    }
}

/// The claims a script requires (`metadata.capability` with `required = true`), merged, and a
/// warning per named statement that cannot be found (the script runs without that check: it is
/// about the server, not a reason to test nothing).
pub(super) fn required(script: &Script, library: &Library) -> (Option<Claims>, Vec<String>) {
    let capabilities = script.resource.get("metadata").map(|m| list(m, "capability")).into_iter().flatten();
    let mut merged: Option<Claims> = None;
    let mut warnings = Vec::new();
    for capability in capabilities.filter(|c| c.get("required").and_then(Value::as_bool) == Some(true)) {
        let Some(canonical) = text(capability, "capabilities") else { continue };
        let Some(statement) = statement(script, library, canonical) else {
            warnings.push(format!(
                "the required CapabilityStatement `{canonical}` was not found (neither contained, nor a file beside \
                 the script, nor in the loaded packages or `--capabilities` directories): not checked"
            ));
            continue;
        };
        let claims = Claims::of(&statement);
        let all = merged.get_or_insert_with(Claims::default);
        all.system.extend(claims.system);
        all.formats.extend(claims.formats);
        for (resource_type, names) in claims.types {
            all.types.entry(resource_type).or_default().extend(names);
        }
    }
    (merged, warnings)
}

/// The CapabilityStatement a canonical names: `#id` contained, a contained one with that `url`,
/// a file relative to the script, or one of the `library` with that canonical.
fn statement(script: &Script, library: &Library, canonical: &str) -> Option<Value> {
    let contained = list(&script.resource, "contained").find(|c| match canonical.strip_prefix('#') {
        Some(id) => text(c, "id") == Some(id),
        None => text(c, "url") == Some(canonical),
    });
    if let Some(found) = contained {
        return Some(found.clone());
    }
    let file = fixture_file(script.dir(), canonical.split('|').next().unwrap_or(canonical));
    let from_file = file
        .and_then(|f| read_resource(&f).ok())
        .map(|(resource, _)| resource)
        .filter(|r| text(r, "resourceType") == Some("CapabilityStatement"));
    from_file.or_else(|| library.get(canonical).cloned())
}

/// The variables only the tester can give (nothing to take a value from) that `options` does
/// not give.
pub(super) fn unset_variables(script: &Script, options: &Options) -> Vec<String> {
    let sources = ["defaultValue", "expression", "path", "headerField"];
    list(&script.resource, "variable")
        .filter(|v| sources.iter().all(|s| v.get(*s).is_none()))
        .filter_map(|v| text(v, "name"))
        .filter(|name| !options.variables.contains_key(*name))
        .map(|name| {
            match list(&script.resource, "variable")
                .find(|v| text(v, "name") == Some(name))
                .and_then(|v| text(v, "hint"))
            {
                Some(hint) => format!("variable `{name}` needs a value (`--var {name}=VALUE`: {hint})"),
                None => format!("variable `{name}` needs a value (`--var {name}=VALUE`)"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Claims;

    #[test]
    fn what_a_script_requires_beyond_the_claims() {
        let server = Claims::of(&json!({"rest": [
            {"mode": "server", "interaction": [{"code": "transaction"}], "resource": [
                {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [{"name": "family", "type": "string"}]}]},
            {"mode": "client", "interaction": [{"code": "batch"}]}
        ]}));
        let required = Claims::of(&json!({"rest": [{"mode": "server",
        "interaction": [{"code": "transaction"}, {"code": "batch"}],
        "resource": [
            {"type": "Patient", "interaction": [{"code": "read"}, {"code": "patch"}], "conditionalCreate": true,
             "conditionalUpdate": false, "conditionalDelete": "not-supported",
             "searchParam": [{"name": "family"}, {"name": "birthdate"}], "operation": [{"name": "everything"}]},
            {"type": "Observation", "interaction": [{"code": "read"}]}
        ]}]}));
        assert_eq!(
            server.missing(&required),
            [
                "system `batch`",
                "resource `Observation`",
                "`Patient` `$everything`",
                "`Patient` `?birthdate`",
                "`Patient` `conditionalCreate`",
                "`Patient` `patch`"
            ],
            "client claims do not count"
        );
        assert!(server.missing(&server).is_empty());
        let xml = Claims::of(&json!({"format": ["application/fhir+xml", "json"]}));
        assert_eq!(Claims::default().missing(&xml), ["format `xml`"], "JSON is taken as spoken");
        assert!(Claims::of(&json!({"format": ["xml"]})).missing(&xml).is_empty());
    }
}

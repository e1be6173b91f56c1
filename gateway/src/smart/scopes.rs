//! SMART scopes to the upstream provider's scopes and back. Entra ID scope names cannot hold `/`
//! or `?`, so a SMART resource scope `patient/Observation.rs?category=laboratory` is asked as
//! `<prefix>patient.Observation.rs` (`*` as `all`); what the provider grants (its token's `scp`)
//! decides which of the requested SMART scopes the app gets: a requested scope is granted only
//! when its upstream form is, so a granular scope stays as narrow as the app asked.

use std::collections::BTreeSet;

/// OpenID Connect scopes passed to the provider as they are.
const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// Scopes the proxy itself honours (launch context, identity), never sent upstream.
const LOCAL: [&str; 5] = ["launch", "launch/patient", "launch/encounter", "fhirUser", "online_access"];

/// One requested scope, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An OpenID Connect scope.
    Oidc(String),
    /// A launch or identity scope the proxy honours.
    Local(String),
    /// A SMART resource scope and its upstream name (without the prefix).
    Resource { smart: String, upstream: String },
}

/// Classifies the space-separated `scope` parameter; unknown scopes are left out.
pub fn parse(scope: &str) -> Vec<Scope> {
    let mut out = Vec::new();
    for s in scope.split_whitespace() {
        if OIDC.contains(&s) {
            out.push(Scope::Oidc(s.to_string()));
        } else if LOCAL.contains(&s) {
            out.push(Scope::Local(s.to_string()));
        } else if let Some(upstream) = upstream_name(s) {
            out.push(Scope::Resource { smart: s.to_string(), upstream });
        }
    }
    out
}

/// `patient/Observation.rs?x=y` → `patient.Observation.rs`; `user/*.read` → `user.all.read`.
fn upstream_name(scope: &str) -> Option<String> {
    let (context, rest) = scope.split_once('/')?;
    if !matches!(context, "patient" | "user" | "system") {
        return None;
    }
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (resource, permissions) = rest.rsplit_once('.')?;
    let resource_ok = resource == "*" || (!resource.is_empty() && resource.chars().all(|c| c.is_ascii_alphanumeric()));
    let permissions_ok = matches!(permissions, "read" | "write" | "*")
        || (!permissions.is_empty() && permissions.chars().all(|c| "cruds".contains(c)));
    if !resource_ok || !permissions_ok {
        return None;
    }
    let resource = if resource == "*" { "all" } else { resource };
    let permissions = if permissions == "*" { "all" } else { permissions };
    Some(format!("{context}.{resource}.{permissions}"))
}

/// The `scope` parameter sent upstream: the OIDC scopes and each resource scope's upstream name
/// with `prefix`, once each.
pub fn upstream_request(scopes: &[Scope], prefix: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        let s = match scope {
            Scope::Oidc(s) => s.clone(),
            Scope::Resource { upstream, .. } => format!("{prefix}{upstream}"),
            Scope::Local(_) => continue,
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// The SMART scopes granted: the requested resource scopes whose upstream name the provider
/// granted (`granted`: its token's scopes, with or without `prefix`), and the requested local and
/// OIDC scopes.
pub fn granted(requested: &[Scope], granted: &[String], prefix: &str) -> Vec<String> {
    let upstream: BTreeSet<&str> = granted.iter().map(|g| g.strip_prefix(prefix).unwrap_or(g)).collect();
    requested
        .iter()
        .filter_map(|scope| match scope {
            Scope::Resource { smart, upstream: name } => upstream.contains(name.as_str()).then(|| smart.clone()),
            Scope::Oidc(s) | Scope::Local(s) => Some(s.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_scopes_go_up_as_entra_names_and_come_back_as_asked() {
        let asked =
            parse("openid fhirUser launch/patient patient/Observation.rs?category=laboratory user/*.read bad/x.y");
        assert_eq!(asked.len(), 5, "{asked:?}");
        assert_eq!(
            upstream_request(&asked, "api://fhirgate/"),
            "openid api://fhirgate/patient.Observation.rs api://fhirgate/user.all.read"
        );
        let got = granted(&asked, &["patient.Observation.rs".into(), "openid".into()], "api://fhirgate/");
        assert_eq!(got, ["openid", "fhirUser", "launch/patient", "patient/Observation.rs?category=laboratory"]);
        let none = granted(&asked, &[], "");
        assert!(!none.iter().any(|s| s.contains('.')), "nothing granted upstream, no resource scope: {none:?}");
    }

    #[test]
    fn odd_scopes_are_left_out() {
        for odd in [
            "patient/Obs ervation.rs",
            "patient/.rs",
            "group/Patient.rs",
            "patient/Observation.xyz",
            "patient/Observation",
        ] {
            assert!(parse(odd).is_empty(), "{odd}");
        }
    }
}

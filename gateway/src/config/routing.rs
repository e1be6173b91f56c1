//! The routing table in force (`[[targets]]`, `[[routes]]` and their defaults), its checks at
//! start (each problem named with its route or target), and its description for
//! `fhirgate config`. The router itself is `crate::routing`.

use std::collections::HashSet;

use fhirgate_engine::definitions::Definitions;
use fhirgate_engine::storage::redact_url;

use super::{Config, RouteConfig, TargetConfig};

/// The id of the target and the route made when none is configured.
pub const DEFAULT_ID: &str = "default";

/// First path segments that are the server's own, never a route prefix.
const RESERVED: [&str; 6] = ["metadata", "health", "metrics", ".well-known", "_history", "_search"];

/// Longest id prefix: a prefixed id must stay a FHIR id (at most 64 characters).
const MAX_ID_PREFIX: usize = 32;

/// Where a target's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A store of this process (`store`).
    Local,
    /// Another FHIR server (`base_url`).
    Remote,
}

impl TargetConfig {
    /// Local or remote (a target with `base_url` is remote).
    pub fn kind(&self) -> Kind {
        if self.base_url.is_some() { Kind::Remote } else { Kind::Local }
    }
}

impl RouteConfig {
    /// The prefix's segments (`"a/b"` → `["a", "b"]`; `""` → none).
    pub fn prefix_segments(&self) -> Vec<&str> {
        self.prefix.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The prefix without surrounding slashes.
    pub fn normalized_prefix(&self) -> String {
        self.prefix_segments().join("/")
    }

    /// The target of writes that name no prefixed id.
    pub fn write_target(&self) -> Option<&str> {
        self.write_target.as_deref().or_else(|| self.targets.first().map(String::as_str))
    }

    /// The id prefix of `target` on this route (`""` for none).
    pub fn id_prefix(&self, target: &str) -> &str {
        self.id_prefixes.get(target).map_or("", String::as_str)
    }
}

/// `[[targets]]`, or one local target `default` on `store.url`.
pub fn targets(config: &Config) -> Vec<TargetConfig> {
    if config.targets.is_empty() {
        vec![TargetConfig { id: DEFAULT_ID.into(), store: Some(config.store_url()), ..TargetConfig::default() }]
    } else {
        config.targets.clone()
    }
}

/// `[[routes]]`, or one route `default` with prefix `""` on every target.
pub fn routes(config: &Config) -> Vec<RouteConfig> {
    if config.routes.is_empty() {
        vec![RouteConfig {
            id: DEFAULT_ID.into(),
            targets: targets(config).into_iter().map(|t| t.id).collect(),
            ..RouteConfig::default()
        }]
    } else {
        config.routes.clone()
    }
}

fn name_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Every problem of the routing table, the first one reported.
pub fn check(config: &Config) -> Result<(), String> {
    let targets = targets(config);
    let mut ids = HashSet::new();
    for target in &targets {
        check_target(target)?;
        if !ids.insert(target.id.as_str()) {
            return Err(format!("target `{}` is declared twice: target ids must be unique", target.id));
        }
    }
    let routes = routes(config);
    let mut route_ids = HashSet::new();
    for (n, route) in routes.iter().enumerate() {
        check_route(route, &ids)?;
        let streamed = route.targets.first().and_then(|t| targets.iter().find(|c| &c.id == t));
        if route.type_level_only && streamed.is_some_and(|t| t.kind() != Kind::Remote) {
            return Err(format!(
                "route `{}`: `type_level_only = true` streams a remote target's answers; `{}` is a local store",
                route.id, route.targets[0]
            ));
        }
        if !route_ids.insert(route.id.as_str()) {
            return Err(format!("route `{}` is declared twice: route ids must be unique", route.id));
        }
        if let Some(earlier) = routes[..n]
            .iter()
            .find(|r| r.normalized_prefix() == route.normalized_prefix() && r.types.is_empty() && r.claim.is_none())
        {
            return Err(format!(
                "route `{}` is unreachable: the earlier route `{}` has the same prefix `{}` and no `types` or \
                 `claim`, so it takes every request first",
                route.id,
                earlier.id,
                route.normalized_prefix()
            ));
        }
    }
    Ok(())
}

fn check_target(target: &TargetConfig) -> Result<(), String> {
    let id = &target.id;
    if !name_ok(id) {
        return Err(format!(
            "target `{id}`: an id is 1 to 64 letters, digits, `-`, `_` or `.` (it names the target in routes, logs \
             and `context.target`)"
        ));
    }
    match (&target.store, &target.base_url) {
        (Some(_), Some(_)) => {
            Err(format!("target `{id}`: set `store` (a local store) or `base_url` (a remote FHIR server), not both"))
        }
        (None, None) => {
            Err(format!("target `{id}`: set `store` (a local store URL) or `base_url` (a remote FHIR server's base)"))
        }
        (Some(store), None) => {
            let known = ["sqlite:", "postgres://", "postgresql://", "cosmos:"];
            if known.iter().any(|k| store.starts_with(k)) {
                Ok(())
            } else {
                Err(format!(
                    "target `{id}`: unsupported store URL `{}`: expected `sqlite:PATH`, `postgres://…` or `cosmos:…`",
                    redact_url(store)
                ))
            }
        }
        (None, Some(base)) => check_base_url(id, base),
    }
}

fn check_base_url(id: &str, base: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("target `{id}`: `base_url = \"{base}\"` {why}"));
    let Some(rest) = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://")) else {
        return bad("must start with `https://` or `http://`");
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return bad("must name a host (and no user information)");
    }
    if base.contains(['?', '#', ' ']) {
        return bad("must be a plain base URL, without query, fragment or spaces");
    }
    Ok(())
}

fn check_route(route: &RouteConfig, targets: &HashSet<&str>) -> Result<(), String> {
    let id = &route.id;
    let bad = |why: String| Err(format!("route `{id}`: {why}"));
    if !name_ok(id) {
        return bad("an id is 1 to 64 letters, digits, `-`, `_` or `.`".into());
    }
    let defs = Definitions::r4();
    let types: HashSet<&str> = defs.resource_types().collect();
    for segment in route.prefix_segments() {
        if types.contains(segment) {
            return bad(format!("prefix `{}`: `{segment}` is a resource type name", route.prefix));
        }
        if RESERVED.contains(&segment)
            || segment.starts_with(['_', '$', '.'])
            || !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad(format!(
                "prefix `{}`: segment `{segment}` must be letters, digits, `-`, `_` or `.`, not start with `_`, `$` or \
                 `.`, and not be one of {RESERVED:?}",
                route.prefix
            ));
        }
    }
    for t in &route.types {
        if !types.contains(t.as_str()) {
            return bad(format!("`types`: `{t}` is not an R4 resource type"));
        }
    }
    match (&route.claim, &route.claim_value) {
        (Some(_), None) => return bad("`claim` is set without `claim_value`".into()),
        (None, Some(_)) => return bad("`claim_value` is set without `claim`".into()),
        (Some(c), Some(_)) if c.is_empty() => return bad("`claim` is empty".into()),
        _ => {}
    }
    if route.targets.is_empty() {
        return bad("`targets` is empty: name at least one target".into());
    }
    let mut seen = HashSet::new();
    for t in &route.targets {
        if !targets.contains(t.as_str()) {
            return bad(format!("`targets`: no target `{t}` is declared"));
        }
        if !seen.insert(t.as_str()) {
            return bad(format!("`targets`: `{t}` is listed twice"));
        }
    }
    if let Some(w) = &route.write_target {
        if !route.targets.contains(w) {
            return bad(format!("`write_target = \"{w}\"` is not one of the route's targets"));
        }
    }
    let mut prefixes: Vec<(&str, &str)> = Vec::new();
    for (target, prefix) in &route.id_prefixes {
        if !route.targets.contains(target) {
            return bad(format!("`id_prefixes`: `{target}` is not one of the route's targets"));
        }
        if prefix.is_empty()
            || prefix.len() > MAX_ID_PREFIX
            || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return bad(format!(
                "`id_prefixes`: `{prefix}` (target `{target}`) must be 1 to {MAX_ID_PREFIX} letters, digits, `-` or \
                 `.`, so prefixed ids stay FHIR ids"
            ));
        }
        if let Some((other, _)) = prefixes.iter().find(|(_, p)| p.starts_with(prefix.as_str()) || prefix.starts_with(p))
        {
            return bad(format!(
                "`id_prefixes`: targets `{other}` and `{target}` share the prefix `{prefix}` (one prefix may not \
                 begin another): an id could not tell its target"
            ));
        }
        prefixes.push((target, prefix));
    }
    if !matches!(route.on_target_error.as_str(), "partial" | "fail") {
        return bad(format!("`on_target_error = \"{}\"`: expected `partial` or `fail`", route.on_target_error));
    }
    if route.type_level_only && (route.targets.len() != 1 || !route.id_prefixes.is_empty()) {
        return bad(
            "`type_level_only = true` streams one remote target's answers unchanged: it needs exactly one target \
             and no `id_prefixes`"
                .into(),
        );
    }
    Ok(())
}

/// The resolved routing table as TOML comments: routes in order, with prefix, types, claim and
/// targets (kind and id prefix). Credentials and store URLs are never shown here.
pub fn describe(config: &Config) -> String {
    let targets = targets(config);
    let mut out = String::from("\n# Routing table (routes are tried in order; the longest matching prefix first)\n");
    for route in routes(config) {
        let types = if route.types.is_empty() { "every type".to_owned() } else { route.types.join(", ") };
        let claim = match (&route.claim, &route.claim_value) {
            (Some(c), Some(v)) => format!("claim {c} = {v:?}"),
            _ => "any caller".to_owned(),
        };
        out.push_str(&format!(
            "# route {}: /{} ({types}; {claim}; writes to {}; on target error: {})\n",
            route.id,
            route.normalized_prefix(),
            route.write_target().unwrap_or("-"),
            route.on_target_error
        ));
        for target in route.targets.iter().filter_map(|id| targets.iter().find(|t| &t.id == id)) {
            let kind = match target.kind() {
                Kind::Local => "local".to_owned(),
                Kind::Remote => format!("remote {}", target.base_url.as_deref().unwrap_or_default()),
            };
            let prefix = match route.id_prefix(&target.id) {
                "" => "no id prefix".to_owned(),
                p => format!("id prefix {p:?}"),
            };
            out.push_str(&format!("#   target {}: {kind}, {prefix}\n", target.id));
        }
    }
    out
}

#[cfg(test)]
mod tests;

//! A request's labels: its FHIR interaction and resource type, told from its method and path
//! below its route's base the way the engine routes it (`engine/src/interaction/route.rs`),
//! without parsing its body; and status codes as label values. Every value is a `&'static str`
//! from a fixed set: resource types are R4's (anything else is `other`), so a caller cannot
//! grow the label space.

use std::sync::LazyLock;

use fhirgate_engine::definitions::Definitions;

/// The labels of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLabels<'a> {
    /// `read`, `search-type`... as FHIR's CapabilityStatement names them; `batch-transaction`
    /// for a Bundle posted to the base; `operation`; outside FHIR: `health`, `metrics`, `auth`
    /// (the SMART proxy and discovery documents), `other`.
    pub interaction: &'static str,
    /// An R4 resource type, `none` (system level) or `other` (not a resource type).
    pub resource_type: &'static str,
    /// The route's id, or `none` (no route: a path outside FHIR, or none matched).
    pub route: &'a str,
}

impl RequestLabels<'static> {
    /// A request outside FHIR (no route), by its path below the server's base.
    pub fn outside_fhir(path: &str) -> Self {
        let interaction = match path.split('/').next().unwrap_or_default() {
            "health" => "health",
            "metrics" => "metrics",
            "auth" | ".well-known" => "auth",
            _ => "other",
        };
        Self { interaction, resource_type: "none", route: "none" }
    }
}

/// The interaction and resource type of `method` on `path` (below the route's base). No
/// allocation: a FHIR path has at most four segments, a longer one is `other`.
pub fn classify(method: &str, path: &str) -> (&'static str, &'static str) {
    let mut found = [""; 4];
    let mut count = 0;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let Some(slot) = found.get_mut(count) else { return ("other", resource_type(found[0])) };
        *slot = segment;
        count += 1;
    }
    let segments = &found[..count];
    let kind = |i: usize| segments.get(i).map_or("none", |s| resource_type(s));
    if segments.last().is_some_and(|s| s.starts_with('$')) {
        let at = if segments.len() > 1 { kind(0) } else { "none" };
        return ("operation", at);
    }
    let method = if method == "HEAD" { "GET" } else { method };
    let interaction = match (method, segments) {
        ("GET", []) => "search-system",
        ("POST", []) => "batch-transaction",
        ("GET", ["metadata"]) => "capabilities",
        ("GET", ["_history"]) => "history-system",
        ("POST", ["_search"]) => "search-system",
        ("GET", [_]) => "search-type",
        ("POST", [_]) => "create",
        ("PUT", [_]) | ("PUT", [_, _]) => "update",
        ("PATCH", [_]) | ("PATCH", [_, _]) => "patch",
        ("DELETE", [_]) | ("DELETE", [_, _]) => "delete",
        ("POST", [_, "_search"]) => "search-type",
        ("GET", [_, "_history"]) => "history-type",
        ("GET", [_, _]) => "read",
        ("GET", [_, _, "_history"]) => "history-instance",
        ("GET", [_, _, "_history", _]) => "vread",
        ("GET", [_, _, c]) | ("POST", [_, _, c]) if *c == "*" || resource_type(c) != "other" => {
            return ("search-compartment", if *c == "*" { "none" } else { resource_type(c) });
        }
        _ => "other",
    };
    let resource_type = match segments.first() {
        Some(first) if !first.starts_with('_') && *first != "metadata" => resource_type(first),
        _ => "none",
    };
    (interaction, resource_type)
}

/// `name` as a label value: an R4 resource type, else `other`.
fn resource_type(name: &str) -> &'static str {
    static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| Definitions::r4().resource_types().collect());
    TYPES.binary_search(&name).map_or("other", |i| TYPES[i])
}

/// A status code as a label value (`other` outside 100–599).
pub fn status(code: u16) -> &'static str {
    static CODES: LazyLock<Vec<String>> = LazyLock::new(|| (100..600).map(|c: u16| c.to_string()).collect());
    code.checked_sub(100).and_then(|i| CODES.get(usize::from(i))).map_or("other", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_and_types_as_the_engine_routes_them() {
        let cases = [
            ("GET", "Patient/p1", ("read", "Patient")),
            ("HEAD", "Patient/p1", ("read", "Patient")),
            ("GET", "Patient/p1/_history/2", ("vread", "Patient")),
            ("GET", "Observation", ("search-type", "Observation")),
            ("POST", "Observation/_search", ("search-type", "Observation")),
            ("GET", "", ("search-system", "none")),
            ("POST", "/", ("batch-transaction", "none")),
            ("POST", "Patient", ("create", "Patient")),
            ("PUT", "Patient/p1", ("update", "Patient")),
            ("PUT", "Patient", ("update", "Patient")),
            ("PATCH", "Patient/p1", ("patch", "Patient")),
            ("DELETE", "Patient/p1", ("delete", "Patient")),
            ("GET", "Patient/p1/_history", ("history-instance", "Patient")),
            ("GET", "Patient/_history", ("history-type", "Patient")),
            ("GET", "_history", ("history-system", "none")),
            ("GET", "metadata", ("capabilities", "none")),
            ("GET", "Patient/p1/Observation", ("search-compartment", "Observation")),
            ("GET", "Patient/p1/*", ("search-compartment", "none")),
            ("GET", "Patient/p1/$everything", ("operation", "Patient")),
            ("POST", "$export", ("operation", "none")),
        ];
        for (method, path, expected) in cases {
            assert_eq!(classify(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn what_a_caller_makes_up_never_becomes_a_label() {
        assert_eq!(classify("GET", "NoSuchType/x1"), ("read", "other"));
        assert_eq!(classify("GET", "a/b/c/d/e/f"), ("other", "other"));
        assert_eq!(classify("BREW", "Patient"), ("other", "Patient"));
        assert_eq!(classify("GET", "Patient/p1/NoSuch"), ("other", "Patient"));
        assert_eq!(status(200), "200");
        assert_eq!(status(599), "599");
        assert_eq!((status(99), status(600), status(0)), ("other", "other", "other"));
        assert_eq!(RequestLabels::outside_fhir("health/ready").interaction, "health");
        assert_eq!(RequestLabels::outside_fhir("anything-else").route, "none");
    }
}

//! Which route a request takes. A path belongs to the longest route prefix it starts with (so a
//! root route never takes `/cardiology/...` from the `cardiology` routes); among the routes with
//! that prefix, the first whose `types` hold the resource type named and whose `claim` the token
//! carries wins. A request naming no type (metadata, system search, batch, system history)
//! prefers a route without `types`, and takes the first typed one only when there is none.
//! No route: `None` (a 404 for the client).

use crate::config::RouteConfig;

/// The index of the route `path` takes and the path below the route's base.
pub fn find(routes: &[&RouteConfig], path: &str, claim: &dyn Fn(&str, &str) -> bool) -> Option<(usize, String)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let longest =
        routes.iter().map(|r| r.prefix_segments()).filter(|p| segments.starts_with(p)).map(|p| p.len()).max()?;
    let rest = &segments[longest..];
    // What the path names first is its resource type, unless it is the route's own (`metadata`,
    // `_search`, `_history`, `$operation`, the base itself).
    let resource_type = rest.first().filter(|s| **s != "metadata" && !s.starts_with(['_', '$'])).copied();
    let candidates = || {
        routes.iter().enumerate().filter(|(_, r)| {
            let prefix = r.prefix_segments();
            prefix.len() == longest
                && segments.starts_with(&prefix)
                && match (&r.claim, &r.claim_value) {
                    (Some(name), Some(value)) => claim(name, value),
                    _ => true,
                }
        })
    };
    let chosen = match resource_type {
        Some(t) => candidates().find(|(_, r)| r.types.is_empty() || r.types.iter().any(|x| x == t)),
        None => candidates().find(|(_, r)| r.types.is_empty()).or_else(|| candidates().next()),
    };
    chosen.map(|(index, _)| (index, rest.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, prefix: &str, types: &[&str], claim: Option<(&str, &str)>) -> RouteConfig {
        RouteConfig {
            id: id.into(),
            prefix: prefix.into(),
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            claim: claim.map(|c| c.0.to_owned()),
            claim_value: claim.map(|c| c.1.to_owned()),
            targets: vec!["a".into()],
            ..RouteConfig::default()
        }
    }

    fn table() -> Vec<RouteConfig> {
        vec![
            route("card", "cardiology", &[], None),
            route("t1", "", &[], Some(("tid", "t1"))),
            route("mpi", "", &["Patient"], None),
            route("root", "", &[], None),
            route("deep", "lab/eu", &["Observation"], None),
        ]
    }

    fn id_of(path: &str, tid: &str) -> Option<(String, String)> {
        let routes = table();
        let refs: Vec<&RouteConfig> = routes.iter().collect();
        let has = |name: &str, value: &str| name == "tid" && value == tid;
        find(&refs, path, &has).map(|(i, rest)| (routes[i].id.clone(), rest))
    }

    fn pair(id: &str, rest: &str) -> Option<(String, String)> {
        Some((id.to_owned(), rest.to_owned()))
    }

    #[test]
    fn the_longest_prefix_owns_its_paths() {
        assert_eq!(id_of("cardiology/Patient/1", ""), pair("card", "Patient/1"));
        assert_eq!(id_of("/cardiology/", ""), pair("card", ""), "the route's base itself");
        assert_eq!(id_of("cardiologyx/Patient", ""), pair("root", "cardiologyx/Patient"), "whole segments only");
        assert_eq!(id_of("lab/eu/Observation", ""), pair("deep", "Observation"));
        assert_eq!(id_of("lab/eu/Patient", ""), None, "the prefix's routes take no other type: 404");
        assert_eq!(id_of("lab/eu/metadata", ""), pair("deep", "metadata"), "a typed route as last resort");
    }

    #[test]
    fn claims_and_types_choose_among_the_same_prefix() {
        assert_eq!(id_of("Patient/1", "t1"), pair("t1", "Patient/1"), "first match wins");
        assert_eq!(id_of("Patient/1", "t2"), pair("mpi", "Patient/1"));
        assert_eq!(id_of("Observation", "t2"), pair("root", "Observation"));
        assert_eq!(id_of("metadata", "t2"), pair("root", "metadata"), "typeless requests prefer untyped routes");
        assert_eq!(id_of("", "t2"), pair("root", ""));
    }

    #[test]
    fn no_route_is_none() {
        let routes = [route("card", "cardiology", &[], None)];
        let refs: Vec<&RouteConfig> = routes.iter().collect();
        assert_eq!(find(&refs, "Patient/1", &|_, _| true), None);
        let typed = [route("mpi", "", &["Patient"], None)];
        let refs: Vec<&RouteConfig> = typed.iter().collect();
        assert_eq!(find(&refs, "Observation/1", &|_, _| true), None);
        assert_eq!(find(&refs, "metadata", &|_, _| true).map(|(i, _)| i), Some(0), "a typed route as last resort");
        assert_eq!(find(&refs, "nowhere/Patient", &|_, _| true), None, "`nowhere` is no type of the route");
    }
}

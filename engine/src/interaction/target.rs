//! Which interaction a request performs ([`Target`]): the one parse both the dispatch and the
//! policies use, so that a request is decided as the interaction it runs as.

use serde_json::Value;

use super::{Method, Request, Route};
use crate::access::{Interaction, Target};
use crate::error::Result;

impl Target {
    /// The interaction `request` performs and what it names; an error (404, 405, 400 for an operation not offered) for a
    /// request that is no interaction of this server.
    pub fn of(request: &Request) -> Result<Self> {
        Self::of_route(request, &Route::parse(&request.path)?)
    }

    pub(crate) fn of_route(request: &Request, route: &Route) -> Result<Self> {
        use Interaction as I;
        let read = matches!(request.method, Method::Get | Method::Head);
        let conditional = !request.query.is_empty();
        let at = |interaction, resource_type: &str, id: &str| Ok(Self::new(interaction, resource_type, id));
        match (&request.method, route) {
            (_, Route::Metadata) if read => at(I::Capabilities, "", ""),
            (_, Route::Instance { resource_type, id }) if read => at(I::Read, resource_type, id),
            (Method::Put, Route::Instance { resource_type, id }) => at(I::Update, resource_type, id),
            (Method::Patch, Route::Instance { resource_type, id }) => at(I::Patch, resource_type, id),
            (Method::Delete, Route::Instance { resource_type, id }) => at(I::Delete, resource_type, id),
            (Method::Post, Route::Type { resource_type }) => at(I::Create, resource_type, ""),
            (_, Route::Type { resource_type }) if read => at(I::SearchType, resource_type, ""),
            (Method::Put, Route::Type { resource_type }) if conditional => at(I::Update, resource_type, ""),
            (Method::Patch, Route::Type { resource_type }) if conditional => at(I::Patch, resource_type, ""),
            (Method::Delete, Route::Type { resource_type }) if conditional => at(I::Delete, resource_type, ""),
            (Method::Post, Route::Search { resource_type: Some(t) }) => at(I::SearchType, t, ""),
            (Method::Post, Route::Search { resource_type: None }) => at(I::SearchSystem, "", ""),
            (_, Route::System) if read => at(I::SearchSystem, "", ""),
            (Method::Post, Route::System) => {
                let batch = bundle_type(&request.body).as_deref() == Some("batch");
                at(if batch { I::Batch } else { I::Transaction }, "", "")
            }
            // The target of a compartment search is the compartment's owner.
            (_, Route::Compartment { owner_type, owner_id, .. }) if read => {
                at(I::SearchCompartment, owner_type, owner_id)
            }
            (_, Route::History { resource_type, id }) if read => match (resource_type, id) {
                (Some(t), Some(id)) => at(I::HistoryInstance, t, id),
                (Some(t), None) => at(I::HistoryType, t, ""),
                _ => at(I::HistorySystem, "", ""),
            },
            (_, Route::Version { resource_type, id, .. }) if read => at(I::Vread, resource_type, id),
            (_, Route::Operation { name, resource_type, id }) => Ok(Self {
                interaction: I::Operation,
                resource_type: resource_type.clone().unwrap_or_default(),
                id: id.clone().unwrap_or_default(),
                operation: name.clone(),
            }),
            (method, route) => Err(route.unsupported(method, &request.path)),
        }
    }
}

/// `Bundle.type` of a body, without building the whole document.
fn bundle_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(rename = "type")]
        kind: Option<Value>,
    }
    let shape: Shape = serde_json::from_slice(body).ok()?;
    shape.kind.and_then(|k| k.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, path: &str, query: &str) -> Option<(Interaction, String, String)> {
        let mut request = Request::new(method, path, "http://x");
        request.query = super::super::parse_query(query);
        Target::of(&request).ok().map(|t| (t.interaction, t.resource_type, t.id))
    }

    #[test]
    fn requests_name_their_interaction() {
        let t = |i, ty: &str, id: &str| Some((i, ty.to_owned(), id.to_owned()));
        assert_eq!(of(Method::Get, "Patient/1", ""), t(Interaction::Read, "Patient", "1"));
        assert_eq!(of(Method::Head, "Patient/1/_history/2", ""), t(Interaction::Vread, "Patient", "1"));
        assert_eq!(of(Method::Get, "Patient", ""), t(Interaction::SearchType, "Patient", ""));
        assert_eq!(of(Method::Post, "Patient/_search", ""), t(Interaction::SearchType, "Patient", ""));
        assert_eq!(of(Method::Post, "Patient", ""), t(Interaction::Create, "Patient", ""));
        assert_eq!(of(Method::Put, "Patient", "name=x"), t(Interaction::Update, "Patient", ""));
        assert_eq!(of(Method::Put, "Patient", ""), None);
        assert_eq!(of(Method::Delete, "Patient", "_id=1"), t(Interaction::Delete, "Patient", ""));
        assert_eq!(of(Method::Patch, "Patient", "_id=1"), t(Interaction::Patch, "Patient", ""));
        assert_eq!(of(Method::Get, "metadata", ""), t(Interaction::Capabilities, "", ""));
        assert_eq!(of(Method::Get, "_history", ""), t(Interaction::HistorySystem, "", ""));
        assert_eq!(of(Method::Get, "Patient/1/_history", ""), t(Interaction::HistoryInstance, "Patient", "1"));
        assert_eq!(of(Method::Get, "Patient/1/Observation", ""), t(Interaction::SearchCompartment, "Patient", "1"));
        assert_eq!(of(Method::Get, "Patient/1/$everything", ""), t(Interaction::Operation, "Patient", "1"));
        assert_eq!(of(Method::Get, "Nope/1", ""), None);
        let mut post = Request::new(Method::Post, "", "http://x");
        post.body = br#"{"resourceType":"Bundle","type":"batch","entry":[]}"#.to_vec();
        assert_eq!(Target::of(&post).map(|t| t.interaction).ok(), Some(Interaction::Batch));
        post.body = br#"{"resourceType":"Bundle","type":"transaction"}"#.to_vec();
        assert_eq!(Target::of(&post).map(|t| t.interaction).ok(), Some(Interaction::Transaction));
        post.body = b"not json".to_vec();
        assert_eq!(Target::of(&post).map(|t| t.interaction).ok(), Some(Interaction::Transaction));
    }
}

//! The criteria of conditional interactions (http.html "Conditional create / update / delete /
//! patch"): a search on the resource type, parsed strictly (criteria the server does not
//! understand must not silently match everything), and the guard that makes "create unless it
//! exists" exact under concurrency.

use super::Engine;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::parse_query;
use crate::outcome::{Issue, IssueType};
use crate::search::query::{self, SearchQuery};
use crate::storage::{Guard, SearchMatch};

/// Conditional criteria on one resource type.
#[derive(Debug, Clone)]
pub(super) struct Criteria {
    pub(super) query: SearchQuery,
    /// `Type?params` as written, for messages.
    pub(super) text: String,
}

impl Criteria {
    /// Criteria from a query string (`identifier=x|y`, a leading `?` or `Type?` allowed).
    pub(super) fn parse(engine: &Engine, resource_type: &str, text: &str) -> Result<Self> {
        let text = text.strip_prefix(resource_type).unwrap_or(text);
        let params = parse_query(text.trim_start_matches('?'));
        Self::from_params(engine, resource_type, &params)
    }

    /// Criteria from decoded query parameters; result parameters (`_count`, `_format`...) are left out.
    pub(super) fn from_params(engine: &Engine, resource_type: &str, params: &[(String, String)]) -> Result<Self> {
        let params: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty" | "_count" | "_summary" | "_elements"))
            .cloned()
            .collect();
        let limits = query::Limits::from(&engine.config);
        let parsed = query::parse_within(Definitions::r4(), Some(resource_type), &params, true, &limits)?;
        if parsed.query.clauses.is_empty() {
            return Err(Error::BadRequest(vec![Issue::error(
                IssueType::Invalid,
                format!("conditional criteria on `{resource_type}` must have at least one search parameter"),
            )]));
        }
        let text = format!("{resource_type}?{}", query::to_query_string(&parsed.query));
        Ok(Self { query: parsed.query, text })
    }

    /// The current resources matching, at most `limit`.
    pub(super) async fn matches(&self, engine: &Engine, limit: u32) -> Result<Vec<SearchMatch>> {
        Ok(engine.store.search(&self.query, limit).await?)
    }

    /// The guard that no resource matches when a write commits.
    pub(super) fn guard(&self) -> Guard {
        Guard { key: self.text.clone(), query: self.query.clone() }
    }

    /// The 412 for criteria matching more than one resource.
    pub(super) fn ambiguous(&self, what: &str) -> Error {
        Error::PreconditionFailed(format!("`{}` matches more than one resource: {what}", self.text))
    }
}

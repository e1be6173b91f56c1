//! The criteria of conditional interactions (http.html "Conditional create / update / delete /
//! patch"): a search on the resource type, parsed strictly (criteria the server does not
//! understand must not silently match everything), and the guard that makes "create unless it
//! exists" exact under concurrency.
//!
//! Criteria match only what the client may read: a resource it may not see does not exist for
//! it, so it is neither returned, changed, deleted nor counted (a hidden match makes no criteria
//! ambiguous). Chains and `_has` are refused unless the client may search every resource of the
//! types they traverse ([`Gate::check_traversals`]). When hidden resources match, a create made
//! because nothing visible matched carries no guard (the guard would see the hidden ones): its
//! exactness under concurrency then holds only among clients that see the same resources.

use super::Engine;
use super::gate::Gate;
use crate::access::Phase;
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::parse_query;
use crate::outcome::{Issue, IssueType};
use crate::search::query::{self, SearchQuery};
use crate::storage::{Guard, SearchMatch};

/// Matches read per store query while looking for visible ones.
const CHUNK: u32 = 100;

/// The visible matches of criteria, and whether hidden ones matched too.
pub(super) struct Matches {
    pub(super) visible: Vec<SearchMatch>,
    pub(super) hidden: bool,
}

impl Matches {
    /// The guards a create made because nothing visible matched carries.
    pub(super) fn guards(&self, criteria: &Criteria) -> Vec<Guard> {
        if self.hidden { Vec::new() } else { vec![criteria.guard()] }
    }
}

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
        let mut parsed = query::parse_within(Definitions::r4(), Some(resource_type), &params, true, &limits)?;
        // Matches are read in the default order, a chunk at a time.
        parsed.query.result.sort.clear();
        if parsed.query.clauses.is_empty() {
            return Err(Error::BadRequest(vec![Issue::error(
                IssueType::Invalid,
                format!("conditional criteria on `{resource_type}` must have at least one search parameter"),
            )]));
        }
        let text = format!("{resource_type}?{}", query::to_query_string(&parsed.query));
        Ok(Self { query: parsed.query, text })
    }

    /// The current resources matching that the client of `gate` may read, at most `limit`.
    pub(super) async fn matches(&self, engine: &Engine, gate: &Gate<'_>, limit: u32) -> Result<Matches> {
        gate.check_traversals(&self.query)?;
        let resource_type = self.query.resource_type.as_deref().unwrap_or_default();
        let Some(reader) = gate.reader(resource_type) else {
            // It may read none of them: whatever matches is hidden.
            let hidden = !engine.store.search(&self.query, 1).await?.is_empty();
            return Ok(Matches { visible: Vec::new(), hidden });
        };
        if reader.covers_data() {
            return Ok(Matches { visible: engine.store.search(&self.query, limit).await?, hidden: false });
        }
        let mut query = self.query.clone();
        let mut found = Matches { visible: Vec::new(), hidden: false };
        let mut scanned = 0;
        loop {
            let mut chunk = engine.store.search(&query, CHUNK + 1).await?;
            let more = chunk.len() > CHUNK as usize;
            chunk.truncate(CHUNK as usize);
            scanned += chunk.len();
            query.after = chunk.last().map(|m| (m.resource_type.clone(), m.id.clone()));
            for version in engine.store.vread_many(&chunk).await? {
                if reader.allows_version(engine, &version, Phase::Outgoing).await? {
                    found.visible.push(SearchMatch {
                        resource_type: version.resource_type,
                        id: version.id,
                        version: version.version,
                    });
                } else {
                    found.hidden = true;
                }
            }
            // Past the search cap, what was not read counts as hidden.
            if found.visible.len() >= limit as usize || !more || scanned >= engine.config.search_max_results as usize {
                found.hidden |= more;
                found.visible.truncate(limit as usize);
                return Ok(found);
            }
        }
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

//! Finding the code systems and value sets a request names: the loaded ones first (the R4
//! package's, then the configured packages'), then those stored through the API, found by
//! canonical `url` (and `version`) with a search of the client's own (every match decided as a
//! search's matches are), or by id with a read of the client's own. What the client may not
//! see is not found; what a request finds in the store is kept for that request only.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::super::Engine;
use super::super::gate::Gate;
use super::super::read::{live_version, not_found};
use super::params::Params;
use crate::access::{Interaction, Phase, Target};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::outcome::{Issue, IssueType};
use crate::search::query;
use crate::terminology::expand::split_canonical;
use crate::terminology::{CodeSystem, Expansion, Failure, Limits, Registry, Sources, ValueSet};

/// Stored resources one request may fetch while expanding (imports of imports...).
const MAX_FETCHES: usize = 32;

/// Stored versions of one canonical url read at most.
const MAX_MATCHES: u32 = 20;

/// One request's view of the terminology.
pub(crate) struct Resolver<'e, 'g> {
    engine: &'e Engine,
    gate: &'e Gate<'g>,
    /// What this request found in the store.
    stored: Registry,
    /// `(type, url)` already looked for in the store.
    tried: HashSet<(&'static str, String)>,
}

impl<'e, 'g> Resolver<'e, 'g> {
    pub(crate) fn new(engine: &'e Engine, gate: &'e Gate<'g>) -> Self {
        Self { engine, gate, stored: Registry::default(), tried: HashSet::new() }
    }

    fn sources(&self) -> Sources<'_> {
        Sources::new(vec![Registry::r4().as_ref(), self.engine.config.terminology.as_ref(), &self.stored])
    }

    /// The value set an operation asks about: the instance `id`, or the `valueSet` parameter, or
    /// the one named by `url` (and `valueSetVersion`).
    pub(super) async fn value_set_asked(
        &mut self,
        params: &Params,
        id: Option<&str>,
        operation: &str,
    ) -> Result<Arc<ValueSet>> {
        match (id, params.value("valueSet"), params.text("url")?) {
            (Some(id), _, _) => {
                let resource = self.instance("ValueSet", id).await?;
                Ok(Arc::new(ValueSet::parse(&resource).map_err(Error::unprocessable)?))
            }
            (None, Some(given), _) => {
                self.given(given)?;
                Ok(Arc::new(ValueSet::parse(given).map_err(Error::bad_request)?))
            }
            (None, None, Some(url)) => self.value_set(url, params.text("valueSetVersion")?).await,
            (None, None, None) => {
                Err(Error::bad_request(format!("`${operation}` needs `url`, `valueSet` or a value set id")))
            }
        }
    }

    /// The value set `canonical` (`url` or `url|version`); 404 when neither loaded nor stored
    /// (and visible to the client).
    pub(crate) async fn value_set(&mut self, canonical: &str, version: Option<&str>) -> Result<Arc<ValueSet>> {
        let (url, written) = split_canonical(canonical);
        let version = version.or(written);
        if let Some(found) = self.sources().value_set(url, version) {
            return Ok(found);
        }
        self.fetch("ValueSet", url).await?;
        self.sources().value_set(url, version).ok_or_else(|| {
            Error::NotFound(format!("the value set `{url}` is not loaded on this server nor stored here"))
        })
    }

    /// The code system `url`; 404 when neither loaded nor stored.
    pub(crate) async fn code_system(&mut self, url: &str, version: Option<&str>) -> Result<Arc<CodeSystem>> {
        if let Some(found) = self.sources().code_system(url, version) {
            return Ok(found);
        }
        self.fetch("CodeSystem", url).await?;
        self.sources().code_system(url, version).ok_or_else(|| {
            Error::NotFound(format!(
                "the code system `{url}` is not loaded on this server nor stored here (this server has the R4 \
                 package's code systems and those written to it; not LOINC or SNOMED CT)"
            ))
        })
    }

    /// The stored `resource_type/id`, read as a read by this client would be (404 when hidden),
    /// kept for this request.
    pub(crate) async fn instance(&mut self, resource_type: &str, id: &str) -> Result<Value> {
        let reader = self
            .gate
            .other(Target::new(Interaction::Read, resource_type, id))
            .map_err(|_| not_found(resource_type, id))?;
        let current = self.engine.store.read(resource_type, id).await?;
        if let Some(current) = &current {
            reader.check_outgoing(self.engine, current, || not_found(resource_type, id)).await?;
        }
        let version = live_version(current, resource_type, id)?;
        let resource: Value = serde_json::from_str(version.json.as_deref().unwrap_or("null"))
            .map_err(|e| Error::Internal(format!("stored `{resource_type}/{id}` is not JSON: {e}")))?;
        self.stored.add(&resource).map_err(|why| Error::unprocessable(format!("`{resource_type}/{id}`: {why}")))?;
        Ok(resource)
    }

    /// Adds a resource given with the request (`$expand` with `valueSet`).
    pub(crate) fn given(&mut self, resource: &Value) -> Result<()> {
        self.stored.add(resource).map_err(Error::bad_request)
    }

    /// The expansion of `value_set`, fetching from the store what it needs and the client may
    /// see; 4xx for what cannot be expanded.
    pub(crate) async fn expand(&mut self, value_set: &Arc<ValueSet>, limits: &Limits) -> Result<Arc<Expansion>> {
        // The R4 package's value sets expand the same for every request: kept in its registry.
        let loaded_alone = Registry::r4().value_set(&value_set.url, value_set.version.as_deref());
        if loaded_alone.is_some_and(|vs| Arc::ptr_eq(&vs, value_set)) {
            if let Some(cached) = Registry::r4().cached_expansion(&value_set.url) {
                if cached.entries.len() > limits.max_size {
                    return Err(failure_error(&Failure::TooCostly(format!(
                        "`{}` has {} codes, more than the {} allowed here",
                        value_set.url,
                        cached.entries.len(),
                        limits.max_size
                    ))));
                }
                return Ok(cached);
            }
        }
        for _ in 0..MAX_FETCHES {
            let failure = match self.sources().expand(value_set, limits) {
                Ok(expansion) => return Ok(Arc::new(expansion)),
                Err(failure) => failure,
            };
            match &failure {
                Failure::Needs(kind, url) if !self.tried.contains(&(*kind, url.clone())) => {
                    self.fetch(kind, url).await?;
                }
                _ => return Err(failure_error(&failure)),
            }
        }
        Err(Error::Unprocessable(vec![Issue::error(
            IssueType::TooCostly,
            format!("expanding `{}` needs more than {MAX_FETCHES} stored resources", value_set.url),
        )]))
    }

    /// Reads the stored `kind` resources whose `url` is `url` that the client may see.
    async fn fetch(&mut self, kind: &'static str, url: &str) -> Result<()> {
        if !self.tried.insert((kind, url.to_owned())) {
            return Ok(());
        }
        // A client that may not search the type finds none of its resources.
        let Ok(search) = self.gate.other(Target::new(Interaction::SearchType, kind, "")) else { return Ok(()) };
        let params = [("url".to_owned(), url.to_owned())];
        let limits = query::Limits::from(&self.engine.config);
        let query = query::parse_within(Definitions::r4(), Some(kind), &params, true, &limits)?.query;
        let matches = self.engine.store.search(&query, MAX_MATCHES).await?;
        let versions = self.engine.store.vread_many(&matches).await?;
        let resources: Vec<Value> =
            versions.iter().filter_map(|v| serde_json::from_str(v.json.as_deref()?).ok()).collect();
        search.load_consents(self.engine, &resources.iter().collect::<Vec<_>>()).await?;
        for resource in resources.iter().filter(|r| search.allows(r, Phase::Outgoing)) {
            // A stored resource that cannot be used is as if it were not there.
            if let Err(why) = self.stored.add(resource) {
                tracing::debug!(%why, "stored terminology resource skipped");
            }
        }
        Ok(())
    }
}

/// The 4xx answer for an expansion that failed.
pub(crate) fn failure_error(failure: &Failure) -> Error {
    let code = match failure {
        Failure::TooCostly(_) => IssueType::TooCostly,
        Failure::Cycle(_) => IssueType::Invalid,
        Failure::Needs(..) | Failure::NotSupported(_) => IssueType::NotSupported,
    };
    let mut message = failure.message();
    if matches!(failure, Failure::Needs(..)) {
        message.push_str(
            " (this server has the R4 package's code systems and value sets, those of configured packages and those \
             written to it; not LOINC or SNOMED CT)",
        );
    }
    Error::Unprocessable(vec![Issue::error(code, message)])
}

//! The policy engine: a validated Cedar policy set with the FHIR schema, answering
//! [`AuthzRequest`]s. Load once, share behind an `Arc`, swap whole on reload (which also drops
//! the decisions it remembered, [`crate::cache`]).

use std::collections::HashSet;

use cedar_policy::{Authorizer, Entities, PolicyId, PolicySet, Request, ValidationMode, Validator};

use crate::attributes::wanted::Wanted;
use crate::cache::DecisionCache;
use crate::data_blind::{is_data_blind, is_forbid};
use crate::decision::Decision;
use crate::error::{Error, Problem};
use crate::principal::Principal;
use crate::reads::Reads;
use crate::request::{AuthzRequest, to_cedar};
use crate::sources::{PolicySource, problems};

/// A loaded, validated policy set.
pub struct PolicyEngine {
    set: PolicySet,
    /// The schema's action entities (with their groups), made once: every request needs them.
    actions: Entities,
    authorizer: Authorizer,
    /// Ids of the permits that cannot see a resource's data ([`crate::data_blind`]), when every
    /// forbid of the set is data-blind too; empty otherwise.
    data_blind_permits: HashSet<String>,
    /// Type-level decisions already made.
    cache: DecisionCache,
    /// Whether some policy reads `resource.consent` ([`crate::consent`]).
    reads_consents: bool,
    /// The search-parameter attributes the policies read.
    wanted: Wanted,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine").field("policies", &self.policy_ids()).finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Parses every source and validates the whole set against the schema (strict mode). Policy
    /// ids are `<set>:<@id annotation>`, or `<set>:<file stem>#<n>` without one.
    pub fn load(sources: &[PolicySource]) -> Result<Self, Error> {
        let schema = crate::schema::schema()?;
        let mut set = PolicySet::new();
        let mut problems_found = Vec::new();
        for source in sources {
            let parsed = match source.text.parse::<PolicySet>() {
                Ok(p) => p,
                Err(e) => {
                    problems_found.extend(problems(&e, source));
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems_found.push(Problem {
                    location: Some(crate::sources::locate(source, 0)),
                    message: "templates are not supported".into(),
                });
            }
            let stem = std::path::Path::new(&source.file)
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            // Keep file order: Cedar numbers policies as they appear.
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0));
            for (n, policy) in policies.into_iter().enumerate() {
                let name = policy.annotation("id").map_or_else(|| format!("{stem}#{n}"), str::to_string);
                let id = PolicyId::new(format!("{}:{name}", source.set));
                if let Err(e) = set.add(policy.new_id(id.clone())) {
                    problems_found.push(Problem {
                        location: Some(crate::sources::locate(source, 0)),
                        message: format!("policy `{id}`: {e}"),
                    });
                }
            }
            let validated = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
            let found: Vec<Problem> = validated.validation_errors().flat_map(|e| problems(e, source)).collect();
            problems_found.extend(one_per_place(found));
        }
        if !problems_found.is_empty() {
            return Err(Error::Invalid(problems_found));
        }
        let actions = schema.action_entities().map_err(|e| Error::Request(e.to_string()))?;
        let forbids_blind = set.policies().filter(|p| is_forbid(p)).all(is_data_blind);
        let data_blind_permits = if forbids_blind {
            set.policies().filter(|p| !is_forbid(p) && is_data_blind(p)).map(|p| p.id().to_string()).collect()
        } else {
            HashSet::new()
        };
        let cache = DecisionCache::new(Reads::of(set.policies()));
        let reads_consents = crate::consent::read_by(set.policies());
        let wanted = Wanted::of(set.policies());
        Ok(Self { set, actions, authorizer: Authorizer::new(), data_blind_permits, cache, reads_consents, wanted })
    }

    /// Whether some policy reads `resource.consent`: then data-level decisions need the
    /// Consents of the resource's patients ([`crate::consent`]); otherwise none are loaded.
    pub fn reads_consents(&self) -> bool {
        self.reads_consents
    }

    /// The data-level request of `request` on `resource`: its facts, and the search-parameter
    /// attributes this set reads (only those are extracted). Data-level decisions of a set that
    /// reads parameters fail without them: build them here, not with [`AuthzRequest::with_data`].
    pub fn with_data(&self, request: &AuthzRequest, resource: &serde_json::Value) -> AuthzRequest {
        request.with_data_reading(resource, &self.wanted)
    }

    /// Whether some policy may decide on a resource's data (not [`crate::data_blind`]): then
    /// answers cannot be streamed unread, as a type-level-only route would.
    pub fn reads_resource_data(&self) -> bool {
        !self.set.policies().all(crate::data_blind::is_data_blind)
    }

    /// The ids of the loaded policies, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// The Cedar policy set (ids `<set>:<id>`).
    pub(crate) fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The schema's action entities (with their groups).
    pub(crate) fn action_entities(&self) -> &Entities {
        &self.actions
    }

    /// The search-parameter attributes the policies read.
    pub(crate) fn wanted(&self) -> &Wanted {
        &self.wanted
    }

    /// The decision for one request: default deny, a matching `forbid` overrides any `permit`.
    /// A type-level allow says whether it covers every data-level decision of the request.
    /// Type-level decisions are remembered (see [`crate::cache`]); data-level ones are made each
    /// time ([`Self::decide_on`] remembers them).
    pub fn decide(&self, principal: &Principal, request: &AuthzRequest) -> Result<Decision, Error> {
        let Some(key) = self.cache.key(principal, request) else { return self.evaluate(principal, request) };
        if let Some(decision) = self.cache.get(&key) {
            return Ok(decision);
        }
        let decision = self.evaluate(principal, request)?;
        self.cache.insert(key, decision.clone());
        Ok(decision)
    }

    /// The data-level decision of `request` (type level) on `resource` (named by
    /// [`AuthzRequest::on_resource`]), remembered per resource content ([`crate::cache`]). For a
    /// set that reads no Consent: one that does is decided on [`Self::with_data`] with the
    /// Consents' verdict (uncached), and this refuses to decide for it.
    pub fn decide_on(
        &self,
        principal: &Principal,
        request: &AuthzRequest,
        resource: &serde_json::Value,
    ) -> Result<Decision, Error> {
        if self.reads_consents {
            return Err(Error::Request("these policies read Consents: decide with their verdict".into()));
        }
        let key = self.cache.data_key(principal, request, resource);
        if let Some(decision) = key.as_ref().and_then(|key| self.cache.get(key)) {
            return Ok(decision);
        }
        let decision = self.evaluate(principal, &self.with_data(request, resource))?;
        if let Some(key) = key {
            self.cache.insert(key, decision.clone());
        }
        Ok(decision)
    }

    /// The decision, evaluated.
    fn evaluate(&self, principal: &Principal, request: &AuthzRequest) -> Result<Decision, Error> {
        let parts = to_cedar(principal, request, &self.actions, &self.wanted)?;
        let cedar = Request::new(parts.principal, parts.action, parts.resource, parts.context, None)
            .map_err(|e| Error::Request(e.to_string()))?;
        let mut decision = Decision::of(&self.authorizer.is_authorized(&cedar, &self.set, &parts.entities));
        decision.covers_data = decision.allowed
            && request.data.is_none()
            && decision.policies.iter().any(|id| self.data_blind_permits.contains(id));
        Ok(decision)
    }
}

/// One problem per place: the validator checks a policy once per resource entity type it may
/// apply to, so an attribute read without narrowing the type would be reported for ~145 types.
fn one_per_place(found: Vec<Problem>) -> Vec<Problem> {
    let mut kept: Vec<(Problem, usize)> = Vec::new();
    for problem in found {
        match kept.iter_mut().find(|(p, _)| p.location == problem.location && problem.location.is_some()) {
            Some((_, more)) => *more += 1,
            None => kept.push((problem, 0)),
        }
    }
    kept.into_iter()
        .map(|(mut problem, more)| {
            if more > 0 {
                problem.message.push_str(&format!(" (and {more} more at this place, e.g. on other entity types)"));
            }
            problem
        })
        .collect()
}

//! The decisions of one request inside the engine ([`Gate`]): its type-level grant, asked once
//! when the request is dispatched, and the data-level decisions every interaction asks for on
//! the resources it touches (see [`crate::access`]).

use serde_json::{Map, Value};

use super::Engine;
use crate::access::{Access, Grant, Interaction, Phase, Target};
use crate::error::{Error, Result};
use crate::search::query::{Clause, Predicate, SearchQuery};
use crate::storage::ResourceVersion;

/// One request's (or bundle entry's) decisions.
pub(crate) struct Gate<'a> {
    access: &'a dyn Access,
    target: Target,
    /// The type-level grant covers every resource: no data-level decision is asked.
    covers_data: bool,
}

impl<'a> Gate<'a> {
    /// The type-level decision on `target`: the gate of the request, or the error it answers.
    pub(crate) fn open(access: &'a dyn Access, target: Target) -> Result<Self> {
        match access.decide(&target) {
            Grant::AnyData => Ok(Self { access, target, covers_data: true }),
            Grant::PerResource => Ok(Self { access, target, covers_data: false }),
            Grant::Denied(reason) => {
                if target.interaction.is_read() && access.hides_denied_reads() {
                    Err(Error::NotFound(format!("resource `{}` not found", target.path())))
                } else {
                    Err(Error::Forbidden(format!(
                        "`{}` on `{}` is not allowed: {reason}",
                        target.interaction,
                        target.path()
                    )))
                }
            }
        }
    }

    /// The same client's gate for another target (a chained type, the reads of criteria).
    pub(crate) fn other(&self, target: Target) -> Result<Gate<'a>> {
        Gate::open(self.access, target)
    }

    /// What the gate decides on.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Whether every resource is allowed (no data-level decision is asked).
    pub(crate) fn covers_data(&self) -> bool {
        self.covers_data
    }

    /// The client this gate decides for.
    pub(crate) fn owner(&self) -> &str {
        self.access.owner()
    }

    /// What rebuilds this client's decisions for work done later on its behalf.
    pub(crate) fn persona(&self) -> Option<String> {
        self.access.persona()
    }

    /// Whether the client may have `resource` in this request.
    pub(crate) fn allows(&self, resource: &Value, phase: Phase) -> bool {
        self.covers_data || self.access.allows(&self.target, resource, phase)
    }

    /// Loads what the data-level decisions on `resources` read besides the resources: the
    /// Consents of their patients, when the access wants them ([`super::consents`]). Call it
    /// before [`Gate::allows`] on a page of resources, so that their patients' Consents are read
    /// in one search; an access not given a patient's Consents decides as if they denied.
    pub(crate) async fn load_consents(&self, engine: &Engine, resources: &[&Value]) -> Result<()> {
        if self.covers_data {
            return Ok(());
        }
        super::consents::load(engine, self.access, resources).await
    }

    /// [`Gate::check_incoming`], after loading the Consents the decision reads.
    pub(crate) async fn check_incoming_loaded(&self, engine: &Engine, resource: &Map<String, Value>) -> Result<()> {
        if !self.covers_data {
            self.load_consents(engine, &[&Value::Object(resource.clone())]).await?;
        }
        self.check_incoming(resource)
    }

    /// [`Gate::allows`] on a stored version; a deletion is decided on the version it deleted.
    pub(crate) async fn allows_version(
        &self,
        engine: &Engine,
        version: &ResourceVersion,
        phase: Phase,
    ) -> Result<bool> {
        if self.covers_data {
            return Ok(true);
        }
        let with_data = match &version.json {
            Some(_) => None,
            None if version.version > 1 => {
                engine.store.vread(&version.resource_type, &version.id, version.version - 1).await?
            }
            None => return Ok(false),
        };
        let Some(json) = with_data.as_ref().unwrap_or(version).json.as_deref() else { return Ok(false) };
        let Ok(resource) = serde_json::from_str::<Value>(json) else { return Ok(false) };
        self.load_consents(engine, &[&resource]).await?;
        Ok(self.allows(&resource, phase))
    }

    /// 403 unless the client may write `resource` (a body sent, a patched result).
    pub(crate) fn check_incoming(&self, resource: &Map<String, Value>) -> Result<()> {
        if self.covers_data || self.allows(&Value::Object(resource.clone()), Phase::Incoming) {
            return Ok(());
        }
        let path = match resource.get("id").and_then(Value::as_str) {
            Some(id) => format!("{}/{id}", self.target.resource_type),
            None => self.target.path(),
        };
        Err(self.forbidden_at(&path, "is not allowed for this content"))
    }

    /// 403 unless the client may replace or delete the stored `version`.
    pub(crate) async fn check_stored(&self, engine: &Engine, version: &ResourceVersion) -> Result<()> {
        if self.allows_version(engine, version, Phase::Stored).await? {
            return Ok(());
        }
        Err(self.forbidden_at(
            &format!("{}/{}", version.resource_type, version.id),
            "is not allowed on the stored resource",
        ))
    }

    /// Unless the client may see `version`: `hidden` (the answer for a resource that does not
    /// exist) when denied reads are hidden, 403 otherwise.
    pub(crate) async fn check_outgoing(
        &self,
        engine: &Engine,
        version: &ResourceVersion,
        hidden: impl FnOnce() -> Error,
    ) -> Result<()> {
        if self.allows_version(engine, version, Phase::Outgoing).await? {
            Ok(())
        } else if self.access.hides_denied_reads() {
            Err(hidden())
        } else {
            Err(self
                .forbidden_at(&format!("{}/{}", version.resource_type, version.id), "is not allowed for this resource"))
        }
    }

    /// The gate deciding which resources of `resource_type` conditional criteria may match: the
    /// ones the client may read. `None` when it may read none of them.
    pub(crate) fn reader(&self, resource_type: &str) -> Option<Gate<'a>> {
        self.other(Target::new(Interaction::Read, resource_type, "")).ok()
    }

    /// Criteria that look at other resources (chains, `_has`) are refused unless the client may
    /// search every resource of each type they traverse: the store evaluates them on all the
    /// data, and a match through a resource the client may not see would reveal it one guess at
    /// a time. The answer depends only on the query, never on the data.
    pub(crate) fn check_traversals(&self, query: &SearchQuery) -> Result<()> {
        let mut types = Vec::new();
        for clause in &query.clauses {
            traversed(clause, &mut types);
        }
        for resource_type in types {
            let covered =
                self.other(Target::new(Interaction::SearchType, &resource_type, "")).is_ok_and(|g| g.covers_data);
            if !covered {
                return Err(Error::Forbidden(format!(
                    "chained and `_has` criteria through `{resource_type}` are only allowed to clients that may \
                     search every `{resource_type}`"
                )));
            }
        }
        Ok(())
    }

    /// Tells the access a write committed.
    pub(crate) fn written(&self, version: &ResourceVersion) {
        self.access.written(&self.target, &version.resource_type, &version.id, version.version);
    }

    fn forbidden_at(&self, path: &str, what: &str) -> Error {
        Error::Forbidden(format!("`{}` on `{path}` {what}", self.target.interaction))
    }
}

/// The resource types a clause's chains and `_has` look at, added to `types` once each.
fn traversed(clause: &Clause, types: &mut Vec<String>) {
    for predicate in &clause.alternatives {
        let (next, through): (&Clause, &[String]) = match predicate {
            Predicate::Chain(chain) => (&chain.next, &chain.target_types),
            Predicate::Has(has) => (&has.next, std::slice::from_ref(&has.resource_type)),
            _ => continue,
        };
        for t in through {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
        traversed(next, types);
    }
}

//! Who may do what: the engine's one enforcement point.
//!
//! The engine parses every request (and every entry of a batch or transaction) into a
//! [`Target`]: the FHIR interaction it performs and what it names. Before the interaction runs,
//! the engine asks the [`Access`] of the request for a type-level [`Grant`] on that target; the
//! interaction then asks for a data-level decision on every resource it touches: the body sent,
//! the stored resource an update, patch or delete replaces, the patched result, every match of
//! a search or of conditional criteria, every included resource and history entry. Interactions
//! never reach the store by another way, so a request cannot be authorised as one interaction
//! and run as another, and no path skips the data-level decision.
//!
//! Decisions may read the patient's Consents: the engine asks the access which patients'
//! Consents it needs ([`Access::consents_wanted`]) and loads them from the store, a page at a
//! time, before it asks about their resources ([`Access::give_consents`]).
//!
//! The engine knows no policy language: the gateway implements [`Access`] with Cedar; tests,
//! command-line tools and servers without authentication use [`Unrestricted`].

use std::fmt;

use serde_json::Value;

/// A FHIR interaction (http.html), as the engine dispatches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Read,
    Vread,
    SearchType,
    SearchSystem,
    SearchCompartment,
    Create,
    Update,
    Patch,
    Delete,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Capabilities,
    Batch,
    Transaction,
    /// A named operation (`$name` at any level).
    Operation,
}

impl Interaction {
    /// The interaction's code, as FHIR's CapabilityStatement names it (`search-type`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Vread => "vread",
            Self::SearchType => "search-type",
            Self::SearchSystem => "search-system",
            Self::SearchCompartment => "search-compartment",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::HistoryInstance => "history-instance",
            Self::HistoryType => "history-type",
            Self::HistorySystem => "history-system",
            Self::Capabilities => "capabilities",
            Self::Batch => "batch",
            Self::Transaction => "transaction",
            Self::Operation => "operation",
        }
    }

    /// Whether a denial of this interaction is answered as "not found" when reads are hidden.
    pub(crate) fn is_read(self) -> bool {
        matches!(self, Self::Read | Self::Vread | Self::HistoryInstance)
    }
}

impl fmt::Display for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one request (or bundle entry) does, and to what: the question of a type-level decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub interaction: Interaction,
    /// The resource type named (`""` at system level; the owner's type for a compartment search).
    pub resource_type: String,
    /// The id named (`""` when none; the owner's id for a compartment search).
    pub id: String,
    /// For [`Interaction::Operation`], the operation's name without `$`.
    pub operation: String,
}

impl Target {
    /// A target naming a type (and an id, or `""`).
    pub fn new(interaction: Interaction, resource_type: &str, id: &str) -> Self {
        Self { interaction, resource_type: resource_type.to_owned(), id: id.to_owned(), operation: String::new() }
    }

    /// `Type/id`, `Type` or `/`, for messages.
    pub fn path(&self) -> String {
        match (self.resource_type.is_empty(), self.id.is_empty()) {
            (true, _) => "/".to_owned(),
            (false, true) => self.resource_type.clone(),
            (false, false) => format!("{}/{}", self.resource_type, self.id),
        }
    }
}

/// Which resource a data-level decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A resource sent by the client, or what a write would store (a patched result).
    Incoming,
    /// The stored resource an update, patch or delete replaces.
    Stored,
    /// A resource the client would see, count or have matched: a read, a search or criteria
    /// match, an included resource, a history entry.
    Outgoing,
}

impl Phase {
    /// The phase's name, for audit trails.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::Stored => "stored",
            Self::Outgoing => "outgoing",
        }
    }
}

/// The answer to a type-level question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Not allowed, whatever the data; the reason is for the client.
    Denied(String),
    /// Allowed, and every data-level decision of the request would allow too: none is asked.
    AnyData,
    /// Allowed so far: each resource touched is decided on its data.
    PerResource,
}

/// The decisions of one client. Implementations must be cheap to ask many times (a search asks
/// once per match) and must deny when they cannot decide.
pub trait Access: Send + Sync {
    /// The type-level decision on `target`, before any data is known.
    fn decide(&self, target: &Target) -> Grant;

    /// The data-level decision on `resource` for `target` (whose type and id may differ from the
    /// resource's: a search or history target covers many resources).
    fn allows(&self, target: &Target, resource: &Value, phase: Phase) -> bool;

    /// Whether a denied read answers 404, as for a resource that does not exist.
    fn hides_denied_reads(&self) -> bool {
        true
    }

    /// Who is asking, so that results kept for one client (search pages) are served to no other.
    fn owner(&self) -> &str {
        ""
    }

    /// A description of the client from which the front end can rebuild this access later, for
    /// work done on its behalf after the request ended (an `$export` or `$import` job, see
    /// [`crate::bulk::worker`]).
    /// `None` (the default) when it cannot: the engine then refuses such work.
    fn persona(&self) -> Option<String> {
        None
    }

    /// Told after a write commits, with the version written (for audit trails: a conditional
    /// interaction names here the resource it actually changed).
    fn written(&self, _target: &Target, _resource_type: &str, _id: &str, _version: u64) {}

    /// The patients whose Consents a data-level decision on `resource` reads and that this
    /// access has not been given yet ([`Access::give_consents`]). The default, for decisions
    /// that read no Consent, is none: the engine then loads nothing.
    fn consents_wanted(&self, _resource: &Value) -> Vec<String> {
        Vec::new()
    }

    /// The current Consents naming one of `patients` as `Consent.patient`, read by the engine
    /// before it asks about those patients' resources: every one stored, whatever the client
    /// may see (they are inputs of its decisions, never shown by this call), or `None` when
    /// they could not all be read. An access must decide a resource of a patient whose Consents
    /// it was not given as if they denied.
    fn give_consents(&self, _patients: &[String], _consents: Option<Vec<Value>>) {}
}

/// No restriction: every interaction on any data. For servers without authentication, tools
/// and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unrestricted;

impl Access for Unrestricted {
    fn decide(&self, _target: &Target) -> Grant {
        Grant::AnyData
    }

    fn allows(&self, _target: &Target, _resource: &Value, _phase: Phase) -> bool {
        true
    }

    fn persona(&self) -> Option<String> {
        Some(String::new())
    }
}

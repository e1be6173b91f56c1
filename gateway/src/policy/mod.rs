//! The policy phase: the loaded Cedar policies (swapped whole on reload), the type-level
//! decision before the interaction and data-level decisions on the resources read, written,
//! replaced or deleted. Every decision is audited ([`audit`]).
//!
//! Search bundles go through the same entry filter as history bundles ([`enforce`]); every entry
//! of a batch or transaction is decided on its own ([`bundle`]).

pub mod audit;
mod bundle;
pub mod enforce;
pub mod reload;
pub mod tools;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use fhirgate_policies::{AuthzRequest, Decision, PolicyEngine, PolicySource, Principal};
use serde_json::Value;

use crate::config::PolicyConfig;
use crate::error::GatewayError;

/// The policies in force.
pub struct Policies {
    config: PolicyConfig,
    current: RwLock<Arc<PolicyEngine>>,
}

/// Why a decision was asked, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Before the interaction, on the type (and id).
    Type,
    /// On a resource body sent (create, update).
    Incoming,
    /// On the stored resource an update or delete replaces.
    Stored,
    /// On a resource the engine returned.
    Outgoing,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Incoming => "incoming",
            Self::Stored => "stored",
            Self::Outgoing => "outgoing",
        }
    }
}

impl Policies {
    /// Loads the configured sets and directory; fails when they do not validate.
    pub fn load(config: &PolicyConfig) -> Result<Self, GatewayError> {
        let engine = load_engine(config)?;
        tracing::info!(policies = engine.policy_ids().len(), sets = ?config.sets, dir = ?config.dir, "policies loaded");
        Ok(Self { config: config.clone(), current: RwLock::new(Arc::new(engine)) })
    }

    /// The directory watched for changes, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        self.config.dir.clone()
    }

    /// Loads the policies again and swaps them in if they validate; otherwise the old set keeps
    /// serving and the error is logged.
    pub fn reload(&self) -> bool {
        match load_engine(&self.config) {
            Ok(engine) => {
                let count = engine.policy_ids().len();
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(engine);
                }
                tracing::info!(policies = count, "policies reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload rejected; the previous policies stay in force");
                false
            }
        }
    }

    fn engine(&self) -> Option<Arc<PolicyEngine>> {
        self.current.read().ok().map(|e| e.clone())
    }

    /// Decides and audits one request. An evaluation failure denies.
    pub fn decide(
        &self,
        principal: &Principal,
        request: &AuthzRequest,
        phase: Phase,
        audit: &audit::AuditInfo,
    ) -> Decision {
        let decision = self.evaluate(principal, request);
        audit::record(principal, request, phase.as_str(), &decision, audit);
        decision
    }

    /// Decides one request without auditing it: for a decision that is only used (and then
    /// audited) when it covers the data ([`Decision::covers_data`]).
    pub fn evaluate(&self, principal: &Principal, request: &AuthzRequest) -> Decision {
        match self.engine().map(|e| e.decide(principal, request)) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                tracing::error!(error = %e, "authorization request could not be evaluated; denied");
                Decision { errors: vec![e.to_string()], ..Decision::default() }
            }
            None => Decision { errors: vec!["policies unavailable".into()], ..Decision::default() },
        }
    }

    /// Whether a denied read answers 404.
    pub fn hides_reads(&self) -> bool {
        self.config.deny_reads_as_not_found
    }

    /// Decides on one resource's data.
    pub fn decide_data(
        &self,
        principal: &Principal,
        request: &AuthzRequest,
        resource: &Value,
        phase: Phase,
        audit: &audit::AuditInfo,
    ) -> Decision {
        self.decide(principal, &request.with_data(resource), phase, audit)
    }
}

/// Every source the configuration names.
pub fn sources(config: &PolicyConfig) -> Result<Vec<PolicySource>, GatewayError> {
    let mut sources = Vec::new();
    for set in &config.sets {
        sources.extend(fhirgate_policies::shipped(set)?);
    }
    if let Some(dir) = &config.dir {
        sources.extend(fhirgate_policies::directory(dir)?);
    }
    Ok(sources)
}

fn load_engine(config: &PolicyConfig) -> Result<PolicyEngine, GatewayError> {
    Ok(PolicyEngine::load(&sources(config)?)?)
}

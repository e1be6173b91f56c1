//! The policy phase: the loaded Cedar policies (swapped whole on reload) and, per request, the
//! [`access::CedarAccess`] through which the engine asks for every decision: the type-level one
//! before the interaction, and the data-level ones on each resource it reads, matches, writes,
//! replaces, deletes, includes or counts. Every decision is audited ([`audit`]).

pub mod access;
pub mod audit;
pub mod impact;
pub mod proofs;
pub mod reload;
pub mod tools;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use fhirgate_policies::{PolicyEngine, PolicySource, Principal, RequestContext};

use crate::config::PolicyConfig;
use crate::error::GatewayError;

/// The policies in force.
pub struct Policies {
    config: PolicyConfig,
    /// `None` while no set has loaded (a policy directory broken at start): every decision
    /// denies and the server is not ready (`/health/ready`) until a reload succeeds.
    current: RwLock<Option<Arc<PolicyEngine>>>,
}

impl Policies {
    /// Loads the configured sets and directory. A set name that is not shipped is a
    /// configuration mistake and fails; a policy directory that does not validate leaves the
    /// server running with no policies in force (everything denied, not ready), waiting for the
    /// directory to be fixed (a ConfigMap update, picked up by the reload watcher).
    pub fn load(config: &PolicyConfig) -> Result<Self, GatewayError> {
        for set in &config.sets {
            fhirgate_policies::shipped(set)?;
        }
        let engine = match load_engine(config) {
            Ok(engine) => {
                let count = engine.policy_ids().len();
                tracing::info!(policies = count, sets = ?config.sets, dir = ?config.dir, "policies loaded");
                crate::metrics::metrics().policies_in_force(count);
                Some(Arc::new(engine))
            }
            Err(e) if config.dir.is_some() => {
                tracing::error!(
                    error = %e,
                    dir = ?config.dir,
                    "the policies did not load: every request is denied and /health/ready answers 503 until the \
                     policy directory validates (it is reloaded when a file changes, or on SIGHUP)"
                );
                None
            }
            Err(e) => return Err(e),
        };
        Ok(Self { config: config.clone(), current: RwLock::new(engine) })
    }

    /// The directory watched for changes, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        self.config.dir.clone()
    }

    /// Whether a policy set is in force.
    pub fn loaded(&self) -> bool {
        self.current.read().is_ok_and(|e| e.is_some())
    }

    /// Loads the policies again and swaps them in if they validate; otherwise the old set keeps
    /// serving and the error is logged.
    pub fn reload(&self) -> bool {
        let metrics = crate::metrics::metrics();
        match load_engine(&self.config) {
            Ok(engine) => {
                let count = engine.policy_ids().len();
                if let Ok(mut current) = self.current.write() {
                    *current = Some(Arc::new(engine));
                }
                tracing::info!(policies = count, "policies reloaded");
                metrics.policy_reload(true);
                metrics.policies_in_force(count);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload rejected; the previous policies stay in force");
                metrics.policy_reload(false);
                false
            }
        }
    }

    /// Whether the policies in force may decide on a resource's data (see
    /// `PolicyEngine::reads_resource_data`); when they cannot be read, or none are in force, as
    /// if they did.
    pub fn read_resource_data(&self) -> bool {
        self.current.read().ok().and_then(|e| e.as_ref().map(|e| e.reads_resource_data())).unwrap_or(true)
    }

    /// The decisions of one request by `principal`, all made with the policies in force now.
    pub fn access<'a>(
        &self,
        principal: &'a Principal,
        context: RequestContext,
        audit: &'a audit::AuditInfo,
    ) -> access::CedarAccess<'a> {
        let policies = self.current.read().ok().and_then(|e| e.clone());
        access::CedarAccess {
            reads_consents: policies.as_ref().is_some_and(|p| p.reads_consents()),
            consents: std::sync::Mutex::default(),
            policies,
            principal: std::borrow::Cow::Borrowed(principal),
            context,
            audit: std::borrow::Cow::Borrowed(audit),
            hides_reads: self.config.deny_reads_as_not_found,
            audit_inputs: self.config.audit_inputs,
            owner: std::sync::OnceLock::new(),
        }
    }
}

/// Who results kept for later (search pages, sealed page links) belong to: a digest of the
/// whole principal (issuer, subject, roles, scopes, tenant, patient, client ...), not just its
/// subject, and of what the request itself adds to the grants (`X-Purpose-Of-Use`,
/// `X-Break-Glass`). Two tokens of one user with different grants (two SMART apps with
/// different scopes, a reader and an admin role), or one token with and without break-glass,
/// are different owners, so a page made for one never opens for the other. Stable within one
/// build (the principal's `Debug` form; links issued by another version may be refused as
/// gone).
pub fn owner(principal: &Principal, context: &RequestContext) -> String {
    let granted = format!("{principal:?}|{:?}|{}", context.purpose_of_use, context.break_glass);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, granted.as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_subject_with_other_grants_is_another_owner() {
        let plain = RequestContext::default();
        let of = |claims: serde_json::Value| owner(&Principal::from_claims(&claims, "patient"), &plain);
        let reader = json!({"iss": "https://idp", "sub": "u1", "roles": ["globalReader"]});
        assert_eq!(of(reader.clone()), of(reader.clone()), "stable");
        assert_eq!(of(reader.clone()).len(), 32);
        for other in [
            json!({"iss": "https://idp", "sub": "u1", "roles": ["globalAdmin"]}),
            json!({"iss": "https://idp", "sub": "u1", "roles": ["globalReader"], "tid": "t2"}),
            json!({"iss": "https://idp", "sub": "u1", "scp": "patient/*.rs", "patient": "p1"}),
            json!({"iss": "https://idp", "sub": "u2", "roles": ["globalReader"]}),
            json!({"iss": "https://other", "sub": "u1", "roles": ["globalReader"]}),
        ] {
            assert_ne!(of(reader.clone()), of(other.clone()), "{other}");
        }
        let principal = Principal::from_claims(&reader, "patient");
        let glass = RequestContext { break_glass: true, ..RequestContext::default() };
        let purpose = RequestContext { purpose_of_use: "ETREAT".into(), ..RequestContext::default() };
        assert_ne!(owner(&principal, &plain), owner(&principal, &glass), "break-glass pages are break-glass's");
        assert_ne!(owner(&principal, &plain), owner(&principal, &purpose), "and a purpose's its own");
        let elsewhere = RequestContext { client_ip: "10.0.0.9".into(), method: "POST".into(), ..plain.clone() };
        assert_eq!(owner(&principal, &plain), owner(&principal, &elsewhere), "not the request's own details");
    }
}

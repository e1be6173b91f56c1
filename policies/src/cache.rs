//! Decisions, remembered by the [`crate::PolicyEngine`] that made them. Building the Cedar
//! entities and context of a request and evaluating the set was most of the cost of authorising
//! a read (bench/README.md), and the answer is the same for every request of one token's
//! claims, action and target type. A type-level Cedar request is built from the principal, the
//! action, the target and the context only (`to_cedar`), so the key is those four, less what the
//! loaded policies provably do not read ([`crate::reads`]): the clock, the client's address and
//! the resource id are left out unless a policy reads them.
//!
//! A data-level request adds one resource's data, all of it read from the resource's JSON (its
//! facts and the search-parameter attributes the policies read, [`crate::AuthzRequest`]), so its
//! key is the type-level key of the resource's type and id plus a digest of the resource's
//! content ([`Fingerprint`]): the same resource, unchanged, read again by the same claims is not
//! decided again (every read of a patient-scoped token, every search entry under attribute
//! policies). Decisions that read the patients' Consents are not cached: a Consent can change
//! while the resource does not (the caller decides those itself).
//!
//! The cache belongs to one engine: a policy reload makes a new engine, and with it an empty
//! cache. It is bounded in bytes and in age (a decision is deterministic for its key, so age
//! only bounds what an idle principal keeps in memory; a token past its expiry never gets here,
//! authentication refuses it, and a new token with the same claims is owed the same decisions).

use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::time::Duration;

use crate::action::{Action, Target};
use crate::decision::Decision;
use crate::principal::Principal;
use crate::reads::Reads;
use crate::request::{AuthzRequest, RequestContext};

/// Bytes of keys and decisions kept at most (an entry is typically well under a kilobyte; its
/// weight counts its strings, so a client sending large headers cannot make the cache large).
const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;
/// How long an entry lives.
const TIME_TO_LIVE: Duration = Duration::from_secs(600);

/// Everything a decision can depend on, less what the policies do not read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    principal: Principal,
    action: Action,
    target: Target,
    context: RequestContext,
    /// The resource's content, for a data-level decision.
    data: Option<Fingerprint>,
}

/// A 128-bit digest of a resource's JSON under two SipHash keys drawn at random for this
/// process: nobody outside it can make two resources with one digest, and by chance two
/// resources share one with a probability of about 2^-128 per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(u64, u64);

impl Fingerprint {
    pub(crate) fn of(resource: &serde_json::Value) -> Self {
        static KEYS: LazyLock<(std::collections::hash_map::RandomState, std::collections::hash_map::RandomState)> =
            LazyLock::new(Default::default);
        let mut digest = Digest(KEYS.0.build_hasher(), KEYS.1.build_hasher());
        // Writing into hashers cannot fail; a value that cannot be written is never a resource.
        let _ = serde_json::to_writer(&mut digest, resource);
        Self(digest.0.finish(), digest.1.finish())
    }
}

/// The two hashers a resource's JSON text is written into.
struct Digest<H>(H, H);

impl<H: Hasher> std::io::Write for Digest<H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        self.1.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Key {
    /// About the bytes the key holds.
    fn weight(&self) -> usize {
        let p = &self.principal;
        let lists = [&p.roles, &p.groups, &p.scopes].iter().flat_map(|l| l.iter()).map(|s| s.len() + 24).sum::<usize>();
        let texts = [&p.issuer, &p.subject, &p.tenant, &p.fhir_user, &p.client_id, &p.patient, &p.encounter]
            .iter()
            .map(|s| s.len())
            .sum::<usize>();
        let t = &self.target;
        let c = &self.context;
        let request = [&t.resource_type, &t.id, &t.operation, &c.client_ip, &c.purpose_of_use, &c.method, &c.store]
            .iter()
            .map(|s| s.len())
            .sum::<usize>();
        // Context fields not listed here (flags, numbers) are counted in the fixed part.
        256 + lists + texts + request
    }
}

/// About the bytes a decision holds.
fn weight(decision: &Decision) -> usize {
    decision.policies.iter().chain(&decision.errors).map(|s| s.len() + 24).sum::<usize>() + 64
}

/// The decisions of one engine.
pub(crate) struct DecisionCache {
    reads: Reads,
    decisions: moka::sync::Cache<Key, Decision>,
}

impl DecisionCache {
    pub fn new(reads: Reads) -> Self {
        let decisions = moka::sync::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|key: &Key, decision: &Decision| {
                u32::try_from(key.weight() + weight(decision)).unwrap_or(u32::MAX)
            })
            .time_to_live(TIME_TO_LIVE)
            .build();
        Self { reads, decisions }
    }

    /// The key of a type-level request; `None` for a data-level one.
    pub fn key(&self, principal: &Principal, request: &AuthzRequest) -> Option<Key> {
        if request.data.is_some() {
            return None;
        }
        let mut target = request.target.clone();
        if !self.reads.resource_id {
            target.id.clear();
        }
        let mut context = request.context.clone();
        if !self.reads.time {
            context.epoch_seconds = 0;
        }
        if !self.reads.client_ip {
            context.client_ip.clear();
        }
        Some(Key { principal: principal.clone(), action: request.action, target, context, data: None })
    }

    /// The key of `request` (type level) asked about `resource`: the type-level key of the
    /// resource's own type and id, and the resource's content.
    pub fn data_key(&self, principal: &Principal, request: &AuthzRequest, resource: &serde_json::Value) -> Option<Key> {
        let mut key = self.key(principal, &request.on_resource(resource))?;
        key.data = Some(Fingerprint::of(resource));
        Some(key)
    }

    pub fn get(&self, key: &Key) -> Option<Decision> {
        self.decisions.get(key)
    }

    pub fn insert(&self, key: Key, decision: Decision) {
        self.decisions.insert(key, decision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_keys_cannot_make_the_cache_large() {
        let cache = DecisionCache::new(Reads { time: false, client_ip: false, resource_id: false });
        let principal = Principal::from_claims(&serde_json::json!({"sub": "u"}), "patient");
        let big = "x".repeat(1024 * 1024);
        for n in 0..64 {
            let context = RequestContext { purpose_of_use: format!("{n}{big}"), ..RequestContext::default() };
            let request = AuthzRequest::type_level(Action::Read, Target::default(), context);
            if let Some(key) = cache.key(&principal, &request) {
                cache.insert(key, Decision::default());
            }
        }
        cache.decisions.run_pending_tasks();
        assert!(cache.decisions.weighted_size() <= CAPACITY_BYTES, "{}", cache.decisions.weighted_size());
        assert!(cache.decisions.entry_count() < 64, "some were evicted or refused");
    }
}

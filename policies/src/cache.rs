//! Type-level decisions, remembered by the [`crate::PolicyEngine`] that made them. Building the
//! Cedar entities and context of a request and evaluating the set was most of the cost of
//! authorising a read (bench/README.md), and the answer is the same for every request of one
//! token's claims, action and target type. A type-level Cedar request is built from the
//! principal, the action, the target and the context only (`to_cedar`), so the key is those
//! four, less what the loaded policies provably do not read ([`crate::reads`]): the clock, the
//! client's address and the resource id are left out unless a policy reads them.
//!
//! The cache belongs to one engine: a policy reload makes a new engine, and with it an empty
//! cache. It is bounded in entries and in age (a decision is deterministic for its key, so age
//! only bounds what an idle principal keeps in memory). Data-level decisions are never cached.

use std::time::Duration;

use crate::action::{Action, Target};
use crate::decision::Decision;
use crate::principal::Principal;
use crate::reads::Reads;
use crate::request::{AuthzRequest, RequestContext};

/// Entries kept at most (each a principal's claims and a decision: well under a kilobyte).
const CAPACITY: u64 = 10_000;
/// How long an entry lives.
const TIME_TO_LIVE: Duration = Duration::from_secs(600);

/// Everything a type-level decision can depend on, less what the policies do not read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    principal: Principal,
    action: Action,
    target: Target,
    context: RequestContext,
}

/// The decisions of one engine.
pub(crate) struct DecisionCache {
    reads: Reads,
    decisions: moka::sync::Cache<Key, Decision>,
}

impl DecisionCache {
    pub fn new(reads: Reads) -> Self {
        let decisions = moka::sync::Cache::builder().max_capacity(CAPACITY).time_to_live(TIME_TO_LIVE).build();
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
        Some(Key { principal: principal.clone(), action: request.action, target, context })
    }

    pub fn get(&self, key: &Key) -> Option<Decision> {
        self.decisions.get(key)
    }

    pub fn insert(&self, key: Key, decision: Decision) {
        self.decisions.insert(key, decision);
    }
}

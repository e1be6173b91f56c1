//! Prometheus metrics of this process, served at `GET /metrics` in the text exposition format
//! (0.0.4): requests, their latency, Cedar decisions, token verifications, store calls and
//! pools, policy reloads, process memory. Names follow Prometheus' conventions (`fhirgate_`
//! prefix, base units in the name, `_total` counters, `_seconds` histograms); the table is in
//! `deploy/README.md`.
//!
//! Labels stay bounded: interactions, resource types (R4's, else `other`), route and target ids
//! and policy sets (from the configuration), status codes, outcomes; never an id, a URL or a
//! subject. The registry is the process's (one `static`): the phases that count do not carry it
//! around. Counting is an atomic add on a series found by its labels' hash under a shared read
//! lock (no allocation once a series exists); gauges of pools and the process are read at scrape.
//!
//! - [`labels`]: a request's interaction and resource type, and status codes, as label values.
//! - [`store`]: the store decorator timing each call.
//! - [`process`]: resident memory and open file descriptors, from `/proc`.
//!
//! `metrics.listen` serves them on an address of their own (`crate::proxy::Serves::Metrics`).

pub mod labels;
mod process;
pub mod store;

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use fhirgate_policies::Decision;
use prometheus::{
    Counter, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::routing::Routing;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request latency buckets, in seconds: a local read takes well under a millisecond, a proxied
/// search or a large transaction seconds.
const REQUEST_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Store call latency buckets, in seconds.
const STORE_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    decisions: IntCounterVec,
    tokens: IntCounterVec,
    token_cache_hits: IntCounter,
    token_cache_misses: IntCounter,
    store_duration: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGaugeVec,
    policy_reloads: IntCounterVec,
    policies_loaded: IntGauge,
    cosmos_units: Counter,
    resident_memory: IntGauge,
    open_fds: IntGauge,
    /// One scrape at a time: the gauges read at scrape are set, then gathered.
    scrape: Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    #[expect(
        clippy::expect_used,
        reason = "names, help texts and labels are constants: an invalid one is a build defect caught by every test"
    )]
    Metrics::new().expect("the metric definitions are valid")
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let histogram_vec =
            |name: &str, help: &str, labels: &[&str], buckets: &[f64]| -> prometheus::Result<HistogramVec> {
                let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let metric = IntCounter::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let metric = IntGauge::new(name, help)?;
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        };
        let cosmos_units =
            Counter::new("fhirgate_cosmos_request_units_total", "Cosmos DB request units spent by this process.")?;
        registry.register(Box::new(cosmos_units.clone()))?;
        let metrics = Self {
            requests: counter_vec(
                "fhirgate_http_requests_total",
                "HTTP requests answered, by FHIR interaction, resource type, route and status code.",
                &["interaction", "resource_type", "route", "status"],
            )?,
            request_duration: histogram_vec(
                "fhirgate_http_request_duration_seconds",
                "Time from a request's arrival to its answer's last byte, by FHIR interaction and route.",
                &["interaction", "route"],
                &REQUEST_BUCKETS,
            )?,
            decisions: counter_vec(
                "fhirgate_authz_decisions_total",
                "Cedar authorization decisions, by outcome (allow, deny, error), the policy set of the policy \
                 that determined it (none: default deny) and level (type, or the data-level phase).",
                &["outcome", "policy_set", "level"],
            )?,
            tokens: counter_vec(
                "fhirgate_token_verifications_total",
                "Bearer tokens checked, by outcome (valid, invalid, missing); a valid token from the cache counts too.",
                &["outcome"],
            )?,
            token_cache_hits: counter(
                "fhirgate_token_cache_hits_total",
                "Bearer tokens found verified in the token cache.",
            )?,
            token_cache_misses: counter(
                "fhirgate_token_cache_misses_total",
                "Bearer tokens not in the token cache (verified by signature).",
            )?,
            store_duration: histogram_vec(
                "fhirgate_store_operation_duration_seconds",
                "Time of each call to a local store, by target, store kind and operation.",
                &["target", "store", "operation"],
                &STORE_BUCKETS,
            )?,
            pool_connections: gauge_vec(
                "fhirgate_store_pool_connections",
                "Connections of a store's pool, by target, pool and state (in_use, idle).",
                &["target", "pool", "state"],
            )?,
            pool_max: gauge_vec(
                "fhirgate_store_pool_max_connections",
                "The most connections a store's pool opens, by target and pool.",
                &["target", "pool"],
            )?,
            policy_reloads: counter_vec(
                "fhirgate_policy_reloads_total",
                "Policy reloads (file change or SIGHUP), by outcome (success, failure: the previous set stays).",
                &["outcome"],
            )?,
            policies_loaded: gauge(
                "fhirgate_policies_loaded",
                "Cedar policies in force (0 with authentication on: none loaded, every request is denied and \
                 readiness fails).",
            )?,
            resident_memory: gauge("process_resident_memory_bytes", "Resident memory size in bytes.")?,
            open_fds: gauge("process_open_fds", "Number of open file descriptors.")?,
            cosmos_units,
            registry,
            scrape: Mutex::new(()),
        };
        // Outcomes known in advance are shown at 0 before the first one happens.
        for outcome in ["success", "failure"] {
            metrics.policy_reloads.get_metric_with_label_values(&[outcome])?;
        }
        for outcome in ["valid", "invalid", "missing"] {
            metrics.tokens.get_metric_with_label_values(&[outcome])?;
        }
        Ok(metrics)
    }

    /// One answered request.
    pub fn request(&self, labels: &labels::RequestLabels<'_>, status: u16, elapsed: Duration) {
        let status = labels::status(status);
        let values = [labels.interaction, labels.resource_type, labels.route, status];
        if let Ok(counter) = self.requests.get_metric_with_label_values(&values) {
            counter.inc();
        }
        if let Ok(histogram) = self.request_duration.get_metric_with_label_values(&[labels.interaction, labels.route]) {
            histogram.observe(elapsed.as_secs_f64());
        }
    }

    /// One Cedar decision, at `level` (`type`, or a data-level phase).
    pub fn decision(&self, decision: &Decision, level: &str) {
        let outcome = match (decision.allowed, decision.errors.is_empty()) {
            (true, _) => "allow",
            (false, false) if decision.policies.is_empty() => "error",
            (false, _) => "deny",
        };
        // Policy ids are `<set>:<id>`: the set of the first determining policy.
        let set = decision.policies.first().and_then(|id| id.split_once(':')).map_or("none", |(set, _)| set);
        if let Ok(counter) = self.decisions.get_metric_with_label_values(&[outcome, set, level]) {
            counter.inc();
        }
    }

    /// One bearer token checked: `valid`, `invalid` or `missing`.
    pub fn token(&self, outcome: &'static str) {
        if let Ok(counter) = self.tokens.get_metric_with_label_values(&[outcome]) {
            counter.inc();
        }
    }

    /// A token cache lookup.
    pub fn token_cache(&self, hit: bool) {
        if hit { self.token_cache_hits.inc() } else { self.token_cache_misses.inc() }
    }

    /// A policy reload's outcome.
    pub fn policy_reload(&self, success: bool) {
        if let Ok(counter) =
            self.policy_reloads.get_metric_with_label_values(&[if success { "success" } else { "failure" }])
        {
            counter.inc();
        }
    }

    /// How many policies are in force now (0: none).
    pub fn policies_in_force(&self, count: usize) {
        self.policies_loaded.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The histogram of one store operation of one target.
    fn store_histogram(&self, target: &str, store: &str, operation: &str) -> Option<Histogram> {
        self.store_duration.get_metric_with_label_values(&[target, store, operation]).ok()
    }

    /// The exposition: the counters as they are, the gauges read now (the local stores' pools
    /// that are open, the process), in the text format.
    pub fn render(&self, routing: &Routing) -> String {
        let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        // Cosmos DB's request units are summed by the engine (`storage::cost`): the counter
        // catches up with that total.
        let spent = fhirgate_engine::storage::cost::total() - self.cosmos_units.get();
        if spent > 0.0 {
            self.cosmos_units.inc_by(spent);
        }
        for (target, pools) in routing.store_pools() {
            for usage in pools {
                let set = |gauge: &IntGaugeVec, labels: &[&str], value: u32| {
                    if let Ok(g) = gauge.get_metric_with_label_values(labels) {
                        g.set(i64::from(value));
                    }
                };
                set(&self.pool_connections, &[target, usage.pool, "in_use"], usage.open - usage.idle);
                set(&self.pool_connections, &[target, usage.pool, "idle"], usage.idle);
                set(&self.pool_max, &[target, usage.pool], usage.max);
            }
        }
        if let Some(process) = process::read() {
            self.resident_memory.set(process.resident_bytes);
            self.open_fds.set(process.open_fds);
        }
        let mut text = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(error = %e, "the metrics could not be encoded");
        }
        text
    }
}

#[cfg(test)]
mod tests;

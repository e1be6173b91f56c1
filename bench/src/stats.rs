//! What one measurement collects: a latency histogram (hdrhistogram, microseconds) and counts of
//! successes, non-2xx answers and transport failures, per request kind; and its summary.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this are recorded as this (a minute: far beyond any request timeout).
const MAX_MICROS: u64 = 60_000_000;

/// Counts and latencies of one request kind (e.g. `read`, `create`).
#[derive(Debug, Clone)]
pub struct Stats {
    histogram: Histogram<u64>,
    pub ok: u64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub statuses: BTreeMap<u16, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        // Three significant digits from 1 µs to a minute: hdrhistogram accepts these bounds.
        #[expect(clippy::expect_used, reason = "constant bounds that hdrhistogram always accepts")]
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds");
        Self { histogram, ok: 0, non_2xx: 0, transport_errors: 0, statuses: BTreeMap::new() }
    }
}

impl Stats {
    /// Records an answered request: its status and latency.
    pub fn record(&mut self, status: u16, latency: Duration) {
        self.histogram.saturating_record(micros(latency));
        *self.statuses.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            self.ok += 1;
        } else {
            self.non_2xx += 1;
        }
    }

    /// Records a request that got no HTTP answer (connect, reset, malformed response).
    pub fn record_transport_error(&mut self, latency: Duration) {
        self.histogram.saturating_record(micros(latency));
        self.transport_errors += 1;
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.non_2xx + self.transport_errors
    }

    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.transport_errors += other.transport_errors;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
    }

    /// The summary of these requests over `elapsed` wall-clock time.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let ms = |q: f64| self.histogram.value_at_quantile(q) as f64 / 1000.0;
        let seconds = elapsed.as_secs_f64();
        Summary {
            requests: self.requests(),
            ok: self.ok,
            non_2xx: self.non_2xx,
            transport_errors: self.transport_errors,
            statuses: self.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            throughput_per_second: if seconds > 0.0 { self.requests() as f64 / seconds } else { 0.0 },
            latency_ms: Latency {
                mean: self.histogram.mean() / 1000.0,
                p50: ms(0.50),
                p95: ms(0.95),
                p99: ms(0.99),
                max: self.histogram.max() as f64 / 1000.0,
            },
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The reported figures of one request kind (or of all kinds together).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub statuses: BTreeMap<String, u64>,
    pub throughput_per_second: f64,
    pub latency_ms: Latency,
}

/// Stats per request kind, as one client collects them; merged at the end.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub kinds: BTreeMap<&'static str, Stats>,
}

impl Recorder {
    pub fn kind(&mut self, kind: &'static str) -> &mut Stats {
        self.kinds.entry(kind).or_default()
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (kind, stats) in &other.kinds {
            self.kind(kind).merge(stats);
        }
    }

    /// All kinds together.
    pub fn total(&self) -> Stats {
        let mut all = Stats::default();
        for stats in self.kinds.values() {
            all.merge(stats);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_merge() {
        let mut a = Recorder::default();
        a.kind("read").record(200, Duration::from_millis(2));
        a.kind("read").record(404, Duration::from_millis(1));
        let mut b = Recorder::default();
        b.kind("read").record_transport_error(Duration::from_millis(3));
        b.kind("create").record(201, Duration::from_millis(5));
        a.merge(&b);
        let total = a.total().summary(Duration::from_secs(1));
        assert_eq!((total.requests, total.ok, total.non_2xx, total.transport_errors), (4, 2, 1, 1));
        assert_eq!(total.statuses.get("200"), Some(&1));
        assert!(total.latency_ms.max >= 4.9);
    }
}

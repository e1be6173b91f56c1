//! Runs a workload: closed loop (N clients, each sends its next request when the previous one is
//! answered) or open loop (requests started at a fixed rate over a pool of connections; latency
//! counts from the intended start, so a slow server cannot hide its queue: no coordinated
//! omission). A warm-up comes first: iterations that end before it is over are not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http::{Connection, Target};
use crate::procfs::{Usage, Watch};
use crate::stats::{Recorder, Summary};
use crate::workload::{ClientState, Workload};

/// How to drive the load.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    Closed {
        clients: usize,
    },
    /// `rate` iterations per second over `connections` connections.
    Open {
        rate: f64,
        connections: usize,
    },
}

/// One measurement's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    pub server_pid: Option<u32>,
}

/// The result of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub label: String,
    #[serde(flatten)]
    pub mode: Mode,
    pub duration_seconds: f64,
    pub total: Summary,
    pub kinds: std::collections::BTreeMap<String, Summary>,
    pub server: Option<Usage>,
    /// The 1-minute load average at the end: above the core count, something else competed.
    pub load_average_1m: Option<f64>,
    /// CPU seconds the load generator itself used (it shares the machine with the server).
    pub generator_cpu_seconds: Option<f64>,
}

/// Runs `workload` per `plan` against `target`.
pub async fn run(label: &str, target: &Target, workload: &Workload, plan: &Plan) -> Measurement {
    let clients = match plan.mode {
        Mode::Closed { clients } => clients,
        Mode::Open { connections, .. } => connections,
    }
    .max(1);
    let begin = Instant::now();
    let measure_from = begin + plan.warmup;
    let deadline = measure_from + plan.duration;
    let ticket = Arc::new(AtomicU64::new(0));

    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let workload = workload.clone();
        let ticket = Arc::clone(&ticket);
        let mut st = ClientState::new(Connection::new(target.clone()), client as u64, plan.seed);
        let mode = plan.mode;
        tasks.push(tokio::spawn(async move {
            loop {
                let origin = match mode {
                    Mode::Closed { .. } => Instant::now(),
                    Mode::Open { rate, .. } => {
                        let i = ticket.fetch_add(1, Ordering::Relaxed);
                        let intended = begin + Duration::from_secs_f64(i as f64 / rate.max(0.001));
                        if intended >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(intended.into()).await;
                        intended
                    }
                };
                if origin >= deadline {
                    break;
                }
                workload.step(&mut st, origin).await;
                // Iterations that ended during the warm-up are not counted; one that ends inside
                // the measurement is, even if it started before (as wrk counts completions).
                if Instant::now() < measure_from {
                    st.recorder = Recorder::default();
                }
            }
            st.recorder
        }));
    }

    tokio::time::sleep_until(measure_from.into()).await;
    let watch = plan.server_pid.map(Watch::start);
    let generator = crate::procfs::sample(std::process::id());
    let mut recorder = Recorder::default();
    for task in tasks {
        if let Ok(r) = task.await {
            recorder.merge(&r);
        }
    }
    let elapsed = measure_from.elapsed();
    let total = recorder.total();
    Measurement {
        label: label.to_string(),
        mode: plan.mode,
        duration_seconds: elapsed.as_secs_f64(),
        server: watch.and_then(|w| w.finish(total.requests())),
        total: total.summary(elapsed),
        kinds: recorder.kinds.iter().map(|(k, s)| ((*k).to_string(), s.summary(elapsed))).collect(),
        load_average_1m: crate::procfs::load_average(),
        generator_cpu_seconds: crate::procfs::cpu_since(generator),
    }
}

//! The benchmark suite: starts the server (or uses a running one), loads the dataset (scenario 3)
//! and runs the chosen scenarios, one `ScenarioResult` each:
//! 1 read by id, 2 create and update, 3 transaction ingest, 4 token search and `_summary=count`,
//! 5 patient-compartment search and `_include`, 6 CRUD mix, 7 gateway cost of two configurations,
//! 8 bulk `$export` of the whole store ([`crate::export`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::dataset::{self, Dataset};
use crate::driver::{self, Measurement, Mode, Plan};
use crate::error::BenchError;
use crate::http::Target;
use crate::report::{Machine, ScenarioResult};
use crate::server::{self, Server, ServerSpec};
use crate::workload::Workload;

/// Everything a suite run needs.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The server to start; `None` to use `base_url` (and `server_pid`) as given.
    pub server: Option<ServerSpec>,
    /// Environment of the started server (scenarios 1–6), e.g. from `--env-file`.
    pub server_env: BTreeMap<String, String>,
    pub base_url: Option<String>,
    pub server_pid: Option<u32>,
    /// A fixed bearer token (`--bearer`).
    pub bearer: Option<String>,
    /// `--token-command`: run after each server start (see `server::token_env`), or once for a
    /// server the tool did not start; its output is the bearer token.
    pub token_command: Option<String>,
    pub scenarios: Vec<u8>,
    /// Synthea Bundles to load; without them the dataset file must exist.
    pub bundles: Option<PathBuf>,
    pub dataset_path: PathBuf,
    pub load_clients: usize,
    /// Send each patient as `batch` Bundles of this many entries instead of one transaction.
    pub batch_size: Option<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub clients: usize,
    pub read_clients: Vec<usize>,
    pub rate: Option<f64>,
    pub env_a: Option<PathBuf>,
    pub env_b: Option<PathBuf>,
    pub seed: u64,
    pub store: String,
    pub store_settings: String,
    pub machine: Machine,
}

/// The running context: where requests go and which process to watch.
struct Live {
    target: Target,
    pid: Option<u32>,
    server: Option<Server>,
}

impl Suite {
    fn plan(&self, mode: Mode, pid: Option<u32>) -> Plan {
        Plan { mode, warmup: self.warmup, duration: self.duration, seed: self.seed, server_pid: pid }
    }

    fn result(&self, scenario: u8, name: &str) -> ScenarioResult {
        ScenarioResult {
            scenario,
            name: name.into(),
            date: crate::report::today(),
            store: self.store.clone(),
            store_settings: self.store_settings.clone(),
            machine: self.machine.clone(),
            notes: Vec::new(),
            measurements: Vec::new(),
            figures: serde_json::Map::new(),
        }
    }

    async fn start(&self, env: &BTreeMap<String, String>) -> Result<Live, BenchError> {
        match &self.server {
            Some(spec) => {
                let server = Server::start(spec, env).await?;
                eprintln!("server pid {} at {}", server.pid, server.base_url);
                let bearer = match &self.token_command {
                    Some(cmd) => Some(server::token_from_command(cmd, &server::token_env(spec, env, &server.listen))?),
                    None => self.bearer.clone(),
                };
                let target = Target::parse(&server.base_url, bearer)?;
                Ok(Live { target, pid: Some(server.pid), server: Some(server) })
            }
            None => {
                let base = self
                    .base_url
                    .as_deref()
                    .ok_or_else(|| BenchError::Usage("give --base-url or --server-bin".into()))?;
                let bearer = match &self.token_command {
                    Some(cmd) => Some(server::token_from_command(cmd, &BTreeMap::new())?),
                    None => self.bearer.clone(),
                };
                Ok(Live { target: Target::parse(base, bearer)?, pid: self.server_pid, server: None })
            }
        }
    }

    /// Runs the suite; results in the order run.
    pub async fn run(&self) -> Result<Vec<ScenarioResult>, BenchError> {
        let mut results = Vec::new();
        let mut live = self.start(&self.server_env).await?;
        let dataset = match &self.bundles {
            Some(dir) => {
                let files = dataset::bundle_files(dir)?;
                eprintln!("scenario 3: loading {} Bundles with {} clients", files.len(), self.load_clients);
                let (dataset, m, per_second) =
                    dataset::load(&live.target, files, self.load_clients, self.batch_size, live.pid).await?;
                dataset.write(&self.dataset_path)?;
                let mut r = self.result(3, "transaction-bundle ingest (Synthea, one Bundle per patient)");
                r.figures.insert("bundles".into(), json!(dataset.bundles));
                r.figures.insert("resources".into(), json!(dataset.resources));
                r.figures.insert("resources_per_second".into(), json!(per_second.round()));
                r.notes.push("req/s counts Bundles; server CPU µs is per resource".into());
                r.measurements.push(m);
                eprintln!("scenario 3: {} resources, {per_second:.0} resources/s", dataset.resources);
                if self.scenarios.contains(&3) {
                    results.push(r);
                }
                dataset
            }
            None => Dataset::read(&self.dataset_path)?,
        };
        if dataset.patients.is_empty() {
            return Err(BenchError::Dataset("no patients loaded".into()));
        }
        for &scenario in self.scenarios.iter().filter(|s| !matches!(s, 3 | 7)) {
            let r = self.scenario(scenario, &dataset, &live).await?;
            results.push(r);
        }
        if self.scenarios.contains(&7) {
            if let Some(server) = live.server.take() {
                server.stop().await?;
            }
            results.push(self.gateway_cost(&dataset).await?);
        }
        if let Some(server) = live.server.take() {
            server.stop().await?;
        }
        Ok(results)
    }

    async fn measure(&self, label: &str, live: &Live, workload: &Workload, mode: Mode) -> Measurement {
        eprintln!("  {label} ({mode:?})");
        let m = driver::run(label, &live.target, workload, &self.plan(mode, live.pid)).await;
        eprintln!(
            "    {:.0} req/s, p99 {:.2} ms, {} non-2xx, {} transport errors",
            m.total.throughput_per_second, m.total.latency_ms.p99, m.total.non_2xx, m.total.transport_errors
        );
        m
    }

    async fn scenario(&self, n: u8, d: &Dataset, live: &Live) -> Result<ScenarioResult, BenchError> {
        let closed = Mode::Closed { clients: self.clients };
        let get = |kind: &'static str, paths: Vec<String>| Workload::Get { kind, paths: Arc::new(paths) };
        let codes: Vec<String> = d.observation_codes.iter().take(5).map(|c| c.token()).collect();
        let top = d.top_code()?.token();
        eprintln!("scenario {n}");
        let r = match n {
            1 => {
                let mut r = self.result(1, "read by id (GET Patient/{id}, random loaded patient)");
                let reads = get("read", d.patients.iter().map(|p| format!("Patient/{p}")).collect());
                for &clients in &self.read_clients {
                    let label = format!("read Patient/{{id}} ×{clients}");
                    r.measurements.push(self.measure(&label, live, &reads, Mode::Closed { clients }).await);
                }
                if let Some(rate) = self.rate {
                    let mode = Mode::Open { rate, connections: 64 };
                    r.measurements.push(self.measure("read Patient/{id} open loop", live, &reads, mode).await);
                }
                r
            }
            2 => {
                let mut r = self.result(2, "create and update of a ~2 KB Patient");
                r.notes.push(format!("durability: {}", self.store_settings));
                r.measurements.push(self.measure("create Patient (2 KB)", live, &Workload::Create, closed).await);
                r.measurements.push(self.measure("update Patient (2 KB)", live, &Workload::Update, closed).await);
                r
            }
            4 => {
                let mut r = self.result(4, "token search, first page of 50, _summary=count, and Patient?name=");
                r.notes.push(format!("codes: the {} most frequent Observation codes, at random", codes.len()));
                let page = get("search", codes.iter().map(|c| format!("Observation?code={c}&_count=50")).collect());
                let count =
                    get("count", codes.iter().map(|c| format!("Observation?code={c}&_summary=count")).collect());
                r.measurements.push(self.measure("Observation?code=X&_count=50", live, &page, closed).await);
                r.measurements.push(self.measure("Observation?code=X&_summary=count", live, &count, closed).await);
                if !d.families.is_empty() {
                    r.notes.push("Patient?name=: a loaded patient's family name, at random (the Helios target)".into());
                    let names =
                        get("name", d.families.iter().map(|f| format!("Patient?name={}", query_encode(f))).collect());
                    r.measurements.push(self.measure("Patient?name=X", live, &names, closed).await);
                }
                r
            }
            5 => {
                let mut r = self.result(5, "patient-compartment search and _include");
                r.notes.push(format!("code: the most frequent Observation code `{top}`"));
                let by_patient = |extra: &str| -> Vec<String> {
                    d.patients.iter().map(|p| format!("Observation?patient={p}&code={top}{extra}")).collect()
                };
                let plain = get("search", by_patient(""));
                let include = get("include", by_patient("&_include=Observation:encounter"));
                r.measurements.push(self.measure("Observation?patient=X&code=Y", live, &plain, closed).await);
                let label = "…&_include=Observation:encounter";
                r.measurements.push(self.measure(label, live, &include, closed).await);
                r
            }
            6 => {
                let mut r = self.result(6, "CRUD mix: create, read, update, delete of one ~2 KB Patient per iteration");
                r.notes.push("modelled on HealthSamurai's CRUD test; req/s counts every request".into());
                r.measurements.push(self.measure("CRUD cycle", live, &Workload::Crud, closed).await);
                r
            }
            8 => {
                let mut r = self.result(8, "bulk $export of the whole store (system level): resources/s, peak RSS");
                r.notes
                    .push("job time from the kick-off to the manifest (polled every 200 ms); downloads after".into());
                crate::export::run(&live.target, live.pid, &mut r).await?;
                r
            }
            10 => {
                let mut r = self.result(10, "validation cost: create of a ~2 KB Patient without and with a profile");
                r.notes.push(
                    "profile: stored through the API first; cardinality, a slice, fixed, pattern, invariant".into(),
                );
                let mut conn = crate::http::Connection::new(live.target.clone());
                let posted = conn
                    .send(&crate::http::Call::with_body(
                        hyper::Method::POST,
                        "StructureDefinition",
                        crate::payload::profile(),
                    ))
                    .await?;
                if posted.status != 201 {
                    return Err(BenchError::Usage(format!("the profile was not stored: {}", posted.status)));
                }
                r.measurements.push(self.measure("create Patient", live, &Workload::Create, closed).await);
                let label = "create Patient with meta.profile";
                r.measurements.push(self.measure(label, live, &Workload::CreateProfiled, closed).await);
                if let [plain, profiled] = r.measurements.as_slice() {
                    let cpu = |m: &Measurement| m.server.as_ref().and_then(|s| s.cpu_us_per_request);
                    if let (Some(a), Some(b)) = (cpu(plain), cpu(profiled)) {
                        r.figures.insert("added_cpu_us_per_create".into(), json!((b - a).round()));
                    }
                    let p50 = |m: &Measurement| m.total.latency_ms.p50;
                    r.figures
                        .insert("added_p50_ms".into(), json!(((p50(profiled) - p50(plain)) * 1000.0).round() / 1000.0));
                    if profiled.total.non_2xx > 0 {
                        r.notes.push(format!("{} profiled creates were refused", profiled.total.non_2xx));
                    }
                }
                r
            }
            other => {
                return Err(BenchError::Usage(format!("no scenario {other} (1–8, 10; 9 is `fhirgate-bench import`)")));
            }
        };
        Ok(r)
    }

    /// Scenario 7: scenario 1 at `clients` against the server started with env A, then env B.
    async fn gateway_cost(&self, d: &Dataset) -> Result<ScenarioResult, BenchError> {
        let (Some(a), Some(b)) = (&self.env_a, &self.env_b) else {
            return Err(BenchError::Usage("scenario 7 needs --env-a FILE and --env-b FILE".into()));
        };
        if self.server.is_none() {
            return Err(BenchError::Usage("scenario 7 starts the server twice: give --server-bin".into()));
        }
        let mut r = self.result(7, "gateway cost: read by id under configuration A, then B");
        let reads = Workload::Get {
            kind: "read",
            paths: Arc::new(d.patients.iter().map(|p| format!("Patient/{p}")).collect()),
        };
        for (name, file) in [("A", a), ("B", b)] {
            let mut env = self.server_env.clone();
            env.extend(server::read_env_file(file)?);
            eprintln!("scenario 7: configuration {name} from `{}`", file.display());
            let mut live = self.start(&env).await?;
            let label = format!("{name}: read ×{} ({})", self.clients, file.display());
            r.measurements.push(self.measure(&label, &live, &reads, Mode::Closed { clients: self.clients }).await);
            if let Some(server) = live.server.take() {
                server.stop().await?;
            }
        }
        if let [ma, mb] = r.measurements.as_slice() {
            let cpu = |m: &Measurement| m.server.as_ref().and_then(|s| s.cpu_us_per_request);
            if let (Some(ca), Some(cb)) = (cpu(ma), cpu(mb)) {
                r.figures.insert("added_cpu_us_per_request".into(), json!((cb - ca).round()));
            }
            r.figures.insert(
                "added_p99_ms".into(),
                json!(((mb.total.latency_ms.p99 - ma.total.latency_ms.p99) * 1000.0).round() / 1000.0),
            );
        }
        Ok(r)
    }
}

/// Percent-encodes a query value (all but unreserved ASCII), e.g. `D'Amore` → `D%27Amore`.
fn query_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::query_encode("D'Amore Ñ"), "D%27Amore%20%C3%91");
    }
}

//! `fhirgate-bench`: a load generator and benchmark suite for fhirgate (or any FHIR R4 server).
//! Keep-alive HTTP/1.1 clients on tokio, closed or open loop, hdrhistogram latencies, and the
//! server's CPU time and peak RSS from `/proc`. See `bench/README.md`.

mod dataset;
mod driver;
mod error;
mod export;
mod http;
mod import;
mod payload;
mod procfs;
mod report;
mod rng;
mod server;
mod stats;
mod suite;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::driver::{Mode, Plan};
use crate::error::BenchError;
use crate::report::Machine;
use crate::server::ServerSpec;

#[derive(Parser)]
#[command(name = "fhirgate-bench", version, about = "Load generator and benchmark suite for FHIR R4 servers")]
struct Cli {
    /// Threads of the load generator (tokio workers).
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (or use one), load the dataset, run scenarios, write results.
    Suite(Box<SuiteArgs>),
    /// Load one URL (GET) closed or open loop and print the measurement as JSON.
    Http(HttpArgs),
    /// Scenario 9: `$import` (initial load) into a fresh server: resources/s and peak RSS.
    Import(ImportArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// The `fhirgate` binary to start (on a free port, on a fresh data directory).
    #[arg(long)]
    server_bin: PathBuf,
    /// Data directory of the started server (emptied first; the NDJSON is written below it).
    #[arg(long, default_value = "target/bench-import")]
    data_dir: PathBuf,
    /// Store URL of the started server (default: SQLite in the data directory).
    #[arg(long)]
    store: Option<String>,
    /// Store label in the results (default from the URL).
    #[arg(long)]
    store_label: Option<String>,
    /// Synthea transaction Bundles to turn into NDJSON; without them, a synthetic set.
    #[arg(long)]
    bundles: Option<PathBuf>,
    /// Patients of the synthetic set (5 observations each).
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Directory for the result JSON.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// After the import, export everything from the same server (scenario 8).
    #[arg(long)]
    export: bool,
    /// Write the ids and codes the request scenarios need (`suite --dataset`, without
    /// --bundles) here, and remove the NDJSON once imported: the data directory then holds a
    /// loaded store for `suite`.
    #[arg(long)]
    dataset: Option<PathBuf>,
    #[command(flatten)]
    auth: Auth,
}

#[derive(Args)]
struct Auth {
    /// Bearer token sent with every request.
    #[arg(long)]
    bearer: Option<String>,
    /// Command (run with `sh -c`) whose standard output is the bearer token. For a server the
    /// suite starts, it runs after each start with the server's environment plus its
    /// FHIRGATE_LISTEN, FHIRGATE_DATA_DIR (and FHIRGATE_STORE), e.g. `fhirgate token --role
    /// globalAdmin` signs for that server's local issuer.
    #[arg(long, conflicts_with = "bearer")]
    token_command: Option<String>,
}

impl Auth {
    fn token(&self) -> Result<Option<String>, BenchError> {
        if let Some(t) = &self.bearer {
            return Ok(Some(t.clone()));
        }
        self.token_command.as_deref().map(|cmd| server::token_from_command(cmd, &Default::default())).transpose()
    }
}

#[derive(Args)]
struct SuiteArgs {
    /// Scenarios to run, e.g. `1,4` (3, the ingest, runs whenever --bundles is given).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6")]
    scenarios: Vec<u8>,
    /// The `fhirgate` binary to start (on a free port); without it, use --base-url.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Data directory of the started server.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// Store URL of the started server (default: SQLite in the data directory).
    #[arg(long)]
    store: Option<String>,
    /// `KEY=VALUE` environment for the started server (scenarios 1–6).
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// A running server instead of --server-bin.
    #[arg(long)]
    base_url: Option<String>,
    /// Process to watch (CPU, peak RSS) when the server is not started by the tool.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Directory of Synthea transaction Bundles to load (scenario 3).
    #[arg(long)]
    bundles: Option<PathBuf>,
    /// Where the loaded ids and codes are written (with --bundles) or read (without).
    #[arg(long, default_value = "target/bench-data/dataset.json")]
    dataset: PathBuf,
    /// Concurrent transactions while loading.
    #[arg(long, default_value_t = 2)]
    load_clients: usize,
    /// Load each patient as `batch` Bundles of at most this many entries (PUTs at the Synthea
    /// ids, references rewritten) instead of one transaction: for stores with small transactions
    /// (the Cosmos DB store: 49).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded warm-up before each measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Clients of scenarios 2, 4, 5, 6 and 7.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Client counts of scenario 1.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    read_clients: Vec<usize>,
    /// Also run scenario 1 open loop at this many requests per second (64 connections).
    #[arg(long)]
    rate: Option<f64>,
    /// Scenario 7: server environment A (e.g. authentication off).
    #[arg(long)]
    env_a: Option<PathBuf>,
    /// Scenario 7: server environment B (e.g. authentication and Cedar on).
    #[arg(long)]
    env_b: Option<PathBuf>,
    /// Seed of the clients' random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Store name in file names and tables (default: from --store).
    #[arg(long)]
    store_label: Option<String>,
    /// Durability settings of the store, as reported.
    #[arg(long)]
    store_settings: Option<String>,
    /// Directory of the results.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    #[command(flatten)]
    auth: Auth,
}

#[derive(Args)]
struct HttpArgs {
    /// Full URL to GET, e.g. http://127.0.0.1:8080/Patient/1.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Open loop at this rate (requests per second, over --clients connections).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    auth: Auth,
}

fn seconds(s: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(s).map_err(|e| BenchError::Usage(format!("{s} seconds: {e}")))
}

async fn suite(a: SuiteArgs, threads: usize) -> Result<(), BenchError> {
    let store = a.store_label.clone().unwrap_or_else(|| match &a.store {
        Some(url) if url.starts_with("postgres") => "postgres".into(),
        _ => "sqlite".into(),
    });
    let store_settings = a.store_settings.clone().unwrap_or_else(|| match store.as_str() {
        "sqlite" => "SQLite WAL, synchronous=NORMAL".into(),
        _ => "as configured on the database server".into(),
    });
    let server_env = match &a.env_file {
        Some(f) => server::read_env_file(f)?,
        None => Default::default(),
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let suite = suite::Suite {
        server: a.server_bin.clone().map(|binary| ServerSpec {
            binary,
            data_dir: a.data_dir.clone(),
            store: a.store.clone(),
        }),
        server_env,
        base_url: a.base_url.clone(),
        server_pid: a.server_pid,
        bearer: a.auth.bearer.clone(),
        token_command: a.auth.token_command.clone(),
        scenarios: a.scenarios.clone(),
        bundles: a.bundles.clone(),
        dataset_path: a.dataset.clone(),
        load_clients: a.load_clients,
        batch_size: a.batch_size,
        warmup: seconds(a.warmup)?,
        duration: seconds(a.duration)?,
        clients: a.clients,
        read_clients: a.read_clients.clone(),
        rate: a.rate,
        env_a: a.env_a.clone(),
        env_b: a.env_b.clone(),
        seed: a.seed,
        store: store.clone(),
        store_settings,
        machine: Machine {
            cores,
            load_generator_threads: threads,
            note: "server and load generator on the same machine".into(),
        },
    };
    let results = suite.run().await?;
    for r in &results {
        eprintln!("wrote {}", report::write_json(&a.out, r)?.display());
    }
    let table = report::markdown(&results);
    if let Some(first) = results.first() {
        let path = a.out.join(format!("{}-{store}.md", first.date));
        std::fs::write(&path, &table).map_err(BenchError::file(&path))?;
        eprintln!("wrote {}", path.display());
    }
    println!("{table}");
    Ok(())
}

async fn http(a: HttpArgs) -> Result<(), BenchError> {
    let rest =
        a.url.strip_prefix("http://").ok_or_else(|| BenchError::Usage("--url must start with http://".into()))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let target = http::Target::parse(&format!("http://{authority}/"), a.auth.token()?)?;
    let workload = workload::Workload::Get { kind: "get", paths: Arc::new(vec![path.to_string()]) };
    let mode = match a.rate {
        Some(rate) => Mode::Open { rate, connections: a.clients },
        None => Mode::Closed { clients: a.clients },
    };
    let plan =
        Plan { mode, warmup: seconds(a.warmup)?, duration: seconds(a.duration)?, seed: 42, server_pid: a.server_pid };
    let m = driver::run(&a.url, &target, &workload, &plan).await;
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}

async fn import(a: ImportArgs, threads: usize) -> Result<(), BenchError> {
    let _ = std::fs::remove_dir_all(&a.data_dir);
    let store = a.store_label.clone().unwrap_or_else(|| match &a.store {
        Some(url) if url.starts_with("postgres") => "postgres".into(),
        _ => "sqlite".into(),
    });
    let run = import::ImportRun {
        spec: ServerSpec { binary: a.server_bin.clone(), data_dir: a.data_dir.clone(), store: a.store.clone() },
        token_command: a.auth.token_command.clone(),
        bearer: a.auth.bearer.clone(),
        bundles: a.bundles.clone(),
        synthetic_patients: a.patients,
        store,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            load_generator_threads: threads,
            note: "server and load generator on the same machine".into(),
        },
        export: a.export,
        dataset: a.dataset.clone(),
    };
    for result in run.run().await? {
        eprintln!("wrote {}", report::write_json(&a.out, &result)?.display());
        println!("{}", serde_json::to_string_pretty(&result.figures)?);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads.max(1)).enable_all().build();
    let result = match runtime {
        Ok(rt) => rt.block_on(async {
            match cli.command {
                Command::Suite(a) => suite(*a, cli.threads).await,
                Command::Http(a) => http(a).await,
                Command::Import(a) => import(a, cli.threads).await,
            }
        }),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fhirgate-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

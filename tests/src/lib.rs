//! Helpers for end-to-end tests: build and start the real `fhirgate` binary on a free port with
//! its own data directory, and talk HTTP to it.
//!
//! Servers start as the README's does: authentication on, the server its own development
//! issuer, the default policy sets. The harness gets a `globalAdmin` token with `fhirgate token`
//! (same environment, same data directory) and sends it on every request, unless the test
//! turns authentication off (`FHIRGATE_AUTH_ENABLED=false`) or sends its own `Authorization`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod azurite;
pub mod bulk;
pub mod entra;
pub mod examples;
pub mod idp;
pub mod oidc;
pub mod otlp;
pub mod replicas;
pub mod smart;
pub mod tls;
pub mod topology;
pub mod upstream;

/// Errors in tests are reported, not unwrapped.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// This crate's directory in the checkout under test. Read at run time (cargo sets it for test
/// processes): a test binary reused from a shared target directory may have been compiled in
/// another checkout, so the compile-time value can name a stale or deleted tree.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The `fhirgate` binary, built once per test process with the same cargo and target directory.
pub fn binary() -> TestResult<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Ok(path) = std::env::var("FHIRGATE_BIN") {
                return Ok(PathBuf::from(path));
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let workspace = manifest_dir().join("..");
            let status = Command::new(cargo)
                // With the in-process Cosmos DB emulator, as every test build of the workspace
                // has it (so this build reuses theirs): `FHIRGATE_E2E_STORE=cosmos` needs it.
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "fhirgate",
                    "--bin",
                    "fhirgate",
                    "--features",
                    "fhirgate-cosmos/emulator",
                ])
                .current_dir(&workspace)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err("building fhirgate failed".to_string());
            }
            // The test executable lives in <target>/debug/deps; the binary in <target>/debug.
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let dir = exe.parent().and_then(Path::parent).ok_or("no target directory")?;
            Ok(dir.join("fhirgate"))
        })
        .clone()
        .map_err(Into::into)
}

/// The official R4 package directory: `FHIR_R4_PACKAGE`, else fetched once by
/// `scripts/fetch-r4-package.sh`.
pub fn r4_package() -> TestResult<PathBuf> {
    if let Ok(dir) = std::env::var("FHIR_R4_PACKAGE") {
        return Ok(PathBuf::from(dir));
    }
    let script = manifest_dir().join("../scripts/fetch-r4-package.sh");
    let out = Command::new("bash").arg(script).output()?;
    if !out.status.success() {
        return Err(format!("fetching the R4 package failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// A free TCP port on loopback.
pub fn free_port() -> TestResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh, empty directory for one test. A run keeps its directories (the server logs in them
/// explain a failure); the first call of the next run removes those of runs that have ended.
pub fn temp_dir(name: &str) -> TestResult<PathBuf> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_dirs_of_ended_runs);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("fhirgate-e2e-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes `fhirgate-e2e-<name>-<pid>-<n>` directories whose test process no longer runs.
fn remove_dirs_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("fhirgate-e2e-") else { continue };
        let mut parts = rest.rsplit('-');
        let (Some(_n), Some(pid)) = (parts.next(), parts.next()) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The store the end-to-end tests run the gateway on: `sqlite` (default), `postgres`
/// (`FHIRGATE_E2E_STORE=postgres`, with `FHIRGATE_TEST_POSTGRES_URL` naming a server, as
/// `scripts/with-postgres.sh` provides), `cosmos` (the SDK's in-process Cosmos DB emulator, one
/// fresh account per server process) or `remote`: every server under test is a front gateway
/// whose only target is a second fhirgate process on SQLite (its own data directory and issuer,
/// reached with a `bearer-file` token of that issuer), so every request, and every policy
/// decision of the front, goes through the remote path ([`topology::remote_backed`]).
pub fn backend() -> String {
    std::env::var("FHIRGATE_E2E_STORE").unwrap_or_else(|_| "sqlite".into())
}

/// `pg_ctl stop|start` on the test PostgreSQL server (`FHIRGATE_TEST_POSTGRES_CTL`, from
/// `scripts/with-postgres.sh`), for tests that take it away under a running gateway.
pub fn pg_ctl(action: &str) -> TestResult {
    let ctl = std::env::var("FHIRGATE_TEST_POSTGRES_CTL")
        .map_err(|_| "needs FHIRGATE_TEST_POSTGRES_CTL: run through scripts/with-postgres.sh")?;
    let out = Command::new(&ctl).arg(action).output()?;
    if !out.status.success() {
        return Err(format!("pg_ctl {action}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// Whether a restarted server finds its data again: not on the in-process Cosmos DB emulator,
/// whose account lives and dies with the server process.
pub fn store_outlives_the_server() -> bool {
    backend() != "cosmos"
}

/// The PostgreSQL store URL for a data directory: one database per directory, created on first
/// use, so a restart on the same directory finds its data again.
pub fn postgres_store_for(data_dir: &Path) -> TestResult<String> {
    let admin = std::env::var("FHIRGATE_TEST_POSTGRES_URL").map_err(
        |_| "FHIRGATE_E2E_STORE=postgres needs FHIRGATE_TEST_POSTGRES_URL (run through scripts/with-postgres.sh)",
    )?;
    let dir_name = data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("e2e");
    let mut db: String =
        dir_name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    db.truncate(60);
    let psql = |sql: &str| Command::new("psql").args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-tAc", sql]).output();
    let exists = psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"))?;
    if !String::from_utf8_lossy(&exists.stdout).contains('1') {
        let created = psql(&format!("CREATE DATABASE {db}"))?;
        if !created.status.success() {
            return Err(format!("creating database {db}: {}", String::from_utf8_lossy(&created.stderr)).into());
        }
    }
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    Ok(format!("{base}/{db}"))
}

/// A running `fhirgate serve`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    agent: ureq::Agent,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer` unless a request brings its own.
    pub token: Option<String>,
    /// With `FHIRGATE_E2E_STORE=remote`: the fhirgate this one forwards everything to (stopped
    /// after this one).
    pub remote: Option<Box<Server>>,
}

/// A response: status, headers and body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> TestResult<Value> {
        serde_json::from_str(&self.body).map_err(|e| format!("body is not JSON ({e}): {}", self.body).into())
    }

    /// The body as an OperationOutcome: checks `resourceType` and returns the issues.
    pub fn outcome_issues(&self) -> TestResult<Vec<Value>> {
        let v = self.json()?;
        if v["resourceType"] != "OperationOutcome" {
            return Err(format!("expected an OperationOutcome, got {}", self.body).into());
        }
        Ok(v["issue"].as_array().cloned().unwrap_or_default())
    }
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start(name: &str) -> TestResult<Self> {
        Self::start_with(&temp_dir(name)?, &[])
    }

    /// Starts a server on `data_dir` with extra environment variables.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> TestResult<Self> {
        let remote_backed = backend() == "remote" && !env.iter().any(|(k, _)| *k == "FHIRGATE_STORE");
        let (remote, env) = if remote_backed {
            let (remote, env) = topology::remote_backed(data_dir, env)?;
            (Some(Box::new(remote)), env)
        } else {
            (None, env.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect())
        };
        let mut server = Self::spawn(data_dir, env)?;
        server.remote = remote;
        Ok(server)
    }

    /// Starts `fhirgate serve` with exactly these variables (and the store of [`backend`]). A port
    /// another process took between [`free_port`] and the server's bind is tried again with another.
    fn spawn(data_dir: &Path, env: Vec<(String, String)>) -> TestResult<Self> {
        let mut attempt = 0;
        loop {
            match Self::spawn_once(data_dir, env.clone()) {
                Err(e) if attempt < 3 && e.to_string().contains("in use") => attempt += 1,
                other => return other,
            }
        }
    }

    fn spawn_once(data_dir: &Path, env: Vec<(String, String)>) -> TestResult<Self> {
        let port = free_port()?;
        let log = data_dir.join(format!("server-{port}.log"));
        let mut command = Command::new(binary()?);
        command
            .arg("serve")
            .env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("FHIRGATE_DATA_DIR", data_dir)
            .env("FHIRGATE_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        // A PostgreSQL store is kept with the variables, so `cli` (e.g. `fhirgate views export`)
        // opens the store this server serves; the Cosmos DB emulator lives in the server's process.
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "FHIRGATE_STORE") {
            match backend().as_str() {
                "postgres" => env.push(("FHIRGATE_STORE".into(), postgres_store_for(data_dir)?)),
                "cosmos" => {
                    command.env("FHIRGATE_STORE", "cosmos:emulator");
                }
                _ => {}
            }
        }
        for (k, v) in &env {
            command.env(k, v);
        }
        let child = command.spawn()?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        let mut server = Self {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            agent,
            log,
            env,
            token: None,
            remote: None,
        };
        server.wait_ready()?;
        let auth_off = server.env.iter().any(|(k, v)| k == "FHIRGATE_AUTH_ENABLED" && v == "false");
        if !auth_off {
            // The development issuer is off when real issuers are configured: no harness token.
            match server.mint(&["--role", "globalAdmin"]) {
                Ok(token) => server.token = Some(token),
                Err(e) if e.to_string().contains("the local issuer is off") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(server)
    }

    /// Runs `fhirgate <args>` with this server's environment; returns its output.
    pub fn cli(&self, args: &[&str]) -> TestResult<std::process::Output> {
        let mut command = Command::new(binary()?);
        command
            .args(args)
            .env("FHIRGATE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("FHIRGATE_DATA_DIR", &self.data_dir)
            .current_dir(manifest_dir().join(".."));
        for (k, v) in &self.env {
            command.env(k, v);
        }
        Ok(command.output()?)
    }

    /// A token from the server's development issuer: `fhirgate token <args>`.
    pub fn mint(&self, args: &[&str]) -> TestResult<String> {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        let out = self.cli(&all)?;
        if !out.status.success() {
            return Err(format!("fhirgate token failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    fn wait_ready(&mut self) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(format!("fhirgate exited early ({status}): {}", self.log_text()).into());
                }
            }
            if let Ok(r) = self.get("health") {
                // Another test's server may answer on the port until this one fails to bind it.
                if r.status == 200 && self.listens_here() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("fhirgate did not become healthy: {}", self.log_text()).into())
    }

    /// Whether the listening socket of this server's port is this server's process's (Linux:
    /// `/proc/net/tcp` and the process's descriptors; elsewhere assumed).
    fn listens_here(&self) -> bool {
        let (Some(child), Ok(table)) = (&self.child, std::fs::read_to_string("/proc/net/tcp")) else { return true };
        let port = format!(":{:04X}", self.port);
        let sockets: Vec<String> = table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let listening = fields.get(1)?.ends_with(&port) && *fields.get(3)? == "0A";
                listening.then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))?
            })
            .collect();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", child.id())) else { return false };
        fds.filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| sockets.iter().any(|s| target.to_str() == Some(s)))
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The FHIR base URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An absolute URL for a path below the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base(), path.trim_start_matches('/'))
    }

    /// Sends a request with optional JSON body and extra headers, with the harness's token.
    pub fn send(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> TestResult<Reply> {
        self.send_as(self.token.as_deref(), method, path, body, headers)
    }

    /// Sends a request with `token` as bearer (none: no `Authorization` header, unless
    /// `headers` has one).
    pub fn send_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> TestResult<Reply> {
        let mut builder = ureq::http::Request::builder().method(method).uri(self.url(path));
        let has_authorization = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if let (Some(token), false) = (token, has_authorization) {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let has_content_type = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_content_type {
            builder = builder.header("Content-Type", "application/fhir+json");
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let response = match body {
            Some(b) => self.agent.run(builder.body(b.to_vec())?)?,
            None => self.agent.run(builder.body(())?)?,
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response.into_body().with_config().limit(256 * 1024 * 1024).read_to_string()?;
        Ok(Reply { status, headers, body })
    }

    pub fn get(&self, path: &str) -> TestResult<Reply> {
        self.send("GET", path, None, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> TestResult<Reply> {
        self.send("GET", path, None, headers)
    }

    pub fn post(&self, path: &str, body: &Value) -> TestResult<Reply> {
        self.send("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    /// PUTs `resource` at its own `Type/id`; anything but 200 or 201 is an error.
    pub fn put_resource(&self, resource: &Value) -> TestResult {
        let path =
            format!("{}/{}", resource["resourceType"].as_str().unwrap_or(""), resource["id"].as_str().unwrap_or(""));
        let reply = self.put(&path, resource)?;
        if reply.status != 200 && reply.status != 201 {
            return Err(format!("PUT {path}: {} {}", reply.status, reply.body).into());
        }
        Ok(())
    }

    pub fn put(&self, path: &str, body: &Value) -> TestResult<Reply> {
        self.send("PUT", path, Some(body.to_string().as_bytes()), &[])
    }

    pub fn delete(&self, path: &str) -> TestResult<Reply> {
        self.send("DELETE", path, None, &[])
    }

    /// Sends raw bytes on a new TCP connection and returns whatever comes back before the server
    /// closes the connection or `wait` passes.
    /// The harness's token goes in as a header after the request line, unless the bytes carry an
    /// `Authorization` header already.
    pub fn raw(&self, bytes: &[u8], close_write: bool, wait: Duration) -> TestResult<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(wait))?;
        let has_authorization = String::from_utf8_lossy(bytes).to_ascii_lowercase().contains("\r\nauthorization:");
        let line_end = bytes.windows(2).position(|w| w == b"\r\n");
        match (&self.token, line_end, has_authorization) {
            (Some(token), Some(end), false) => {
                let mut with = bytes[..end + 2].to_vec();
                with.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
                with.extend_from_slice(&bytes[end + 2..]);
                stream.write_all(&with)?;
            }
            _ => stream.write_all(bytes)?,
        }
        if close_write {
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Sends a signal (e.g. `HUP`) to the server.
    pub fn signal(&self, name: &str) -> TestResult {
        let pid = self.child.as_ref().ok_or("not running")?.id().to_string();
        Command::new("kill").args([format!("-{name}"), pid]).status()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for the process to exit; returns how long it took.
    pub fn terminate(&mut self) -> TestResult<Duration> {
        let Some(mut child) = self.child.take() else { return Err("already stopped".into()) };
        let started = Instant::now();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    return Err(format!("fhirgate exited with {status} after SIGTERM").into());
                }
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("fhirgate did not stop within 30 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `Type/id` of a searchset's entries whose `search.mode` is `mode`, in bundle order.
pub fn entry_keys(bundle: &serde_json::Value, mode: &str) -> Vec<String> {
    let list = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or("?"),
                e["resource"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

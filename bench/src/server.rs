//! Starts and stops the `fhirgate` server under test: a fresh port, the given data directory and
//! store, extra environment from an env file (`KEY=VALUE` lines), output to `server.log` in the
//! data directory; ready when `GET /health` answers 200.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::error::BenchError;
use crate::http::{Call, Connection, Target};

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    pub store: Option<String>,
}

/// A running server.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    /// What the server was told to listen on (`127.0.0.1:PORT`).
    pub listen: String,
}

/// Reads `KEY=VALUE` lines; blank lines and `#` comments are skipped, `export ` is allowed.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(BenchError::file(path))?;
    let mut vars = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| BenchError::Usage(format!("`{line}` in `{}` is not KEY=VALUE", path.display())))?;
        let value = value.trim().trim_matches('"').trim_matches('\'');
        vars.insert(key.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

/// Runs `cmd` with `sh -c`, `env` added to the environment, and returns its standard output,
/// trimmed: the bearer token of `--token-command`.
pub fn token_from_command(cmd: &str, env: &BTreeMap<String, String>) -> Result<String, BenchError> {
    let out = std::process::Command::new("sh").arg("-c").arg(cmd).envs(env).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(BenchError::Usage(format!("--token-command `{cmd}` failed: {}", out.status)));
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if token.is_empty() {
        return Err(BenchError::Usage(format!("--token-command `{cmd}` printed nothing")));
    }
    Ok(token)
}

/// The environment of `--token-command` for a started server: the server's own environment plus
/// where it listens and keeps its data, so that `fhirgate token` signs with that server's local
/// issuer (whose issuer URL is `http://<listen>`, and whose key is in the data directory).
pub fn token_env(spec: &ServerSpec, server_env: &BTreeMap<String, String>, listen: &str) -> BTreeMap<String, String> {
    let mut env = server_env.clone();
    env.insert("FHIRGATE_LISTEN".into(), listen.into());
    env.insert("FHIRGATE_DATA_DIR".into(), spec.data_dir.display().to_string());
    if let Some(store) = &spec.store {
        env.insert("FHIRGATE_STORE".into(), store.clone());
    }
    env
}

fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts the server with `env` added to its environment and waits until it is healthy.
    pub async fn start(spec: &ServerSpec, env: &BTreeMap<String, String>) -> Result<Self, BenchError> {
        std::fs::create_dir_all(&spec.data_dir).map_err(BenchError::file(&spec.data_dir))?;
        let log_path = spec.data_dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(BenchError::file(&log_path))?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(&spec.binary);
        command.arg("serve").arg("--listen").arg(&listen).arg("--data-dir").arg(&spec.data_dir);
        if let Some(store) = &spec.store {
            command.arg("--store").arg(store);
        }
        command.envs(env).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
        let child = command.spawn().map_err(BenchError::file(&spec.binary))?;
        let pid = child.id().ok_or_else(|| BenchError::Server("server exited at once".into()))?;
        let server = Self { child, pid, base_url: format!("http://{listen}/"), listen };
        server.wait_healthy(Duration::from_secs(120), &log_path).await?;
        Ok(server)
    }

    async fn wait_healthy(&self, limit: Duration, log: &Path) -> Result<(), BenchError> {
        let mut conn = Connection::new(Target::parse(&self.base_url, None)?);
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(reply) = conn.send(&Call::get("health")).await {
                if reply.status == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(BenchError::Server(format!("not healthy after {limit:?}; see `{}`", log.display())))
    }

    /// Stops the server: SIGTERM (through `kill`, keeping the crate free of unsafe code), then
    /// SIGKILL after 10 s.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::{ServerSpec, token_env, token_from_command};

    #[test]
    fn the_token_command_sees_the_started_server() {
        let spec = ServerSpec { binary: PathBuf::from("fhirgate"), data_dir: PathBuf::from("/tmp/d"), store: None };
        let server_env = BTreeMap::from([("FHIRGATE_AUTH_ENABLED".to_string(), "false".to_string())]);
        let env = token_env(&spec, &server_env, "127.0.0.1:4321");
        let cmd = r#"echo "  $FHIRGATE_LISTEN $FHIRGATE_DATA_DIR $FHIRGATE_AUTH_ENABLED ${FHIRGATE_STORE:-none}  ""#;
        assert_eq!(token_from_command(cmd, &env).ok().as_deref(), Some("127.0.0.1:4321 /tmp/d false none"));
    }

    #[test]
    fn a_failing_or_silent_token_command_is_an_error() {
        assert!(token_from_command("exit 3", &BTreeMap::new()).is_err());
        assert!(token_from_command("true", &BTreeMap::new()).is_err());
    }
}

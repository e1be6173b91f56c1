//! Several `fhirgate serve` processes on one PostgreSQL database, as replicas behind a load
//! balancer run: one store, one paging key and one issuer key (files in a shared directory, as a
//! mounted secret), one public base URL, and a client that sends each request to another
//! replica ([`Replicas::path_of`] turns any link into a path every replica serves).

use std::path::PathBuf;

use crate::{Server, TestResult, backend, postgres_store_for, temp_dir};

/// The public base URL every replica writes into links and tokens (a load balancer's).
pub const PUBLIC_BASE: &str = "http://fhirgate-replicas.test";

/// Replicas on one store, `None` in a killed one's place.
pub struct Replicas {
    pub servers: Vec<Option<Server>>,
    /// The directory of the shared key files.
    pub shared: PathBuf,
}

impl Replicas {
    /// `n` replicas on one fresh PostgreSQL database; `None` (the caller says why it skips)
    /// unless the end-to-end tests run on PostgreSQL (`FHIRGATE_E2E_STORE=postgres`).
    pub fn start(name: &str, n: usize) -> TestResult<Option<Self>> {
        Self::start_with(name, n, |_| Ok(None))
    }

    /// [`Self::start`], each replica with the configuration file `config` writes in the shared
    /// directory (given it) when it writes one.
    pub fn start_with(
        name: &str,
        n: usize,
        config: impl FnOnce(&std::path::Path) -> TestResult<Option<PathBuf>>,
    ) -> TestResult<Option<Self>> {
        if backend() != "postgres" {
            return Ok(None);
        }
        let shared = temp_dir(&format!("{name}-shared"))?;
        let config = config(&shared)?.map(|path| path.display().to_string());
        let store = postgres_store_for(&shared)?;
        let paging = shared.join("paging.key").display().to_string();
        let issuer = shared.join("issuer-key.p8").display().to_string();
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            let dir = temp_dir(&format!("{name}-{i}"))?;
            let mut env = vec![
                ("FHIRGATE_STORE", store.as_str()),
                ("FHIRGATE_FEDERATION_PAGING_KEY_FILE", paging.as_str()),
                ("FHIRGATE_AUTH_LOCAL_ISSUER_KEY_FILE", issuer.as_str()),
                ("FHIRGATE_SERVER_BASE_URL", PUBLIC_BASE),
            ];
            if let Some(config) = &config {
                env.push(("FHIRGATE_CONFIG", config.as_str()));
            }
            servers.push(Some(Server::start_with(&dir, &env)?));
        }
        Ok(Some(Self { servers, shared }))
    }

    /// The `i`-th live replica, counting round the live ones (a client's round robin).
    pub fn nth(&self, i: usize) -> TestResult<&Server> {
        let live: Vec<&Server> = self.servers.iter().flatten().collect();
        if live.is_empty() {
            return Err("no replica left".into());
        }
        Ok(live[i % live.len()])
    }

    /// Kills replica `i` (SIGKILL, no graceful end) and returns its port.
    pub fn kill(&mut self, i: usize) -> TestResult<u16> {
        let server = self.servers.get_mut(i).and_then(Option::take).ok_or("no such live replica")?;
        let port = server.port;
        drop(server);
        Ok(port)
    }

    /// The path below the base of a link any replica wrote (`http://public/Patient?_page=..`).
    pub fn path_of(url: &str) -> String {
        url.strip_prefix(PUBLIC_BASE).unwrap_or(url).trim_start_matches('/').to_owned()
    }
}

/// Says why a replica test did not run.
pub fn skipped(test: &str) {
    println!("SKIP {test}: the replica tests need PostgreSQL (FHIRGATE_E2E_STORE=postgres)");
}

//! Two-process gateway topologies: a "remote" fhirgate (its own data directory and issuer, or an
//! [`Idp`] it trusts) and a "front" fhirgate whose configuration lists `[[targets]]` — local
//! SQLite stores and remote FHIR servers (`base_url = http://127.0.0.1:PORT`) — and
//! `[[routes]]`. The TOML is written as an operator would (`FHIRGATE_CONFIG`), from small pieces
//! a test combines: [`local_target`], [`remote_target`], [`route`], [`trust`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::idp::{Idp, Key};
use crate::{Server, TestResult, temp_dir};

/// The audience of tokens from a shared [`Idp`].
pub const AUDIENCE: &str = "api://fhirgate-e2e";

/// How the front authenticates to a remote target.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No `Authorization` header.
    None,
    /// The caller's own token.
    Passthrough,
    /// A static token read from this file.
    BearerFile(PathBuf),
    /// The gateway's own Entra ID token (client secret) from a token endpoint at `authority`.
    Azure { authority: String, tenant: String, client_id: String, secret_file: PathBuf, scope: String },
}

/// A TOML string literal.
pub fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// A list of TOML strings.
pub fn list(items: &[&str]) -> String {
    format!("[{}]", items.iter().map(|i| quoted(i)).collect::<Vec<_>>().join(", "))
}

/// A `[[targets]]` entry for a local SQLite store in `dir`.
pub fn local_target(id: &str, dir: &Path) -> String {
    let store = format!("sqlite:{}", dir.join(format!("{id}.db")).display());
    format!("\n[[targets]]\nid = {}\nstore = {}\n", quoted(id), quoted(&store))
}

/// A `[[targets]]` entry for a remote FHIR server at `base_url`; `extra` is more TOML lines
/// of the entry (`addresses = [...]`, `read_timeout_ms = 500`, ...).
pub fn remote_target(id: &str, base_url: &str, credentials: &Credentials, extra: &str) -> String {
    let mut toml = format!("\n[[targets]]\nid = {}\nbase_url = {}\n", quoted(id), quoted(base_url));
    match credentials {
        Credentials::None => toml.push_str("credentials = \"none\"\n"),
        Credentials::Passthrough => toml.push_str("credentials = \"passthrough\"\n"),
        Credentials::BearerFile(file) => {
            let _ =
                writeln!(toml, "credentials = \"bearer-file\"\nbearer_file = {}", quoted(&file.display().to_string()));
        }
        Credentials::Azure { authority, tenant, client_id, secret_file, scope } => {
            let _ = writeln!(
                toml,
                "credentials = \"azure\"\nazure_auth = \"client-secret\"\nazure_authority = {}\nazure_tenant_id = {}\n\
                 azure_client_id = {}\nazure_client_secret_file = {}\nazure_scope = {}",
                quoted(authority),
                quoted(tenant),
                quoted(client_id),
                quoted(&secret_file.display().to_string()),
                quoted(scope)
            );
        }
    }
    toml.push_str(extra);
    toml.push('\n');
    toml
}

/// A `[[routes]]` entry; `extra` is more TOML lines (`types = [...]`, `id_prefixes = {...}`, ...).
pub fn route(id: &str, prefix: &str, targets: &[&str], extra: &str) -> String {
    format!("\n[[routes]]\nid = {}\nprefix = {}\ntargets = {}\n{extra}\n", quoted(id), quoted(prefix), list(targets))
}

/// `[auth]` trusting `idp` for [`AUDIENCE`] (the local issuer then off).
pub fn trust(idp: &Idp) -> String {
    format!("\n[[auth.issuers]]\nissuer = {}\naudiences = [{}]\n", quoted(&idp.base), quoted(AUDIENCE))
}

/// Starts a fhirgate on `dir` with the configuration `toml` (written to `dir/fhirgate.toml`) and
/// extra variables. A local store of its own on SQLite in `dir` (not `FHIRGATE_E2E_STORE`: the
/// topologies are about routing, the stores have their own suites).
pub fn start(dir: &Path, toml: &str, env: &[(&str, &str)]) -> TestResult<Server> {
    let config = dir.join("fhirgate.toml");
    std::fs::write(&config, toml)?;
    let store = format!("sqlite:{}", dir.join("fhirgate.db").display());
    let mut all = vec![("FHIRGATE_CONFIG", config.to_str().ok_or("path")?), ("FHIRGATE_STORE", store.as_str())];
    all.extend_from_slice(env);
    Server::start_with(dir, &all)
}

/// A remote fhirgate with its own data directory and development issuer, and a file holding a
/// `globalAdmin` token of that issuer (for a front's `bearer-file` target).
pub struct RemoteFhirgate {
    pub server: Server,
    pub token_file: PathBuf,
}

impl RemoteFhirgate {
    /// Starts one on a fresh directory named after `name`.
    pub fn start(name: &str) -> TestResult<Self> {
        Self::start_in(&temp_dir(name)?, &[])
    }

    /// Starts one on `dir` (SQLite in `dir`), with extra variables.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> TestResult<Self> {
        let server = start(dir, "", env)?;
        let token_file = dir.join("bearer-token");
        std::fs::write(&token_file, server.token.as_deref().ok_or("the remote has no local issuer")?)?;
        Ok(Self { server, token_file })
    }

    /// Its base URL, as a front's `base_url`.
    pub fn base(&self) -> String {
        self.server.base()
    }

    /// The `bearer-file` credentials for it.
    pub fn credentials(&self) -> Credentials {
        Credentials::BearerFile(self.token_file.clone())
    }
}

/// A fhirgate trusting only `idp` (no local issuer), on `dir`, with extra configuration.
pub fn start_trusting(dir: &Path, idp: &Idp, toml: &str, env: &[(&str, &str)]) -> TestResult<Server> {
    start(dir, &format!("{}{toml}", trust(idp)), env)
}

/// A token from `key` (published by `idp`) with the given app roles and extra claims.
pub fn idp_token(idp: &Idp, key: &Key, roles: &[&str], extra: serde_json::Value) -> TestResult<String> {
    let mut claims = idp.claims(AUDIENCE, extra);
    claims["roles"] = json!(roles);
    key.sign(&claims)
}

/// The `[fhir]` settings (FHIR behaviour, which the remote's engine has), by variable:
/// `FHIRGATE_FHIR_<KEY>` or the short `FHIRGATE_<KEY>`.
fn is_fhir_setting(variable: &str) -> bool {
    const KEYS: [&str; 14] = [
        "UPDATE_CREATE",
        "VERSION_UNCHANGED_UPDATES",
        "DEFAULT_PAGE_SIZE",
        "MAX_PAGE_SIZE",
        "MAX_BUNDLE_ENTRIES",
        "MAX_CONDITIONAL_DELETE",
        "SEARCH_MAX_RESULTS",
        "SEARCH_TIMEOUT_SECONDS",
        "SEARCH_PAGE_TTL_SECONDS",
        "MAX_CHAIN_DEPTH",
        "MAX_SEARCH_PARAMS",
        "MAX_SEARCH_BYTES",
        "FHIRPATH_MAX_STEPS",
        "FHIRPATH_TIMEOUT_MS",
    ];
    let key = variable.strip_prefix("FHIRGATE_FHIR_").or_else(|| variable.strip_prefix("FHIRGATE_"));
    key.is_some_and(|k| KEYS.contains(&k))
}

/// `FHIRGATE_E2E_STORE=remote`: starts the remote fhirgate for a server under test on
/// `data_dir` (in `data_dir/remote-target`, SQLite, default policies, the test's `[fhir]` settings so FHIR
/// behaviour is the one asked for, and its body limit) and returns it with the
/// variables the front starts with: the test's, and a `FHIRGATE_CONFIG` that adds (to the test's
/// own file, if any) one `bearer-file` target `remote` on it and one route over it.
pub fn remote_backed(data_dir: &Path, env: &[(&str, &str)]) -> TestResult<(Server, Vec<(String, String)>)> {
    let remote_dir = data_dir.join("remote-target");
    std::fs::create_dir_all(&remote_dir)?;
    let store = format!("sqlite:{}", remote_dir.join("remote.db").display());
    let mut remote_env: Vec<(&str, &str)> = vec![("FHIRGATE_STORE", store.as_str())];
    remote_env.extend(env.iter().copied().filter(|(k, _)| is_fhir_setting(k) || *k == "FHIRGATE_MAX_BODY_BYTES"));
    let remote = Server::start_with(&remote_dir, &remote_env)?;
    let token_file = remote_dir.join("bearer-token");
    std::fs::write(&token_file, remote.token.as_deref().ok_or("the remote has no local issuer")?)?;

    let mut toml = match env.iter().find(|(k, _)| *k == "FHIRGATE_CONFIG") {
        Some((_, file)) => std::fs::read_to_string(file)?,
        None => String::new(),
    };
    // A generous connect timeout: every test of a file starts its pair of debug-built processes
    // at once, and on two busy cores the front's runtime can be starved past the default 2 s
    // (seen once as a 503 "cannot be reached" on a loopback connect).
    // A test that gives its requests longer (the whole R4 package: a 35 MB Bundle takes the
    // remote's debug build tens of seconds to store) gives the remote's answers as long.
    let mut patience = "connect_timeout_ms = 20000\n".to_owned();
    if let Some((_, seconds)) = env.iter().find(|(k, _)| *k == "FHIRGATE_REQUEST_TIMEOUT_SECONDS") {
        let millis = seconds.parse::<u64>().map_err(|e| format!("FHIRGATE_REQUEST_TIMEOUT_SECONDS: {e}"))? * 1000;
        patience.push_str(&format!("read_timeout_ms = {millis}\ntotal_timeout_ms = {millis}\n"));
    }
    toml.push_str(&remote_target("remote", &remote.base(), &Credentials::BearerFile(token_file), &patience));
    toml.push_str(&route("default", "", &["remote"], ""));
    let config = data_dir.join(format!("front-{}.toml", remote.port));
    std::fs::write(&config, toml)?;
    let mut front_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| *k != "FHIRGATE_CONFIG")
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    front_env.push(("FHIRGATE_CONFIG".into(), config.display().to_string()));
    Ok((remote, front_env))
}

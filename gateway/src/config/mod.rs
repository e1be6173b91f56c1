//! The one typed configuration of the gateway: defaults, then a TOML file, then `FHIRGATE_*`
//! environment variables, then command-line flags. Each setting is declared once, as a field
//! here; its TOML key and its variables derive from it ([`layers`]). The defaults of `[fhir]`
//! are the engine's. `deploy/fhirgate.example.toml` documents every setting.

mod blob;
mod export;
mod import;
mod layers;
mod routing;
mod smart;
mod targets;
mod traces;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fhirgate_engine::EngineConfig;
use serde::{Deserialize, Serialize};

pub use blob::BlobConfig;
pub use export::ExportConfig;
pub use import::ImportConfig;
pub use layers::Sources;
pub use routing::Kind;
pub use smart::{CorsConfig, SmartClient, SmartConfig, SmartProxyConfig};
pub use targets::{RouteConfig, TargetConfig};
pub use traces::TracingConfig;

use crate::error::GatewayError;

/// All settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub fhir: FhirConfig,
    pub auth: AuthConfig,
    pub policy: PolicyConfig,
    pub log: LogConfig,
    /// OpenTelemetry traces (off by default).
    pub tracing: TracingConfig,
    pub metrics: MetricsConfig,
    /// Paging of federated and proxied searches.
    pub federation: FederationConfig,
    /// Cross-origin requests from browser apps.
    pub cors: CorsConfig,
    /// SMART App Launch: discovery and the authorization proxy.
    pub smart: SmartConfig,
    /// Bulk `$export` jobs.
    pub export: ExportConfig,
    /// `$import`: allowed input directories, URL prefixes and Blob containers.
    pub import: ImportConfig,
    /// The Azure Blob Storage account of bulk jobs (export output, import input).
    pub blob: BlobConfig,
    /// `[[targets]]`: the FHIR servers behind the gateway (TOML only). None: one local target
    /// `default` on `store.url`.
    pub targets: Vec<TargetConfig>,
    /// `[[routes]]`: which requests go to which targets (TOML only). None: one route `default`,
    /// prefix `""`, every target.
    pub routes: Vec<RouteConfig>,
}

/// `[federation]`: the page links of searches answered by a remote or several targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// The key (32 bytes) sealing the page links of every search (local, remote and federated);
    /// default `<data_dir>/paging.key`, created (mode 0600) on first start. Replicas share it
    /// (a mounted secret), so any of them serves the links of the others.
    pub paging_key_file: Option<PathBuf>,
    /// Earlier paging keys, still accepted for opening links (never for sealing): to rotate,
    /// move the old key here on every replica, then put a new key in `paging_key_file`; drop
    /// the old one once its links have expired (`page_ttl_seconds`, `fhir.search_page_ttl_seconds`).
    pub retired_paging_key_files: Vec<PathBuf>,
    /// How long a federated search's page links stay valid, in seconds.
    pub page_ttl_seconds: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self { paging_key_file: None, retired_paging_key_files: Vec::new(), page_ttl_seconds: 600 }
    }
}

/// The HTTP front end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Public base URL used in links and `Location`. Unset: `http://<Host>` when the request's
    /// `Host` is one of `allowed_hosts` (or a loopback form of the listen address), else
    /// `http://<listen>`.
    pub base_url: Option<String>,
    /// `Host` header values (`name` or `name:port`) trusted to build links when `base_url` is
    /// unset, besides the listen address and its `localhost`/`127.0.0.1`/`[::1]` forms.
    pub allowed_hosts: Vec<String>,
    /// Worker threads of the server.
    pub threads: usize,
    /// Whether idle worker threads take queued work from busy ones (tokio's work-stealing
    /// runtime, the default). Off: each thread is a runtime of its own, and a connection, its
    /// requests and their exchanges with remote targets stay on the thread that accepted it
    /// (fewer thread wake-ups per request; a long job on one thread delays that thread's
    /// connections). Measured within noise of each other (bench/README.md).
    pub work_stealing: bool,
    /// Largest accepted request body, in bytes (413 beyond it).
    pub max_body_bytes: usize,
    /// Time allowed to receive a request body, and to process a request, in seconds.
    pub request_timeout_seconds: u64,
    /// Seconds to finish in-flight requests after SIGTERM.
    pub shutdown_grace_seconds: u64,
}

/// Where resources are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Store URL (`sqlite:PATH` or `postgres://USER@HOST:PORT/DB`); default
    /// `sqlite:<data_dir>/fhirgate.db`.
    pub url: Option<String>,
    /// Directory of the default SQLite store.
    pub data_dir: PathBuf,
    /// PostgreSQL: connections in the pool.
    pub pool_size: u32,
    /// PostgreSQL: `statement_timeout` in seconds (0 leaves the server's setting).
    pub statement_timeout_seconds: u64,
    /// PostgreSQL: a file holding the password (trailing newline ignored), so it stays out of
    /// the URL, this file and the logs.
    pub password_file: Option<PathBuf>,
    /// Cosmos DB (store URL `cosmos:https://ACCOUNT.documents.azure.com:443/`).
    pub cosmos: CosmosConfig,
}

/// The Cosmos DB store: how it authenticates and where its documents live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CosmosConfig {
    /// `key` (account key from `key_file`), `managed-identity`, `workload-identity`,
    /// `client-secret` (with `tenant_id`, `client_id`, `client_secret_file`) or `developer-tools`.
    pub auth: String,
    /// A file holding the account key (trailing newline ignored).
    pub key_file: Option<PathBuf>,
    /// Entra ID tenant, for `client-secret`.
    pub tenant_id: Option<String>,
    /// Application (client) id: for `client-secret`, or a user-assigned managed identity.
    pub client_id: Option<String>,
    /// A file holding the client secret, for `client-secret`.
    pub client_secret_file: Option<PathBuf>,
    pub database: String,
    pub container: String,
    /// Partition key value of this store's documents (several stores may share a container).
    pub partition: String,
    /// Create the database and container on first start (needs control-plane rights).
    pub create_if_missing: bool,
    /// Throttled (429) requests are retried after the server's `Retry-After` at most this often...
    pub throttle_retries: u32,
    /// ...and for at most this long in all, then answered 503 with `Retry-After`.
    pub throttle_max_wait_seconds: u64,
    /// `auto` (what the container holds: a new store is `partitioned`, an existing `single`
    /// one stays so, with a warning, until migrated), `single` (every document of the store in
    /// one logical partition: at most 20 GB and 10,000 RU/s, 49 resources per transaction) or
    /// `partitioned` (a partition per resource, cross-partition transactions;
    /// `fhirgate store migrate-cosmos` copies a `single` store).
    pub layout: String,
    /// `partitioned`: how long a transaction may stay uncommitted before others may abort it.
    pub tx_lease_seconds: u64,
    /// The most resource keys one search may carry from its sub-queries (clauses, chains,
    /// `_has`, compartments) into its queries; a broader search answers 400.
    pub max_search_keys: usize,
    /// How a search's clauses are written: `key-set` (a query per clause value for the keys it
    /// matches; what the emulator runs) or `exists` (`EXISTS` sub-queries, one query per search;
    /// the real service only: the gateway does not start where they are refused).
    pub search_queries: String,
}

/// FHIR behaviour choices: the engine's settings ([`EngineConfig`]), durations in the units of
/// the file. Defaults are the engine's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FhirConfig {
    /// `PUT [type]/[id]` may create a resource with a client-chosen id.
    pub update_create: bool,
    /// An update that changes nothing still makes a new version.
    pub version_unchanged_updates: bool,
    /// Default page size of bundles.
    pub default_page_size: u32,
    /// Largest page size a client may ask for.
    pub max_page_size: u32,
    /// Most entries of a batch or transaction bundle.
    pub max_bundle_entries: u32,
    /// Most resources one conditional delete may remove (`_count=N`).
    pub max_conditional_delete: u32,
    /// The largest chunk of matches a search reads at once (it pages on after the last key).
    pub search_max_results: u32,
    /// How long a search may run before it ends with a timeout OperationOutcome.
    pub search_timeout_seconds: u64,
    /// How long a search's page links stay valid after their last use.
    pub search_page_ttl_seconds: u64,
    /// Chain (`subject.name`) and reverse chain (`_has`) links one search parameter may have,
    /// in searches, conditional criteria and bundle entries (at most 32); deeper is a 400.
    pub max_chain_depth: u32,
    /// Parameters one search may have (query string and `_search` form together).
    pub max_search_params: u32,
    /// Bytes of one search's decoded parameter names and values.
    pub max_search_bytes: u32,
    /// Work one request's FHIRPath (the paths of a FHIRPath Patch) may do, in steps.
    pub fhirpath_max_steps: u64,
    /// Time one request's FHIRPath may take, in milliseconds.
    pub fhirpath_timeout_ms: u64,
    /// Most rows one `$viewdefinition-run` answers (more is a 422 unless `_limit` asks for
    /// fewer; a whole store goes through `fhirgate views export`).
    pub view_max_rows: u64,
    /// A directory of FHIR packages (npm-style `.tgz` files or unpacked package folders) whose
    /// StructureDefinitions, ValueSets, CodeSystems, SearchParameters and CapabilityStatements
    /// are loaded at start; a package that cannot be read stops the start.
    pub packages: Option<PathBuf>,
    /// Resource type → the profile (canonical URL) every resource of that type must conform to
    /// on writes; listed as `supportedProfile` in the CapabilityStatement.
    pub required_profiles: BTreeMap<String, String>,
    /// A string that looks like it holds HTML (`<script>`, `<img ...>`) is an error on writes and
    /// `$validate` rather than a warning (the reference validator's "security checks").
    pub security_checks: bool,
    /// An HTML tag in a `markdown` element is an error rather than a warning (R4's markdown is
    /// CommonMark, whose raw HTML the specification discourages).
    pub no_html_in_markdown: bool,
    /// `$validate` requires the target of every relative reference (`Patient/1`) to exist: in
    /// the Bundle or Parameters validated, or readable by the caller (a target hidden from the
    /// caller counts as missing), as the reference validator's `CHECK_EXISTS_AND_TYPE`. Writes
    /// never read targets.
    pub references_must_exist: bool,
    /// Bundle entry → the profile (canonical URL) that entry's resource must conform to, checked
    /// whenever a Bundle is validated (written, or `$validate`): `Type` (every entry of that
    /// type), `Type:n` (the n-th entry of that type, from 0) or `n` (the n-th entry).
    pub bundle_rules: BTreeMap<String, String>,
}

/// Authentication: who may call, with which tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Authentication and authorization on. Off must be chosen explicitly; it is logged as a
    /// warning at start.
    pub enabled: bool,
    /// The server is its own token issuer (development): a signing key kept in the data
    /// directory, discovery at `/.well-known/openid-configuration`, tokens from `fhirgate token`.
    /// Unset: on when no `[[auth.issuers]]` is configured, off as soon as one is; `true` keeps it
    /// beside real issuers (logged as a warning at start). See [`Config::local_issuer_on`].
    pub local_issuer: Option<bool>,
    /// The local issuer's signing key (PKCS#8 P-256); default `<data_dir>/local-issuer-key.p8`,
    /// created (mode 0600) on first start. Replicas share it (a mounted secret), with the same
    /// `server.base_url` (the issuer), so each accepts the tokens of the others.
    pub local_issuer_key_file: Option<PathBuf>,
    /// Audience of the local issuer's tokens.
    pub local_audience: String,
    /// `GET /metadata` (the CapabilityStatement) answers without a token.
    pub anonymous_metadata: bool,
    /// Tolerated clock difference for `exp` and `nbf`, in seconds.
    pub clock_skew_seconds: u64,
    /// Longest accepted token, in bytes.
    pub max_token_bytes: usize,
    /// The claim holding the patient in context (SMART `patient`).
    pub patient_claim: String,
    /// Least time between two key refreshes of one issuer caused by an unknown `kid`.
    pub jwks_min_refresh_seconds: u64,
    /// Keys are fetched again after this long.
    pub jwks_max_age_seconds: u64,
    /// Verified tokens kept (until they expire).
    pub token_cache_size: u64,
    /// Trusted external issuers.
    pub issuers: Vec<IssuerConfig>,
}

/// One trusted token issuer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss`, or an Entra multi-tenant form with `{tenantid}`:
    /// `https://login.microsoftonline.com/{tenantid}/v2.0` or `https://sts.windows.net/{tenantid}/`.
    pub issuer: String,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Accepted `tid` values. A multi-tenant (`{tenantid}`) issuer needs at least one, or
    /// `allow_any_tenant`; for an exact issuer the list is optional.
    pub allowed_tenants: Vec<String>,
    /// A multi-tenant issuer with no `allowed_tenants` accepts every Entra tenant (whose admins
    /// control their own `roles` claim). Must be chosen explicitly; logged as a warning at start.
    pub allow_any_tenant: bool,
    /// OIDC discovery document; default `<issuer>/.well-known/openid-configuration`
    /// (for the Entra multi-tenant forms, the `common` endpoint).
    pub discovery_url: Option<String>,
}

/// Authorization: Cedar policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Shipped policy sets (`policies/sets/<name>`): `microsoft-roles`, `smart`, `examples`.
    pub sets: Vec<String>,
    /// A directory of `*.cedar` files, loaded with the sets and reloaded when a file changes
    /// or on SIGHUP.
    pub dir: Option<PathBuf>,
    /// How often the directory is checked for changes, in seconds.
    pub reload_seconds: u64,
    /// A denied read answers 404 instead of 403, hiding that the resource exists (default).
    pub deny_reads_as_not_found: bool,
    /// Each authorization audit event also carries the Cedar request it was decided on
    /// (`cedar`: principal and resource entities with their attributes, context), so that
    /// `fhirgate policy impact` can replay it. Off by default: it makes events several times
    /// larger and puts resource attributes (patient ids, codes, labels) in the log.
    pub audit_inputs: bool,
}

/// `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `GET /metrics` answers without a token. Off by default: the caller needs a token the
    /// policies allow the action `operation` with `context.operation == "metrics"` on the
    /// resource `/` (the `globalAdmin` role of the shipped sets).
    pub public: bool,
    /// A listen address of its own for `GET /metrics` (e.g. `0.0.0.0:9464`): the main listener
    /// then answers 404 to `/metrics`, and the metrics listener answers nothing else. The same
    /// rule applies there (a permitted token unless `public`): keep it off public networks.
    pub listen: Option<String>,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `fhirgate=debug,info`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            base_url: None,
            allowed_hosts: Vec::new(),
            threads: 2,
            work_stealing: true,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 2,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("./data"),
            pool_size: 10,
            statement_timeout_seconds: 30,
            password_file: None,
            cosmos: CosmosConfig::default(),
        }
    }
}

impl Default for CosmosConfig {
    fn default() -> Self {
        Self {
            auth: "managed-identity".to_owned(),
            key_file: None,
            tenant_id: None,
            client_id: None,
            client_secret_file: None,
            database: "fhir".to_owned(),
            container: "resources".to_owned(),
            partition: "fhir".to_owned(),
            create_if_missing: false,
            throttle_retries: 9,
            throttle_max_wait_seconds: 30,
            layout: "auto".to_owned(),
            tx_lease_seconds: 30,
            max_search_keys: fhirgate_cosmos::DEFAULT_MAX_SEARCH_KEYS,
            search_queries: "key-set".to_owned(),
        }
    }
}

/// The engine's defaults, in the units of the file.
impl Default for FhirConfig {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            update_create: engine.update_create,
            version_unchanged_updates: engine.version_unchanged_updates,
            default_page_size: engine.default_page_size,
            max_page_size: engine.max_page_size,
            max_bundle_entries: engine.max_bundle_entries,
            max_conditional_delete: engine.max_conditional_delete,
            search_max_results: engine.search_max_results,
            search_timeout_seconds: engine.search_timeout.as_secs(),
            search_page_ttl_seconds: engine.search_page_ttl.as_secs(),
            max_chain_depth: engine.max_chain_depth,
            max_search_params: engine.max_search_params,
            max_search_bytes: engine.max_search_bytes,
            fhirpath_max_steps: engine.fhirpath_max_steps,
            fhirpath_timeout_ms: u64::try_from(engine.fhirpath_timeout.as_millis()).unwrap_or(u64::MAX),
            view_max_rows: engine.view_max_rows,
            packages: None,
            required_profiles: BTreeMap::new(),
            security_checks: false,
            no_html_in_markdown: false,
            references_must_exist: false,
            bundle_rules: BTreeMap::new(),
        }
    }
}

impl FhirConfig {
    /// The engine's configuration: these settings over the engine's defaults (clock, ids, ...).
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            update_create: self.update_create,
            version_unchanged_updates: self.version_unchanged_updates,
            default_page_size: self.default_page_size,
            max_page_size: self.max_page_size,
            max_bundle_entries: self.max_bundle_entries,
            max_conditional_delete: self.max_conditional_delete,
            search_max_results: self.search_max_results,
            search_timeout: Duration::from_secs(self.search_timeout_seconds),
            search_page_ttl: Duration::from_secs(self.search_page_ttl_seconds),
            max_chain_depth: self.max_chain_depth,
            max_search_params: self.max_search_params,
            max_search_bytes: self.max_search_bytes,
            fhirpath_max_steps: self.fhirpath_max_steps,
            fhirpath_timeout: Duration::from_millis(self.fhirpath_timeout_ms),
            view_max_rows: self.view_max_rows,
            ..EngineConfig::default()
        }
    }

    /// The profiles of `packages` and `required_profiles`: an unreadable package, or a required
    /// profile that names no known type, is a configuration error.
    pub fn profiles(&self) -> Result<fhirgate_engine::profiles::registry::Registry, GatewayError> {
        use fhirgate_engine::profiles::{Conformance, package, registry::Registry};
        let mut conformance = Conformance::new();
        if let Some(dir) = &self.packages {
            let count = package::load_dir(dir, &mut conformance)
                .map_err(|e| GatewayError::Config(format!("`fhir.packages`: {e}")))?;
            let loaded: Vec<String> = conformance.counts().iter().map(|(t, n)| format!("{n} {t}")).collect();
            tracing::info!(packages = count, dir = %dir.display(), "FHIR packages loaded: {}", loaded.join(", "));
        }
        for resource_type in self.required_profiles.keys() {
            if !fhirgate_engine::definitions::Definitions::r4().resource_types().any(|t| t == resource_type) {
                return Err(GatewayError::Config(format!(
                    "`fhir.required_profiles`: `{resource_type}` is not an R4 resource type"
                )));
            }
        }
        for rule in self.bundle_rules.keys() {
            if !bundle_rule_is_valid(rule) {
                return Err(GatewayError::Config(format!(
                    "`fhir.bundle_rules`: `{rule}` is neither `Type`, `Type:n` nor `n` (Type an R4 resource type)"
                )));
            }
        }
        conformance.security_checks = self.security_checks;
        conformance.no_html_in_markdown = self.no_html_in_markdown;
        conformance.references_must_exist = self.references_must_exist;
        conformance.bundle_rules = self.bundle_rules.iter().map(|(r, u)| (r.clone(), u.clone())).collect();
        Ok(Registry::new(conformance, self.required_profiles.clone()))
    }
}

/// Whether `rule` is a bundle rule: `Type`, `Type:n` or `n` (Type an R4 resource type).
fn bundle_rule_is_valid(rule: &str) -> bool {
    let is_type = |t: &str| fhirgate_engine::definitions::Definitions::r4().resource_types().any(|r| r == t);
    match rule.split_once(':') {
        Some((t, n)) => is_type(t) && n.parse::<usize>().is_ok(),
        None => rule.parse::<usize>().is_ok() || is_type(rule),
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            local_issuer: None,
            local_issuer_key_file: None,
            local_audience: "fhirgate".into(),
            anonymous_metadata: true,
            clock_skew_seconds: 60,
            max_token_bytes: 16 * 1024,
            patient_claim: "patient".into(),
            jwks_min_refresh_seconds: 30,
            jwks_max_age_seconds: 3600,
            token_cache_size: 10_000,
            issuers: Vec::new(),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            sets: vec!["microsoft-roles".into(), "smart".into()],
            dir: None,
            reload_seconds: 2,
            deny_reads_as_not_found: true,
            audit_inputs: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub store: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration from an optional file, the environment and flags.
    #[cfg(test)]
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>, flags: Overrides) -> Result<Self, GatewayError> {
        Ok(Self::load_with_sources(file, env, flags)?.0)
    }

    /// [`Config::load`], with where each setting that is not at its default came from.
    pub fn load_with_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        flags: Overrides,
    ) -> Result<(Self, Sources), GatewayError> {
        let (config, sources) = layers::build(file, env, flags)?;
        config.check()?;
        Ok((config, sources))
    }

    fn check(&self) -> Result<(), GatewayError> {
        let bad = |m: String| Err(GatewayError::Config(m));
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "`server.listen` must be an address like `127.0.0.1:8080`, not `{}`",
                self.server.listen
            ));
        }
        if let Some(listen) = &self.metrics.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() || *listen == self.server.listen {
                return bad(format!(
                    "`metrics.listen` must be an address like `0.0.0.0:9464` other than `server.listen`, not `{listen}`"
                ));
            }
        }
        if self.server.threads == 0 || self.server.max_body_bytes == 0 || self.server.request_timeout_seconds == 0 {
            return bad(
                "`server.threads`, `server.max_body_bytes` and `server.request_timeout_seconds` must be positive"
                    .into(),
            );
        }
        if self.fhir.default_page_size == 0 || self.fhir.max_page_size < self.fhir.default_page_size {
            return bad("page sizes must be positive, with `max_page_size` >= `default_page_size`".into());
        }
        if [self.fhir.search_max_results, self.fhir.max_bundle_entries, self.fhir.max_conditional_delete].contains(&0)
            || self.fhir.search_timeout_seconds == 0
        {
            return bad("`fhir.search_max_results`, `search_timeout_seconds`, `max_bundle_entries` and \
                        `max_conditional_delete` must be positive"
                .into());
        }
        if self.fhir.max_chain_depth > 32 {
            return bad("`fhir.max_chain_depth` may be at most 32".into());
        }
        if self.fhir.max_search_params == 0
            || self.fhir.max_search_bytes == 0
            || self.fhir.fhirpath_max_steps == 0
            || self.fhir.fhirpath_timeout_ms == 0
        {
            return bad("`fhir.max_search_params`, `max_search_bytes`, `fhirpath_max_steps` and \
                        `fhirpath_timeout_ms` must be positive"
                .into());
        }
        for issuer in &self.auth.issuers {
            if issuer.issuer.is_empty() || issuer.audiences.is_empty() {
                return bad("each `[[auth.issuers]]` needs `issuer` and at least one of `audiences`".into());
            }
            crate::auth::issuer::check_config(issuer).map_err(GatewayError::Config)?;
        }
        if self.auth.enabled && !self.local_issuer_on() && self.auth.issuers.is_empty() {
            return bad("authentication is on but no issuer is trusted: set `auth.local_issuer = true`, add \
                        `[[auth.issuers]]`, or turn it off with `auth.enabled = false`"
                .into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad(format!("`log.format` must be `text` or `json`, not `{}`", self.log.format));
        }
        if self.federation.page_ttl_seconds == 0 {
            return bad("`federation.page_ttl_seconds` must be positive".into());
        }
        self.cors.check().map_err(GatewayError::Config)?;
        self.tracing.check().map_err(GatewayError::Config)?;
        self.smart.check().map_err(GatewayError::Config)?;
        if self.smart.proxy.enabled && !self.auth.enabled {
            return bad("`smart.proxy.enabled` needs authentication on (`auth.enabled = true`)".into());
        }
        let loopback = self.server.listen.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
        if self.smart.proxy.enabled && self.server.base_url.is_none() && !loopback {
            return bad(
                "the SMART proxy's endpoints and redirect URI need the public address: set `server.base_url`".into()
            );
        }
        routing::check(self).map_err(GatewayError::Config)
    }

    /// The file of the key sealing page links.
    pub fn paging_key_file(&self) -> PathBuf {
        self.federation.paging_key_file.clone().unwrap_or_else(|| self.store.data_dir.join("paging.key"))
    }

    /// How long federated page links stay valid.
    pub fn page_ttl(&self) -> Duration {
        Duration::from_secs(self.federation.page_ttl_seconds)
    }

    /// Whether the development issuer is on: `auth.local_issuer` when set, otherwise only while
    /// no real issuer is configured (its key file can mint `globalAdmin`).
    pub fn local_issuer_on(&self) -> bool {
        self.auth.enabled && self.auth.local_issuer.unwrap_or(self.auth.issuers.is_empty())
    }

    /// The store URL in force.
    pub fn store_url(&self) -> String {
        self.store
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.store.data_dir.join("fhirgate.db").display()))
    }

    /// The URL of the local issuer (`iss` of `fhirgate token` tokens): the public base URL, or
    /// `http://<listen>`.
    pub fn local_issuer_url(&self) -> String {
        match &self.server.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.listen),
        }
    }

    /// One line per setting with its value and where it came from (`fhirgate config`).
    /// The resolved routing table follows, as comments.
    pub fn describe(&self, sources: &Sources) -> Result<String, GatewayError> {
        Ok(layers::describe(self, sources)? + &routing::describe(self))
    }

    /// The targets in force: `[[targets]]`, or one local target `default` on `store.url`.
    pub fn targets(&self) -> Vec<TargetConfig> {
        routing::targets(self)
    }

    /// The routes in force: `[[routes]]`, or one route `default` on every target.
    pub fn routes(&self) -> Vec<RouteConfig> {
        routing::routes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn defaults_serve_sqlite_under_data() -> Result<(), GatewayError> {
        let c = Config::load(None, &env(&[]), Overrides::default())?;
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.store_url(), "sqlite:./data/fhirgate.db");
        assert_eq!(c.server.max_body_bytes, 16 * 1024 * 1024);
        Ok(())
    }

    #[test]
    fn file_then_env_then_flags() -> Result<(), GatewayError> {
        let path = std::env::temp_dir().join(format!("fhirgate-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1111\"\nmax_body_bytes = 10\n[fhir]\nupdate_create = false\n",
        )
        .map_err(|e| GatewayError::Config(e.to_string()))?;
        let vars = env(&[("FHIRGATE_LISTEN", "127.0.0.1:2222"), ("FHIRGATE_DATA_DIR", "/tmp/x")]);
        let c = Config::load(Some(&path), &vars, Overrides::default())?;
        assert_eq!(c.server.listen, "127.0.0.1:2222");
        assert_eq!(c.server.max_body_bytes, 10);
        assert!(!c.fhir.update_create);
        assert_eq!(c.store_url(), "sqlite:/tmp/x/fhirgate.db");
        let flags =
            Overrides { listen: Some("127.0.0.1:3333".into()), store: Some("sqlite::memory:".into()), data_dir: None };
        let c = Config::load(Some(&path), &vars, flags)?;
        assert_eq!(c.server.listen, "127.0.0.1:3333");
        assert_eq!(c.store_url(), "sqlite::memory:");
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    #[test]
    fn bad_values_are_reported() {
        let err = Config::load(None, &env(&[("FHIRGATE_MAX_BODY_BYTES", "lots")]), Overrides::default());
        assert!(matches!(err, Err(GatewayError::Config(m)) if m.contains("FHIRGATE_MAX_BODY_BYTES")));
        let err = Config::load(None, &env(&[("FHIRGATE_LISTEN", "nowhere")]), Overrides::default());
        assert!(matches!(err, Err(GatewayError::Config(m)) if m.contains("server.listen")));
        for listen in ["nowhere", "127.0.0.1:8080"] {
            let err = Config::load(None, &env(&[("FHIRGATE_METRICS_LISTEN", listen)]), Overrides::default());
            assert!(matches!(err, Err(GatewayError::Config(m)) if m.contains("metrics.listen")), "{listen}");
        }
    }

    #[test]
    fn auth_and_policy_settings() -> Result<(), GatewayError> {
        let c = Config::load(None, &env(&[]), Overrides::default())?;
        assert!(c.auth.enabled && c.local_issuer_on(), "secure by default, with the development issuer");
        assert!(c.policy.deny_reads_as_not_found && !c.policy.audit_inputs && !c.metrics.public, "safe defaults");
        assert_eq!(c.policy.sets, ["microsoft-roles", "smart"]);
        assert_eq!(c.local_issuer_url(), "http://127.0.0.1:8080");
        let vars = env(&[("FHIRGATE_POLICY_SETS", "examples, smart"), ("FHIRGATE_AUTH_CLOCK_SKEW_SECONDS", "5")]);
        let c = Config::load(None, &vars, Overrides::default())?;
        assert_eq!(c.policy.sets, ["examples", "smart"]);
        assert_eq!(c.auth.clock_skew_seconds, 5);
        let err = Config::load(None, &env(&[("FHIRGATE_AUTH_LOCAL_ISSUER", "false")]), Overrides::default());
        assert!(matches!(err, Err(GatewayError::Config(m)) if m.contains("no issuer is trusted")));
        let entra = env(&[
            ("FHIRGATE_AUTH_LOCAL_ISSUER", "false"),
            ("FHIRGATE_AUTH_ISSUER", "https://login.microsoftonline.com/{tenantid}/v2.0"),
            ("FHIRGATE_AUTH_AUDIENCES", "api://fhirgate, 1234"),
            ("FHIRGATE_AUTH_ALLOWED_TENANTS", "t1"),
        ]);
        let c = Config::load(None, &entra, Overrides::default())?;
        assert!(!c.local_issuer_on());
        assert_eq!(c.auth.issuers.len(), 1);
        assert_eq!(c.auth.issuers[0].audiences, ["api://fhirgate", "1234"]);
        assert_eq!(c.auth.issuers[0].allowed_tenants, ["t1"]);
        let no_audience = env(&[("FHIRGATE_AUTH_ISSUER", "https://idp.example")]);
        assert!(Config::load(None, &no_audience, Overrides::default()).is_err(), "an issuer needs an audience");
        let off = env(&[("FHIRGATE_AUTH_LOCAL_ISSUER", "false"), ("FHIRGATE_AUTH_ENABLED", "false")]);
        assert!(!Config::load(None, &off, Overrides::default())?.auth.enabled);
        Ok(())
    }

    #[test]
    fn validation_settings_reach_the_profiles() -> Result<(), GatewayError> {
        let defaults = Config::load(None, &env(&[]), Overrides::default())?.fhir.profiles()?;
        let packages = defaults.packages();
        assert!(!packages.security_checks && !packages.no_html_in_markdown && packages.bundle_rules.is_empty());
        assert!(!packages.references_must_exist);
        let path = std::env::temp_dir().join(format!("fhirgate-config-bundle-rules-{}.toml", std::process::id()));
        let text = "[fhir]\nno_html_in_markdown = true\n[fhir.bundle_rules]\n\"Composition:0\" = \"http://example.org/c\"\n\"1\" = \"http://example.org/one\"\n";
        std::fs::write(&path, text).map_err(|e| GatewayError::Config(e.to_string()))?;
        let settings = env(&[("FHIRGATE_SECURITY_CHECKS", "true"), ("FHIRGATE_REFERENCES_MUST_EXIST", "true")]);
        let c = Config::load(Some(&path), &settings, Overrides::default())?;
        let _ = std::fs::remove_file(&path);
        let registry = c.fhir.profiles()?;
        let packages = registry.packages();
        assert!(packages.security_checks && packages.no_html_in_markdown && packages.references_must_exist);
        assert_eq!(
            packages.bundle_rules,
            [
                ("1".to_owned(), "http://example.org/one".to_owned()),
                ("Composition:0".to_owned(), "http://example.org/c".to_owned())
            ]
        );
        for bad in ["Compostion", "Composition:first", "Composition:0:1", ""] {
            let mut fhir = c.fhir.clone();
            fhir.bundle_rules = BTreeMap::from([(bad.to_owned(), "http://example.org/c".to_owned())]);
            let err = fhir.profiles();
            assert!(matches!(err, Err(GatewayError::Config(m)) if m.contains("fhir.bundle_rules")), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn a_real_issuer_turns_the_local_issuer_off_unless_kept_explicitly() -> Result<(), GatewayError> {
        let real = [("FHIRGATE_AUTH_ISSUER", "https://idp.example"), ("FHIRGATE_AUTH_AUDIENCES", "fhirgate")];
        let c = Config::load(None, &env(&real), Overrides::default())?;
        assert!(!c.local_issuer_on(), "a real issuer is configured: the development issuer is off");
        let mut both = real.to_vec();
        both.push(("FHIRGATE_AUTH_LOCAL_ISSUER", "true"));
        assert!(Config::load(None, &env(&both), Overrides::default())?.local_issuer_on(), "explicit opt-in");
        let off = env(&[("FHIRGATE_AUTH_ENABLED", "false")]);
        assert!(!Config::load(None, &off, Overrides::default())?.local_issuer_on(), "nothing is on without auth");
        Ok(())
    }

    #[test]
    fn a_multi_tenant_issuer_needs_its_tenants_or_an_explicit_any() -> Result<(), GatewayError> {
        let any = [
            ("FHIRGATE_AUTH_ISSUER", "https://login.microsoftonline.com/{tenantid}/v2.0"),
            ("FHIRGATE_AUTH_AUDIENCES", "api://fhirgate"),
        ];
        let err = Config::load(None, &env(&any), Overrides::default());
        assert!(
            matches!(&err, Err(GatewayError::Config(m)) if m.contains("allowed_tenants") && m.contains("allow_any_tenant")),
            "{err:?}"
        );
        let mut explicit = any.to_vec();
        explicit.push(("FHIRGATE_AUTH_ALLOW_ANY_TENANT", "true"));
        assert!(Config::load(None, &env(&explicit), Overrides::default())?.auth.issuers[0].allow_any_tenant);
        let common = [
            ("FHIRGATE_AUTH_ISSUER", "https://login.microsoftonline.com/common/v2.0"),
            ("FHIRGATE_AUTH_AUDIENCES", "api://fhirgate"),
        ];
        let err = Config::load(None, &env(&common), Overrides::default());
        assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("{tenantid}")), "{err:?}");
        let single = [
            ("FHIRGATE_AUTH_ISSUER", "https://login.microsoftonline.com/0000-1111/v2.0"),
            ("FHIRGATE_AUTH_AUDIENCES", "api://fhirgate"),
        ];
        assert!(Config::load(None, &env(&single), Overrides::default()).is_ok(), "one tenant needs no list");
        Ok(())
    }

    #[test]
    fn the_smart_proxy_needs_its_upstream_its_clients_and_a_public_address() -> Result<(), GatewayError> {
        let proxy = [
            ("FHIRGATE_SMART_PROXY_ENABLED", "true"),
            ("FHIRGATE_SMART_PROXY_UPSTREAM_AUTHORIZE_URL", "https://idp.example/authorize"),
            ("FHIRGATE_SMART_PROXY_UPSTREAM_TOKEN_URL", "https://idp.example/token"),
            ("FHIRGATE_SMART_PROXY_CLIENT_ID", "fhirgate"),
        ];
        let err = Config::load(None, &env(&proxy[..1]), Overrides::default());
        assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("upstream_authorize_url")), "{err:?}");
        let err = Config::load(None, &env(&proxy), Overrides::default());
        assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("smart.proxy.clients")), "{err:?}");
        let path = std::env::temp_dir().join(format!("fhirgate-smart-{}.toml", std::process::id()));
        let client = "[[smart.proxy.clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://app.example/cb\"]\n";
        std::fs::write(&path, client).map_err(|e| GatewayError::Config(e.to_string()))?;
        assert!(Config::load(Some(&path), &env(&proxy), Overrides::default())?.smart.proxy.enabled);
        let mut exposed = proxy.to_vec();
        exposed.push(("FHIRGATE_LISTEN", "0.0.0.0:8080"));
        let err = Config::load(Some(&path), &env(&exposed), Overrides::default());
        assert!(matches!(&err, Err(GatewayError::Config(m)) if m.contains("server.base_url")), "{err:?}");
        exposed.push(("FHIRGATE_BASE_URL", "https://fhir.example"));
        assert!(Config::load(Some(&path), &env(&exposed), Overrides::default()).is_ok());
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    #[test]
    fn the_example_config_parses() -> Result<(), GatewayError> {
        // Run time first: a reused test binary may come from another checkout.
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let path = dir.join("../deploy/fhirgate.example.toml");
        let c = Config::load(Some(&path), &env(&[]), Overrides::default())?;
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.fhir, FhirConfig::default(), "the example shows the defaults of `[fhir]`");
        assert_eq!((c.cors, c.smart), (CorsConfig::default(), SmartConfig::default()), "and of `[cors]`, `[smart]`");
        Ok(())
    }

    #[test]
    fn the_fhir_defaults_are_the_engines() {
        let (ours, engine) = (FhirConfig::default().engine_config(), EngineConfig::default());
        assert_eq!(format!("{ours:?}"), format!("{engine:?}"));
        let limits = |c: &EngineConfig| {
            (c.max_chain_depth, c.max_search_params, c.max_search_bytes, c.fhirpath_max_steps, c.fhirpath_timeout)
        };
        assert_eq!(limits(&ours), limits(&engine));
        let set = FhirConfig { fhirpath_timeout_ms: 250, search_page_ttl_seconds: 5, ..FhirConfig::default() };
        let c = set.engine_config();
        assert_eq!((c.fhirpath_timeout, c.search_page_ttl), (Duration::from_millis(250), Duration::from_secs(5)));
    }

    #[test]
    fn search_and_fhirpath_limits_come_from_file_and_environment() -> Result<(), GatewayError> {
        let c = Config::load(None, &env(&[]), Overrides::default())?;
        assert_eq!((c.fhir.max_chain_depth, c.fhir.max_search_params), (4, 100));
        let vars = env(&[
            ("FHIRGATE_MAX_CHAIN_DEPTH", "2"),
            ("FHIRGATE_MAX_SEARCH_PARAMS", "7"),
            ("FHIRGATE_MAX_SEARCH_BYTES", "900"),
            ("FHIRGATE_FHIRPATH_MAX_STEPS", "5000"),
            ("FHIRGATE_FHIRPATH_TIMEOUT_MS", "250"),
        ]);
        let c = Config::load(None, &vars, Overrides::default())?;
        let got = (
            c.fhir.max_chain_depth,
            c.fhir.max_search_params,
            c.fhir.max_search_bytes,
            c.fhir.fhirpath_max_steps,
            c.fhir.fhirpath_timeout_ms,
        );
        assert_eq!(got, (2, 7, 900, 5000, 250));
        let too_deep = env(&[("FHIRGATE_MAX_CHAIN_DEPTH", "33")]);
        assert!(
            matches!(Config::load(None, &too_deep, Overrides::default()), Err(GatewayError::Config(m)) if m.contains("max_chain_depth"))
        );
        let zero = env(&[("FHIRGATE_FHIRPATH_MAX_STEPS", "0")]);
        assert!(Config::load(None, &zero, Overrides::default()).is_err());
        Ok(())
    }
}

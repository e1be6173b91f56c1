//! `[[targets]]` and `[[routes]]`: the FHIR servers behind the gateway and which requests go to
//! which. A target is a local store (`store = URL`, opened with the `[store]` settings) or a
//! remote FHIR R4 server (`base_url`). Its id names it in logs and in Cedar (`context.target`),
//! never to clients. Routes choose targets by path prefix, resource type and token claim.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One FHIR server behind the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// Names the target in routes, logs and Cedar (`context.target`).
    pub id: String,
    /// A local store: `sqlite:PATH`, `postgres://…` or `cosmos:…`. Exactly one of `store` and
    /// `base_url` is set.
    pub store: Option<String>,
    /// A remote FHIR R4 server's base, as it writes it in its own links
    /// (`https://workspace-fhir.fhir.azurehealthcareapis.com`).
    pub base_url: Option<String>,
    /// Addresses (`host:port`) the remote is reached at, balanced round-robin with health
    /// checks; default: the host and port of `base_url`.
    pub addresses: Vec<String>,
    /// `none`, `passthrough` (the caller's own token), `bearer-file` (a static token read from
    /// `bearer_file`) or `azure` (the gateway's own Entra ID identity, `azure_*` settings).
    pub credentials: String,
    /// The file holding the static bearer token (`credentials = "bearer-file"`).
    pub bearer_file: Option<PathBuf>,
    /// `managed-identity`, `workload-identity`, `client-secret` or `developer-tools`
    /// (`credentials = "azure"`).
    pub azure_auth: String,
    /// The scope asked for (`https://WORKSPACE-FHIR.fhir.azurehealthcareapis.com/.default`).
    pub azure_scope: Option<String>,
    pub azure_tenant_id: Option<String>,
    pub azure_client_id: Option<String>,
    pub azure_client_secret_file: Option<PathBuf>,
    /// The Entra ID authority (default `https://login.microsoftonline.com/`).
    pub azure_authority: Option<String>,
    /// Verify the remote's TLS certificate (an `https` base). Turning it off is logged as a
    /// warning at start.
    pub tls_verify: bool,
    /// Trust anchors (PEM) for the remote's certificate (a private CA), added to the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Trust the system's anchors too (with `tls_ca_file`); `false`: only `tls_ca_file`'s.
    pub tls_system_anchors: bool,
    /// Time to open a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time to wait for each read of the answer, in milliseconds.
    pub read_timeout_ms: u64,
    /// Time one exchange (all retries included) may take, in milliseconds.
    pub total_timeout_ms: u64,
    /// Retries of an idempotent request (GET, HEAD; PUT and DELETE with `If-Match`) that failed
    /// before any answer arrived, on the next healthy address.
    pub retries: u32,
    /// Path below the base checked by the active health check (`metadata`).
    pub health_path: String,
    /// Seconds between health checks of each address (0: no active checks).
    pub health_interval_seconds: u64,
    /// Seconds between resolutions of the host names in `addresses` (0: resolved at start
    /// only, and when no address can be connected to).
    pub dns_refresh_seconds: u64,
    /// Largest answer body accepted from the remote, in bytes (502 beyond it).
    pub max_response_bytes: usize,
    /// Idle connections kept per address.
    pub pool_size: usize,
    /// Seconds the remote's CapabilityStatement (a route's `metadata`) is kept before it is
    /// fetched again; while the remote cannot give a new one the last one is served (0: fetched
    /// for every `metadata` request).
    pub capabilities_ttl_seconds: u64,
}

/// Which requests go to which targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Names the route in logs and Cedar (`context.route`).
    pub id: String,
    /// Path prefix below the server's base (`cardiology`: `/cardiology/Patient/1`); `""`: the root.
    pub prefix: String,
    /// Resource types this route serves (empty: every type).
    pub types: Vec<String>,
    /// A token claim the route requires (`tenant`)...
    pub claim: Option<String>,
    /// ...and the value it must have.
    pub claim_value: Option<String>,
    /// Targets, by id: reads and searches fan out to all of them.
    pub targets: Vec<String>,
    /// Where creates (and writes naming no prefixed id) go; default: the first target.
    pub write_target: Option<String>,
    /// Id prefix per target id (`{ lab = "LAB-" }`).
    pub id_prefixes: std::collections::BTreeMap<String, String>,
    /// A target that fails or times out during a fan-out: `partial` (an OperationOutcome entry
    /// in the searchset, the others' results kept) or `fail` (the whole request fails).
    pub on_target_error: String,
    /// Responses stream unparsed: only type-level decisions (refused at start when the loaded
    /// policies read resource data).
    pub type_level_only: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            store: None,
            base_url: None,
            addresses: Vec::new(),
            credentials: "none".into(),
            bearer_file: None,
            azure_auth: "managed-identity".into(),
            azure_scope: None,
            azure_tenant_id: None,
            azure_client_id: None,
            azure_client_secret_file: None,
            azure_authority: None,
            tls_verify: true,
            tls_ca_file: None,
            tls_system_anchors: true,
            connect_timeout_ms: 2_000,
            read_timeout_ms: 15_000,
            total_timeout_ms: 30_000,
            retries: 1,
            health_path: "metadata".into(),
            health_interval_seconds: 5,
            dns_refresh_seconds: 30,
            max_response_bytes: 64 * 1024 * 1024,
            pool_size: 64,
            capabilities_ttl_seconds: 600,
        }
    }
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            prefix: String::new(),
            types: Vec::new(),
            claim: None,
            claim_value: None,
            targets: Vec::new(),
            write_target: None,
            id_prefixes: std::collections::BTreeMap::new(),
            on_target_error: "partial".into(),
            type_level_only: false,
        }
    }
}

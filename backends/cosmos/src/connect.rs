//! Connecting to an account: the credential (account key or Entra ID), the SDK's retry policy
//! for throttling, and the database and container (created on first start when allowed,
//! otherwise checked, with what is missing explained).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_data_cosmos::models::ContainerProperties;
use azure_data_cosmos::options::{OperationOptionsBuilder, Region, ThrottlingRetryOptionsBuilder};
use azure_data_cosmos::{AccountEndpoint, AccountReference, CosmosClient, CosmosClientBuilder, RoutingStrategy};
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential,
};

use crate::error::Error;
use crate::layout::{Layout, check_store_name};
use crate::search::form::SearchQueries;
use crate::{CosmosStore, Inner};

/// How the store authenticates to Cosmos DB.
#[derive(Clone)]
pub enum Auth {
    /// The account's primary or secondary key.
    Key(Secret),
    /// The Azure managed identity of the host; `client_id` picks a user-assigned identity.
    ManagedIdentity { client_id: Option<String> },
    /// Kubernetes workload identity (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, as the webhook sets them).
    WorkloadIdentity,
    /// A service principal with a client secret.
    ClientSecret { tenant_id: String, client_id: String, secret: Secret },
    /// The developer's own sign-in (Azure CLI / Azure Developer CLI).
    DeveloperTools,
    /// The SDK's in-process emulator (tests only; built with the `emulator` feature), with the
    /// SDK's fault injection rules.
    #[cfg(feature = "emulator")]
    Emulator {
        client: Arc<azure_data_cosmos_driver::in_memory_emulator::InMemoryEmulatorHttpClient>,
        faults: Vec<Arc<azure_data_cosmos_driver::fault_injection::FaultInjectionRule>>,
    },
}

impl fmt::Debug for Auth {
    // Secrets never reach a log: only the kind of credential is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key(_) => "Key(***)",
            Self::ManagedIdentity { .. } => "ManagedIdentity",
            Self::WorkloadIdentity => "WorkloadIdentity",
            Self::ClientSecret { .. } => "ClientSecret(***)",
            Self::DeveloperTools => "DeveloperTools",
            #[cfg(feature = "emulator")]
            Self::Emulator { .. } => "Emulator",
        })
    }
}

/// [`CosmosSettings::max_search_keys`] by default: 5,000 keys of about 50 bytes (`Observation/`
/// and a UUID, quoted, with a comma) are 250 KB, half the service's 512 KB per query.
pub const DEFAULT_MAX_SEARCH_KEYS: usize = 5_000;

/// Everything needed to open a Cosmos store.
#[derive(Debug, Clone)]
pub struct CosmosSettings {
    /// The account endpoint, `https://ACCOUNT.documents.azure.com:443/`.
    pub endpoint: String,
    pub auth: Auth,
    pub database: String,
    pub container: String,
    /// The partition key value of this store's documents (several stores may share a container).
    pub partition: String,
    /// Create the database and the container if they do not exist (needs control-plane rights).
    pub create_if_missing: bool,
    /// Throttled (429) requests are retried after the server's `Retry-After`, at most this many
    /// times...
    pub throttle_retries: u32,
    /// ...and for at most this long in all; then the request fails with 503 and `Retry-After`.
    pub throttle_max_wait: Duration,
    /// Attempts of one write batch when concurrent writers move the store's clock in between
    /// (partitioned layout: while other transactions hold what it needs).
    pub write_attempts: u32,
    /// How the documents are laid out: one partition per store, or one per resource.
    pub layout: Layout,
    /// Partitioned layout: how long a transaction may stay pending before a reader or writer
    /// that meets it may abort it (it must commit within this time).
    pub tx_lease: Duration,
    /// Partitioned layout: resources one transaction stages or applies at once.
    pub tx_parallelism: usize,
    /// The most resource keys one search may carry from its clause, chain, `_has` and
    /// compartment sub-queries into its final query; a broader search is refused (400). The
    /// service caps a query's text and parameters (512 KB), which this keeps a search under.
    pub max_search_keys: usize,
    /// How a search's clauses are written: key-set queries (the default; what the emulator
    /// runs) or `EXISTS` sub-queries (one query per search; the real service only: a store
    /// asked for them checks at connect that the service runs them).
    pub search_queries: SearchQueries,
}

impl CosmosSettings {
    /// Settings with the defaults: database `fhir`, container `resources`, partition `fhir`,
    /// created if missing, 9 throttle retries within 30 s, 50 write attempts, the layout detected,
    /// 5,000 keys per search.
    pub fn new(endpoint: impl Into<String>, auth: Auth) -> Self {
        Self {
            endpoint: endpoint.into(),
            auth,
            database: "fhir".to_owned(),
            container: "resources".to_owned(),
            partition: "fhir".to_owned(),
            create_if_missing: true,
            throttle_retries: 9,
            throttle_max_wait: Duration::from_secs(30),
            write_attempts: 50,
            layout: Layout::Auto,
            tx_lease: Duration::from_secs(30),
            tx_parallelism: 16,
            max_search_keys: DEFAULT_MAX_SEARCH_KEYS,
            search_queries: SearchQueries::KeySet,
        }
    }

    /// Settings for a fresh in-process emulator account (tests; builds without the `emulator`
    /// feature, such as the production binary, refuse).
    #[cfg(not(feature = "emulator"))]
    pub fn emulator() -> Result<Self, Error> {
        Err(Error::Config("this build has no in-process Cosmos DB emulator (a test-only feature)".to_owned()))
    }

    /// Settings for a fresh in-process emulator account (tests).
    #[cfg(feature = "emulator")]
    pub fn emulator() -> Result<Self, Error> {
        use azure_data_cosmos_driver::in_memory_emulator::{
            InMemoryEmulatorHttpClient, VirtualAccountConfig, VirtualRegion,
        };
        let endpoint = "https://eastus.emulator.local";
        let url = endpoint.parse().map_err(|e| Error::Config(format!("emulator endpoint: {e}")))?;
        let config = VirtualAccountConfig::new(vec![VirtualRegion::new("East US", url)])
            .map_err(|e| Error::Config(format!("emulator: {e}")))?;
        let client = Arc::new(InMemoryEmulatorHttpClient::new(config));
        Ok(Self::new(endpoint, Auth::Emulator { client, faults: Vec::new() }))
    }

    /// Settings for a fresh in-process emulator account whose requests go through `faults`
    /// (resilience tests).
    #[cfg(feature = "emulator")]
    pub fn emulator_with_faults(
        faults: Vec<Arc<azure_data_cosmos_driver::fault_injection::FaultInjectionRule>>,
    ) -> Result<Self, Error> {
        let mut settings = Self::emulator()?;
        if let Auth::Emulator { faults: rules, .. } = &mut settings.auth {
            *rules = faults;
        }
        Ok(settings)
    }
}

impl CosmosStore {
    /// Connects, and creates or checks the database and container.
    pub async fn connect(settings: &CosmosSettings) -> Result<Self, Error> {
        if settings.layout == Layout::Partitioned {
            check_store_name(&settings.partition)?;
        }
        let client = client(settings).await?;
        if settings.create_if_missing {
            create(&client, settings).await?;
        }
        let container = client
            .database_client(settings.database.as_str())
            .container_client(settings.container.as_str(), None)
            .await
            .map_err(|e| missing(e.into(), settings))?;
        let open = |layout| Self {
            inner: Arc::new(Inner {
                container: container.clone(),
                partition: settings.partition.clone(),
                write_attempts: settings.write_attempts.max(1),
                writer: tokio::sync::Mutex::new(()),
                layout,
                hlc: crate::partitioned::hlc::Hlc::default(),
                tx_lease: settings.tx_lease,
                tx_parallel: settings.tx_parallelism.max(1),
                max_search_keys: settings.max_search_keys,
                search_queries: settings.search_queries,
                #[cfg(feature = "emulator")]
                crash_after: std::sync::Mutex::new(None),
            }),
        };
        let store = match settings.layout {
            // A name the partitioned layout cannot carry can only be a one-partition store.
            Layout::Auto if check_store_name(&settings.partition).is_err() => open(Layout::Single),
            Layout::Auto => {
                let probe = open(Layout::Single);
                let layout = crate::detect::layout(&probe).await.map_err(|e| missing(e, settings))?;
                tracing::info!(store = %settings.partition, ?layout, "Cosmos DB layout detected");
                open(layout)
            }
            layout => open(layout),
        };
        // A first read proves the credential and the container (and names what is missing).
        store.ping().await.map_err(|e| missing(e, settings))?;
        if settings.search_queries == SearchQueries::Exists {
            crate::search::form::check_exists_runs(&store, is_emulator(&settings.auth)).await?;
        }
        Ok(store)
    }
}

/// The client, with its credential and throttling retry policy.
async fn client(settings: &CosmosSettings) -> Result<CosmosClient, Error> {
    let endpoint: AccountEndpoint = settings
        .endpoint
        .parse()
        .map_err(|e| Error::Config(format!("Cosmos DB endpoint `{}`: {e}", settings.endpoint)))?;
    let credential = |e: azure_core::Error| Error::Config(format!("Cosmos DB credential ({:?}): {e}", settings.auth));
    let account = match &settings.auth {
        Auth::Key(key) => AccountReference::with_authentication_key(endpoint, key.clone()),
        #[cfg(feature = "emulator")]
        Auth::Emulator { .. } => AccountReference::with_authentication_key(endpoint, Secret::new("dGVzdGtleQ==")),
        Auth::ManagedIdentity { client_id } => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            let c: Arc<dyn TokenCredential> = ManagedIdentityCredential::new(Some(options)).map_err(credential)?;
            AccountReference::with_credential(endpoint, c)
        }
        Auth::WorkloadIdentity => {
            let c: Arc<dyn TokenCredential> = WorkloadIdentityCredential::new(None).map_err(credential)?;
            AccountReference::with_credential(endpoint, c)
        }
        Auth::ClientSecret { tenant_id, client_id, secret } => {
            let c: Arc<dyn TokenCredential> =
                ClientSecretCredential::new(tenant_id, client_id.clone(), secret.clone(), None).map_err(credential)?;
            AccountReference::with_credential(endpoint, c)
        }
        Auth::DeveloperTools => {
            let c: Arc<dyn TokenCredential> = DeveloperToolsCredential::new(None).map_err(credential)?;
            AccountReference::with_credential(endpoint, c)
        }
    };
    let throttling = ThrottlingRetryOptionsBuilder::new()
        .with_max_retry_count(settings.throttle_retries)
        .with_max_retry_wait_time(settings.throttle_max_wait)
        .build();
    #[cfg_attr(not(feature = "emulator"), expect(unused_mut, reason = "only the emulator changes the runtime"))]
    let mut builder = CosmosClientBuilder::new().with_default_operation_options(
        OperationOptionsBuilder::new().with_throttling_retry_options(throttling).build(),
    );
    #[cfg(feature = "emulator")]
    if let Auth::Emulator { client, .. } = &settings.auth {
        let runtime = match &settings.auth {
            Auth::Emulator { faults, .. } if !faults.is_empty() => {
                client.runtime_builder_with_fault_rules(faults.clone())
            }
            _ => client.runtime_builder(),
        };
        builder = builder.with_runtime(azure_data_cosmos::CosmosRuntimeBuilder::from(runtime).build().await?);
    }
    Ok(builder.build(account, RoutingStrategy::PreferredRegions(Vec::<Region>::new())).await?)
}

/// Creates the database and the container (partition key `/pk`) unless they exist.
async fn create(client: &CosmosClient, settings: &CosmosSettings) -> Result<(), Error> {
    let exists = |e: azure_data_cosmos::CosmosError| {
        if e.status().is_conflict() { Ok(()) } else { Err(Error::from(e)) }
    };
    client.create_database(&settings.database, None).await.map(drop).or_else(exists)?;
    let properties = ContainerProperties::new(settings.container.clone(), "/pk".into());
    client
        .database_client(settings.database.as_str())
        .create_container(properties, None)
        .await
        .map(drop)
        .or_else(exists)?;
    tracing::info!(database = %settings.database, container = %settings.container, "Cosmos DB database and container ready");
    Ok(())
}

/// A 404 on opening explained: which database or container is missing, and how to fix it.
fn missing(error: Error, settings: &CosmosSettings) -> Error {
    match error.status() {
        Some(404) => Error::Missing(format!(
            "Cosmos DB database `{}` or container `{}` does not exist at {}: create the container with partition key \
             path `/pk`, or set `store.cosmos.create_if_missing = true` for a principal allowed to create it",
            settings.database, settings.container, settings.endpoint
        )),
        Some(401 | 403) => Error::Config(format!(
            "Cosmos DB refused the credential ({:?}) at {}: {error}",
            settings.auth, settings.endpoint
        )),
        _ => error,
    }
}

/// Whether `auth` is the in-process emulator's (which parses `EXISTS` sub-queries and refuses to
/// run them).
fn is_emulator(auth: &Auth) -> bool {
    #[cfg(feature = "emulator")]
    if matches!(auth, Auth::Emulator { .. }) {
        return true;
    }
    let _ = auth;
    false
}

//! The targets behind the routes, as the gateway holds them while serving: a local store's
//! engine (opened on first use inside the serving runtime, whose pools it belongs to) or a
//! remote FHIR server's client ([`RemoteTarget`]).

use std::sync::Arc;

use fhirgate_engine::storage::Store;
use fhirgate_engine::{Engine, EngineConfig, Error as FhirError};
use tokio::sync::OnceCell;

use crate::config::{Config, Kind, StoreConfig, TargetConfig};
use crate::error::GatewayError;
use crate::policy::Policies;
use crate::upstream::RemoteTarget;

/// One target.
pub struct Target {
    pub id: String,
    pub backend: Backend,
    /// How long a remote's CapabilityStatement is kept before it is fetched again.
    pub capabilities_ttl: std::time::Duration,
}

/// Where a target's data lives.
pub enum Backend {
    Local(Box<Local>),
    Remote(RemoteTarget),
}

/// A store of this process.
pub struct Local {
    url: String,
    store: StoreConfig,
    engine_config: EngineConfig,
    engine: OnceCell<Arc<Engine>>,
    /// The policies bulk jobs are decided with (`None`: authorization off), and how many run
    /// at once: the job worker starts with the engine ([`crate::export`]).
    jobs: (Option<Arc<Policies>>, usize),
}

/// What `fhir.packages` gives every local target: the profiles to validate against, and the
/// code systems and value sets beyond the R4 ones for terminology and bindings.
pub struct Packages {
    pub profiles: Arc<fhirgate_engine::profiles::registry::Registry>,
    pub terminology: Arc<fhirgate_engine::terminology::Registry>,
}

impl Packages {
    pub fn load(config: &Config) -> Result<Self, GatewayError> {
        let profiles = config.fhir.profiles()?;
        let (terminology, skipped) =
            fhirgate_engine::terminology::Registry::from_resources(profiles.packages().resources());
        for why in skipped {
            tracing::warn!("`fhir.packages`: a code system or value set left out: {why}");
        }
        Ok(Self { profiles: Arc::new(profiles), terminology: Arc::new(terminology) })
    }
}

impl Target {
    /// The target of a checked configuration (a remote's settings are checked here).
    pub fn new(
        config: &TargetConfig,
        all: &Config,
        policies: Option<&Arc<Policies>>,
        packages: &Packages,
    ) -> Result<Self, GatewayError> {
        let backend = match (config.kind(), &config.store) {
            (Kind::Local, Some(url)) => {
                let blob = all.blob_account().map_err(GatewayError::Config)?;
                Backend::Local(Box::new(Local {
                    url: url.clone(),
                    store: all.store.clone(),
                    engine_config: EngineConfig {
                        rest_security: all.auth.enabled.then(|| crate::smart::Discovery::new(all).security().clone()),
                        export: all.export_settings(blob.as_ref()).map_err(GatewayError::Config)?,
                        import: all.import.settings(blob.as_ref()).map_err(GatewayError::Config)?,
                        page_keys: crate::paging::keys(all)?,
                        profiles: Arc::clone(&packages.profiles),
                        terminology: Arc::clone(&packages.terminology),
                        ..all.fhir.engine_config()
                    },
                    engine: OnceCell::new(),
                    jobs: (policies.cloned(), all.export.max_running),
                }))
            }
            _ => Backend::Remote(RemoteTarget::new(config)?),
        };
        let capabilities_ttl = std::time::Duration::from_secs(config.capabilities_ttl_seconds);
        Ok(Self { id: config.id.clone(), backend, capabilities_ttl })
    }

    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local(_))
    }

    /// The local target's engine, opening its store on first use.
    pub async fn engine(&self) -> Result<&Arc<Engine>, FhirError> {
        let Backend::Local(local) = &self.backend else {
            return Err(FhirError::Internal(format!("target `{}` is not local", self.id)));
        };
        let Local { url, store, engine_config, engine, jobs } = local.as_ref();
        engine
            .get_or_try_init(|| async {
                // Boxed: the store clients' futures are deep, and this one sits in every fan-out.
                let open: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
                    Box::pin(crate::stores::open(url, store));
                let opened = crate::metrics::store::Timed::wrap(&self.id, open.await?);
                let engine = Arc::new(Engine::new(engine_config.clone(), opened));
                crate::export::start(engine.clone(), jobs.0.clone(), self.id.clone(), jobs.1);
                Ok::<_, GatewayError>(engine)
            })
            .await
            .map_err(FhirError::from)
    }

    /// The local target's store, if it is open already.
    pub fn opened_store(&self) -> Option<&Arc<dyn Store>> {
        match &self.backend {
            Backend::Local(local) => local.engine.get().map(|e| e.store()),
            Backend::Remote(_) => None,
        }
    }

    /// Whether the target answers.
    pub async fn health(&self) -> Result<(), FhirError> {
        match &self.backend {
            Backend::Local(_) => self.engine().await?.store().health().await.map_err(FhirError::from),
            Backend::Remote(remote) if remote.is_up() => Ok(()),
            Backend::Remote(_) => {
                Err(FhirError::StoreUnavailable(format!("target `{}` has no healthy address", self.id)))
            }
        }
    }
}

//! The router: which route a request takes ([`matcher`]), the targets behind each route
//! ([`targets`]) and how one request is answered by them ([`dispatch`]): one target, a read
//! fanned out to several, a search merged across them ([`search`]), a batch split between them
//! ([`bundle`]), the route's CapabilityStatement ([`metadata`]).
//!
//! Every target is reached through the same enforcement point: the request's
//! [`fhirgate_engine::access::Access`] for that target and route (`context.target`,
//! `context.route`), given to the local engine or to [`fhirgate_engine::remote::Remote`].

mod bundle;
mod dispatch;
mod format;
mod matcher;
mod metadata;
mod search;
mod stream;
mod targets;

use std::sync::Arc;
use std::time::Duration;

use fhirgate_engine::Error as FhirError;
use fhirgate_engine::interaction::{Request, Response};
use fhirgate_engine::remote::Remote;

pub use dispatch::Caller;

use crate::config::{Config, Kind, RouteConfig};
use crate::error::GatewayError;
use crate::paging::Sealer;
use targets::Target;

/// The routes and targets in force.
pub struct Routing {
    routes: Vec<Route>,
    targets: Vec<Arc<Target>>,
    remote: Remote,
    /// Seals federated page links; `None` when every route keeps the engine's own links.
    sealer: Option<Sealer>,
    page_ttl: Duration,
    default_count: usize,
    max_count: usize,
    /// Remote targets' CapabilityStatements, kept for each target's `capabilities_ttl_seconds`.
    capabilities: metadata::Cache,
    /// This server's `rest.security` (SMART), put in every route's CapabilityStatement.
    security: Option<serde_json::Value>,
}

/// One route and its targets, in the route's order.
pub struct Route {
    pub config: RouteConfig,
    /// Its place in the routing table ([`Routing::route_id`]).
    pub index: usize,
    /// The prefix's segments.
    prefix: Vec<String>,
    targets: Vec<RouteTarget>,
}

/// A target as one route sees it.
pub struct RouteTarget {
    target: Arc<Target>,
    /// `""`: ids are the target's own.
    id_prefix: String,
}

impl Route {
    /// One local target whose ids are shown as they are: the engine answers as it is, page links
    /// and all.
    fn is_plain(&self) -> bool {
        matches!(self.targets.as_slice(), [only] if only.id_prefix.is_empty() && only.target.is_local())
    }

    /// The route's FHIR base for clients: the server's base and the prefix.
    pub fn client_base(&self, server_base: &str) -> String {
        match self.config.normalized_prefix().as_str() {
            "" => server_base.trim_end_matches('/').to_owned(),
            prefix => format!("{}/{prefix}", server_base.trim_end_matches('/')),
        }
    }
}

impl Routing {
    /// The routing table of a checked configuration; opens nothing yet (local stores open on
    /// first use, in the serving runtime, and start their export worker with `policies`).
    pub fn new(config: &Config, policies: Option<&Arc<crate::policy::Policies>>) -> Result<Self, GatewayError> {
        let mut all = Vec::new();
        let packages = targets::Packages::load(config)?;
        for target in config.targets() {
            all.push(Arc::new(Target::new(&target, config, policies, &packages)?));
        }
        let routes: Vec<Route> = config
            .routes()
            .into_iter()
            .enumerate()
            .map(|(index, route)| {
                let targets = route
                    .targets
                    .iter()
                    .filter_map(|id| all.iter().find(|t| &t.id == id))
                    .map(|t| RouteTarget { target: t.clone(), id_prefix: route.id_prefix(&t.id).to_owned() })
                    .collect();
                Route {
                    index,
                    prefix: route.prefix_segments().into_iter().map(str::to_owned).collect(),
                    targets,
                    config: route,
                }
            })
            .collect();
        let sealer = if routes.iter().all(Route::is_plain) {
            None
        } else {
            Some(Sealer::with_keys(crate::paging::keys(config)?))
        };
        let fhir = &config.fhir;
        Ok(Self {
            routes,
            targets: all,
            remote: Remote::new(fhir.engine_config()),
            sealer,
            page_ttl: config.page_ttl(),
            default_count: fhir.default_page_size as usize,
            max_count: fhir.max_page_size as usize,
            capabilities: metadata::Cache::default(),
            security: config.auth.enabled.then(|| crate::smart::Discovery::new(config).security().clone()),
        })
    }

    /// Whether `path` (below the server's base) is a route's `metadata`.
    pub fn is_metadata(&self, path: &str) -> bool {
        let Some(prefix) = path.strip_suffix("metadata") else { return false };
        let prefix = prefix.trim_end_matches('/');
        prefix.is_empty() || self.routes.iter().any(|r| r.prefix.join("/") == prefix)
    }

    /// Whether any route is type-level-only (streamed): when none is, a request needs no
    /// look-up of its route before it is answered the decided way.
    pub fn streams(&self) -> bool {
        self.routes.iter().any(|r| r.config.type_level_only)
    }

    /// The route `path` takes for a caller with `claim` (name, value → whether the token has
    /// it), and the path below the route's base.
    pub fn find(&self, path: &str, claim: &dyn Fn(&str, &str) -> bool) -> Option<(&Route, String)> {
        let configs: Vec<&RouteConfig> = self.routes.iter().map(|r| &r.config).collect();
        let (index, rest) = matcher::find(&configs, path, claim)?;
        Some((&self.routes[index], rest))
    }

    /// Answers `request` (path below the route's base, base URL the route's) on `route`. Boxed:
    /// the composed future is deep, and the proxy phase's future must stay nameable.
    pub fn answer<'a>(
        &'a self,
        route: &'a Route,
        request: Request,
        caller: &'a Caller<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send + 'a>> {
        Box::pin(dispatch::answer(self, route, request, caller))
    }

    /// Whether this server can serve: every local store answers its health check. A remote
    /// target without a healthy address is logged, not reported: its routes answer 503 while
    /// the others keep serving, so the server as a whole stays in rotation.
    pub async fn health(&self) -> Result<(), FhirError> {
        for target in &self.targets {
            if let Err(e) = target.health().await {
                if target.is_local() {
                    tracing::warn!(target = %target.id, error = %e, "local target unhealthy");
                    return Err(FhirError::StoreUnavailable("a store of this server is unavailable".into()));
                }
                tracing::warn!(target = %target.id, error = %e, "remote target down");
            }
        }
        Ok(())
    }

    /// The id of the route at `index` (`none` past the table).
    pub fn route_id(&self, index: usize) -> &str {
        self.routes.get(index).map_or("none", |r| r.config.id.as_str())
    }

    /// The pools of the local stores opened so far, by target id.
    pub fn store_pools(&self) -> Vec<(&str, Vec<fhirgate_engine::storage::PoolUsage>)> {
        self.targets.iter().filter_map(|t| Some((t.id.as_str(), t.opened_store()?.pools()))).collect()
    }

    /// The store every replica shares for one-time values (the SMART proxy's claims,
    /// [`crate::smart::proxy::claims`]): the first local target's, opened on first use; `None`
    /// without a local target; an error when it cannot be opened now (never a silent fall back
    /// to this process alone, which would let a value be used once on each replica).
    pub async fn claims_store(&self) -> Result<Option<Arc<dyn fhirgate_engine::storage::Store>>, FhirError> {
        let Some(target) = self.targets.iter().find(|t| t.is_local()) else { return Ok(None) };
        Ok(Some(target.engine().await?.store().clone()))
    }

    /// The local targets' store URLs (checked at start).
    pub fn local_store_urls(config: &Config) -> Vec<String> {
        config.targets().into_iter().filter(|t| t.kind() == Kind::Local).filter_map(|t| t.store).collect()
    }
}

//! Builds the pingora server with the FHIR service and runs it until SIGTERM / SIGINT.

use std::sync::Arc;

use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

use crate::config::Config;
use crate::error::GatewayError;
use crate::policy::Policies;
use crate::proxy::{FhirGateway, Security, Serves};

/// Bytes of a response gathered per connection before they are sent.
const WRITE_BUFFER: usize = 16 * 1024;

/// Runs the server in the foreground.
pub fn run(config: Config) -> Result<(), GatewayError> {
    // The metrics exist from the start (not on the first request that counts).
    crate::metrics::metrics();
    check_store(&config)?;
    let config = crate::smart::with_discovered_endpoints(config);
    crate::links::warn_at_start(&config.server);
    let security = security(&config)?.map(Arc::new);
    let routing = Arc::new(crate::routing::Routing::new(&config, security.as_ref().map(|s| &s.policies))?);
    check_streamed_routes(&config, security.as_ref())?;
    let conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        grace_period_seconds: Some(config.server.shutdown_grace_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_grace_seconds + 1),
        pid_file: std::env::temp_dir().join(format!("fhirgate-{}.pid", std::process::id())).display().to_string(),
        upgrade_sock: std::env::temp_dir()
            .join(format!("fhirgate-{}-upgrade.sock", std::process::id()))
            .display()
            .to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let listen = config.server.listen.clone();
    let config = Arc::new(config);
    if let Some(metrics_listen) = &config.metrics.listen {
        let gateway = FhirGateway::new(config.clone(), security.clone(), routing.clone(), Serves::Metrics);
        let mut service = http_proxy_service_with_name(&server.configuration, gateway, "metrics");
        service.add_tcp(metrics_listen);
        server.add_service(service);
        tracing::info!(listen = %metrics_listen, "metrics listening: http://{metrics_listen}/metrics");
    }
    let mut service = http_proxy_service_with_name(
        &server.configuration,
        FhirGateway::new(config, security, routing, Serves::Everything),
        "fhir",
    );
    // A response's head and a body up to this size leave in one `send`: pingora's default
    // buffer (1,460 bytes) sent the head of a read and its body apart (bench/README.md).
    let buffers = L4BufferSettings::default().write(WRITE_BUFFER);
    service.add_listener(ListenerConfig::tcp(&listen).l4_buffer(buffers));
    server.add_service(service);
    tracing::info!(%listen, "fhirgate listening: FHIR base http://{listen}/");
    server.run(RunArgs::default());
    tracing::info!("fhirgate stopped");
    Ok(())
}

/// A type-level-only route streams answers unread: refused when the loaded policies may decide
/// on a resource's data (a request whose decision depends on data would be refused anyway, but a
/// route that refuses its callers is a configuration mistake to report at start).
fn check_streamed_routes(config: &Config, security: Option<&Arc<Security>>) -> Result<(), GatewayError> {
    let streamed: Vec<&str> = config.routes.iter().filter(|r| r.type_level_only).map(|r| r.id.as_str()).collect();
    if streamed.is_empty() {
        return Ok(());
    }
    if security.is_some_and(|s| s.policies.read_resource_data()) {
        return Err(GatewayError::Config(format!(
            "route(s) {streamed:?}: `type_level_only = true` streams answers without data-level decisions, but \
             the loaded policies decide on resource data (check with `fhirgate policy validate`); remove the \
             setting or those policies"
        )));
    }
    tracing::warn!(
        routes = ?streamed,
        "type-level-only routes stream the remote's answers unread: no data-level decision, no id prefix, links \
         as the remote writes them"
    );
    Ok(())
}

/// Authentication and policies, or `None` (with a warning) when they are turned off.
fn security(config: &Config) -> Result<Option<Security>, GatewayError> {
    if !config.auth.enabled {
        tracing::warn!("authentication and authorization are OFF (`auth.enabled = false`): anyone can read and write");
        return Ok(None);
    }
    let auth = crate::auth::Authenticator::new(config)?;
    let local = if config.local_issuer_on() {
        let local = crate::auth::local::LocalIssuer::open(config)?;
        tracing::warn!(
            issuer = %local.issuer,
            "local development issuer on (`auth.local_issuer`; turn it off in production): \
             get a token with `fhirgate token --role globalAdmin`"
        );
        Some(local)
    } else {
        None
    };
    let policies = Arc::new(Policies::load(&config.policy)?);
    crate::policy::reload::spawn(policies.clone(), std::time::Duration::from_secs(config.policy.reload_seconds.max(1)))
        .map_err(|e| GatewayError::Config(format!("cannot start the policy reload thread: {e}")))?;
    let smart = if config.smart.proxy.enabled {
        tracing::info!(clients = config.smart.proxy.clients.len(), "SMART authorization proxy on (`[smart.proxy]`)");
        Some(crate::smart::proxy::SmartProxy::new(config)?)
    } else {
        None
    };
    Ok(Some(Security { auth, policies, local, smart }))
}

/// Opens every local target's store once (creating or migrating its schema) and checks it
/// answers: before serving, so a bad URL or an unwritable data directory stops the start with a
/// clear message instead of failing every request, and as `fhirgate migrate`. The serving
/// runtime opens its own connections (pools belong to the runtime that made them).
pub fn check_store(config: &Config) -> Result<(), GatewayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GatewayError::Store(e.to_string()))?;
    for url in crate::routing::Routing::local_store_urls(config) {
        let shown = fhirgate_engine::storage::redact_url(&url);
        runtime.block_on(async {
            let store = crate::stores::open(&url, &config.store).await?;
            store.health().await.map_err(|e| GatewayError::Store(format!("`{shown}` is not healthy: {e}")))
        })?;
        tracing::info!(store = %shown, "store ready");
    }
    Ok(())
}

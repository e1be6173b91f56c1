//! Opening the store a URL names, with the store settings of the configuration: the one place of
//! the gateway that names the store crates. Everything else goes through the engine's `Store`
//! trait and its store-neutral helpers (`storage::cost`, `storage::redact_url`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fhirgate_cosmos::{Auth, CosmosSettings, CosmosStore, Layout, SearchQueries, Secret};
use fhirgate_engine::storage::{Store, redact_url};
use fhirgate_postgres::PostgresSettings;

use crate::config::{CosmosConfig, StoreConfig};
use crate::error::GatewayError;

/// Opens (and creates or migrates, where needed) the store at `url`.
pub async fn open(url: &str, config: &StoreConfig) -> Result<Arc<dyn Store>, GatewayError> {
    let cannot_open =
        |e: &dyn std::fmt::Display| GatewayError::Store(format!("cannot open `{}`: {e}", redact_url(url)));
    if url.starts_with("sqlite:") {
        let store = fhirgate_sqlite::connect(url).await.map_err(|e| cannot_open(&e))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = fhirgate_postgres::connect_configured(url, &postgres_settings(config)?)
            .await
            .map_err(|e| cannot_open(&e))?;
        return Ok(Arc::new(store));
    }
    if let Some(endpoint) = url.strip_prefix("cosmos:") {
        let settings = cosmos_settings(endpoint, &config.cosmos)?;
        let store = CosmosStore::connect(&settings).await.map_err(|e| cannot_open(&e))?;
        return Ok(Arc::new(store));
    }
    Err(GatewayError::Config(format!(
        "unsupported store URL `{}`: expected `sqlite:PATH`, `postgres://USER@HOST:PORT/DB` or \
         `cosmos:https://ACCOUNT.documents.azure.com:443/`",
        redact_url(url)
    )))
}

/// `fhirgate store migrate-cosmos`: copies the one-partition Cosmos DB store `from` (default:
/// `store.cosmos.partition`) of the configured container into the configured store, which must
/// not use `layout = "single"` (it is opened partitioned); resumable (run it again after an
/// interruption). Once it is done, `layout = "auto"` finds the partitioned store.
pub async fn migrate_cosmos(url: &str, config: &StoreConfig, from: Option<&str>) -> Result<(), GatewayError> {
    let endpoint = url
        .strip_prefix("cosmos:")
        .ok_or_else(|| GatewayError::Config(format!("`{}` is not a Cosmos DB store (`cosmos:…`)", redact_url(url))))?;
    let mut settings = cosmos_settings(endpoint, &config.cosmos)?;
    if settings.layout == Layout::Auto {
        settings.layout = Layout::Partitioned;
    }
    let store = CosmosStore::connect(&settings).await.map_err(|e| GatewayError::Store(e.to_string()))?;
    let source = from.unwrap_or(&config.cosmos.partition);
    loop {
        let report =
            store.migrate_from_single(source, 500, Some(20)).await.map_err(|e| GatewayError::Store(e.to_string()))?;
        tracing::info!(
            copied = report.copied,
            total = report.total,
            done = report.done,
            "migrating the Cosmos DB store"
        );
        if report.done {
            return Ok(());
        }
    }
}

/// The Cosmos DB settings for `endpoint` (`emulator` names the SDK's in-process emulator, in
/// builds made for tests).
fn cosmos_settings(endpoint: &str, config: &CosmosConfig) -> Result<CosmosSettings, GatewayError> {
    let secret = |what: &str, path: &Option<PathBuf>| -> Result<Secret, GatewayError> {
        let path = path.as_ref().ok_or_else(|| GatewayError::Config(format!("`store.cosmos.{what}` is not set")))?;
        Ok(Secret::new(read_secret(path)?))
    };
    let auth = match config.auth.as_str() {
        "key" => Auth::Key(secret("key_file", &config.key_file)?),
        "managed-identity" => Auth::ManagedIdentity { client_id: config.client_id.clone() },
        "workload-identity" => Auth::WorkloadIdentity,
        "developer-tools" => Auth::DeveloperTools,
        "client-secret" => {
            let needed = |what: &str, v: &Option<String>| {
                v.clone().ok_or_else(|| GatewayError::Config(format!("`store.cosmos.{what}` is not set")))
            };
            Auth::ClientSecret {
                tenant_id: needed("tenant_id", &config.tenant_id)?,
                client_id: needed("client_id", &config.client_id)?,
                secret: secret("client_secret_file", &config.client_secret_file)?,
            }
        }
        other => {
            return Err(GatewayError::Config(format!(
                "`store.cosmos.auth = \"{other}\"`: expected key, managed-identity, workload-identity, client-secret \
                 or developer-tools"
            )));
        }
    };
    let mut settings = if endpoint == "emulator" {
        CosmosSettings::emulator().map_err(|e| GatewayError::Config(e.to_string()))?
    } else {
        CosmosSettings::new(endpoint, auth)
    };
    settings.database.clone_from(&config.database);
    settings.container.clone_from(&config.container);
    settings.partition.clone_from(&config.partition);
    settings.create_if_missing = config.create_if_missing || endpoint == "emulator";
    settings.throttle_retries = config.throttle_retries;
    settings.throttle_max_wait = Duration::from_secs(config.throttle_max_wait_seconds);
    settings.layout = Layout::parse(&config.layout).map_err(|e| GatewayError::Config(e.to_string()))?;
    settings.tx_lease = Duration::from_secs(config.tx_lease_seconds.max(1));
    settings.max_search_keys = config.max_search_keys.max(1);
    settings.search_queries =
        SearchQueries::parse(&config.search_queries).map_err(|e| GatewayError::Config(e.to_string()))?;
    Ok(settings)
}

/// A secret kept in a file, without its trailing newline.
fn read_secret(path: &Path) -> Result<String, GatewayError> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| GatewayError::Config(format!("cannot read `{}`: {e}", path.display())))?
        .trim_end_matches(['\r', '\n'])
        .to_string())
}

fn postgres_settings(config: &StoreConfig) -> Result<PostgresSettings, GatewayError> {
    let password = config.password_file.as_deref().map(read_secret).transpose()?;
    Ok(PostgresSettings {
        max_connections: config.pool_size,
        statement_timeout: (config.statement_timeout_seconds > 0)
            .then(|| Duration::from_secs(config.statement_timeout_seconds)),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosmos(auth: &str) -> CosmosConfig {
        CosmosConfig { auth: auth.to_owned(), ..CosmosConfig::default() }
    }

    #[test]
    fn cosmos_key_auth_reads_the_key_file_and_never_shows_it() -> Result<(), GatewayError> {
        let dir = std::env::temp_dir().join(format!("fhirgate-cosmos-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| GatewayError::Config(e.to_string()))?;
        let key_file = dir.join("key");
        std::fs::write(&key_file, "c2VjcmV0LWtleQ==\n").map_err(|e| GatewayError::Config(e.to_string()))?;
        let config = CosmosConfig { key_file: Some(key_file), database: "db1".into(), ..cosmos("key") };
        let settings = cosmos_settings("https://acct.documents.azure.com:443/", &config)?;
        assert!(matches!(&settings.auth, Auth::Key(k) if k.secret() == "c2VjcmV0LWtleQ=="), "newline trimmed");
        assert_eq!((settings.database.as_str(), settings.container.as_str()), ("db1", "resources"));
        let shown = format!("{settings:?}");
        assert!(!shown.contains("c2VjcmV0"), "the key stays out of logs: {shown}");
        Ok(())
    }

    #[test]
    fn cosmos_entra_auth_kinds_and_their_missing_settings() -> Result<(), GatewayError> {
        let endpoint = "https://acct.documents.azure.com:443/";
        assert!(matches!(cosmos_settings(endpoint, &cosmos("managed-identity"))?.auth, Auth::ManagedIdentity { .. }));
        assert!(matches!(cosmos_settings(endpoint, &cosmos("workload-identity"))?.auth, Auth::WorkloadIdentity));
        assert!(matches!(cosmos_settings(endpoint, &cosmos("developer-tools"))?.auth, Auth::DeveloperTools));
        let error = |c: &CosmosConfig| cosmos_settings(endpoint, c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error(&cosmos("client-secret")).contains("tenant_id"), "{}", error(&cosmos("client-secret")));
        assert!(error(&cosmos("key")).contains("key_file"));
        assert!(error(&cosmos("password")).contains("expected key, managed-identity"));
        Ok(())
    }

    #[test]
    fn cosmos_search_queries_default_to_key_set_and_take_exists() -> Result<(), GatewayError> {
        let endpoint = "https://acct.documents.azure.com:443/";
        assert_eq!(cosmos_settings(endpoint, &cosmos("managed-identity"))?.search_queries, SearchQueries::KeySet);
        let exists = CosmosConfig { search_queries: "exists".into(), ..cosmos("managed-identity") };
        assert_eq!(cosmos_settings(endpoint, &exists)?.search_queries, SearchQueries::Exists);
        let other = CosmosConfig { search_queries: "subqueries".into(), ..cosmos("managed-identity") };
        let error = cosmos_settings(endpoint, &other).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("store.cosmos.search_queries") && error.contains("key-set or exists"), "{error}");
        Ok(())
    }
}

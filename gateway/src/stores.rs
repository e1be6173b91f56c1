//! Opening the store a URL names, with the store settings of the configuration. Each store joins
//! here as its issue lands.

use std::sync::Arc;
use std::time::Duration;

use fhirgate_engine::storage::Store;
use fhirgate_postgres::{PostgresSettings, PostgresStore, redact_url};
use fhirgate_sqlite::SqliteStore;

use crate::config::StoreConfig;
use crate::error::GatewayError;

/// Opens (and creates or migrates, where needed) the store at `url`.
pub async fn open(url: &str, config: &StoreConfig) -> Result<Arc<dyn Store>, GatewayError> {
    let cannot_open =
        |e: &dyn std::fmt::Display| GatewayError::Store(format!("cannot open `{}`: {e}", redact_url(url)));
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url).await.map_err(|e| cannot_open(&e))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store =
            PostgresStore::connect_configured(url, &postgres_settings(config)?).await.map_err(|e| cannot_open(&e))?;
        return Ok(Arc::new(store));
    }
    Err(GatewayError::Config(format!(
        "unsupported store URL `{}`: expected `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`",
        redact_url(url)
    )))
}

fn postgres_settings(config: &StoreConfig) -> Result<PostgresSettings, GatewayError> {
    let password = match &config.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| GatewayError::Config(format!("cannot read `{}`: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        None => None,
    };
    Ok(PostgresSettings {
        max_connections: config.pool_size,
        statement_timeout: (config.statement_timeout_seconds > 0)
            .then(|| Duration::from_secs(config.statement_timeout_seconds)),
        password,
    })
}

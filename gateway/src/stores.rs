//! Opening the store a URL names. Each store joins here as its issue lands.

use std::sync::Arc;

use fhirgate_engine::storage::Store;

use crate::error::GatewayError;

/// Opens (and creates or migrates, where needed) the store at `url`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, GatewayError> {
    if url.starts_with("sqlite:") {
        let store = fhirgate_sqlite::SqliteStore::connect(url)
            .await
            .map_err(|e| GatewayError::Store(format!("cannot open `{url}`: {e}")))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = fhirgate_postgres::PostgresStore::connect(url)
            .await
            .map_err(|e| GatewayError::Store(format!("cannot open `{}`: {e}", fhirgate_postgres::redact_url(url))))?;
        return Ok(Arc::new(store));
    }
    Err(GatewayError::Config(format!(
        "unsupported store URL `{}`: expected `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`",
        fhirgate_postgres::redact_url(url)
    )))
}

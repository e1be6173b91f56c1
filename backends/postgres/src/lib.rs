//! The PostgreSQL store of fhirgate: for several gateways sharing one database.
//!
//! [`PostgresStore`] implements [`fhirgate_engine::storage::Store`] on a bounded sqlx pool.
//! Every version is a row of `resource_version` whose identity column `pos` is the store's
//! write position (the history snapshot); `resource_current` holds each resource's current
//! version and is the row a writer locks to check its precondition; index entries sit in
//! `index_entry`, keyed by `pos`. JSON is kept as `text`, so it comes back byte for byte.
//! How writes stay race-free and commit-ordered is told in `write.rs`.
//!
//! Search runs on the search tables of `fhirgate-sql` (migrations/0002_search.sql, README.md),
//! which hold the index of each resource's current version.
//!
//! Not for: TLS connections (no TLS feature is
//! built in yet).

mod error;
mod history;
mod instant;
mod read;
mod search;
mod write;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::search::query::SearchQuery;
use fhirgate_engine::storage::{
    Guard, HistoryPage, HistoryQuery, IndexEntry, ResourceVersion, SearchMatch, Store, StoreError, Write,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use error::Error;

/// Default connections of the pool, shared by reads and writes.
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a pooled connection (or a new one) before reporting the store
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection settings beyond the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connections of the pool, shared by reads and writes.
    pub max_connections: u32,
    /// PostgreSQL's `statement_timeout` for every connection; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
    /// A password to use instead of one in the URL (e.g. read from a file); never logged.
    pub password: Option<String>,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self { max_connections: MAX_CONNECTIONS, statement_timeout: None, password: None }
    }
}

/// A FHIR store in one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` or `postgresql://` URL and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_configured(url, &PostgresSettings::default()).await
    }

    /// Connects to a `postgres://` or `postgresql://` URL with `settings` and brings the schema
    /// up to date.
    pub async fn connect_configured(url: &str, settings: &PostgresSettings) -> Result<Self, Error> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Url(redact_url(url)));
        }
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(password) = &settings.password {
            options = options.password(password);
        }
        if let Some(timeout) = settings.statement_timeout {
            options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
        }
        Self::open_pool(options, settings.max_connections).await
    }

    /// Connects with options built in code (database, schema through `options`...) and brings
    /// the schema up to date.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, Error> {
        Self::open_pool(options, MAX_CONNECTIONS).await
    }

    async fn open_pool(options: PgConnectOptions, max_connections: u32) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        tracing::debug!("postgres store connected");
        Ok(store)
    }

    /// Applies the embedded migrations not yet applied (sqlx serialises concurrent runs with an
    /// advisory lock, so several gateways may start at once).
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for them to finish; the store is unusable afterwards.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL with its password (in the user info or a `password=` parameter) replaced by `***`,
/// for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme) = out.find("://").map(|i| i + 3) {
        let authority_end = out[scheme..].find(['/', '?']).map_or(out.len(), |i| scheme + i);
        if let Some(at) = out[scheme..authority_end].rfind('@').map(|i| scheme + i) {
            if let Some(colon) = out[scheme..at].find(':').map(|i| scheme + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let mut params: Vec<String> = out[query + 1..].split('&').map(str::to_owned).collect();
        for param in &mut params {
            if param.starts_with("password=") {
                *param = "password=***".to_owned();
            }
        }
        out = format!("{}?{}", &out[..query], params.join("&"));
    }
    out
}

#[async_trait]
impl Store for PostgresStore {
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::current(&self.pool, resource_type, id).await?)
    }

    async fn vread(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<ResourceVersion>, StoreError> {
        Ok(read::version(&self.pool, resource_type, id, version).await?)
    }

    async fn vread_many(&self, keys: &[SearchMatch]) -> Result<Vec<ResourceVersion>, StoreError> {
        Ok(read::versions(&self.pool, keys).await?)
    }

    async fn index(&self, resource_type: &str, id: &str, version: u64) -> Result<Option<Vec<IndexEntry>>, StoreError> {
        Ok(read::index(&self.pool, resource_type, id, version).await?)
    }

    async fn transact_guarded(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), StoreError> {
        Ok(write::transact(&self.pool, writes, guards).await?)
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(history::page(&self.pool, query).await?)
    }

    async fn search(&self, query: &SearchQuery, limit: u32) -> Result<Vec<SearchMatch>, StoreError> {
        Ok(search::search(&self.pool, query, limit).await?)
    }

    async fn count(&self, query: &SearchQuery) -> Result<u64, StoreError> {
        Ok(search::count(&self.pool, query).await?)
    }

    async fn health(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(HEALTH_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(result) => {
                result.map_err(Error::from)?;
                Ok(())
            }
            Err(_) => Err(StoreError::Unavailable(format!("postgres did not answer within {HEALTH_TIMEOUT:?}"))),
        }
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fhirgate_engine::storage::StoreError;

    use super::{Error, PostgresSettings, PostgresStore, redact_url};

    /// The configured statement timeout is in force on every connection, and a statement that
    /// runs into it is reported as an unavailable store (503), not a generic failure.
    #[tokio::test]
    async fn statement_timeout_is_applied_and_reported() -> Result<(), Box<dyn std::error::Error>> {
        let url = std::env::var("FHIRGATE_TEST_POSTGRES_URL")
            .map_err(|_| "set FHIRGATE_TEST_POSTGRES_URL: run through scripts/with-postgres.sh")?;
        let settings = PostgresSettings {
            max_connections: 2,
            statement_timeout: Some(Duration::from_millis(300)),
            password: Some("ignored-by-trust-auth".into()),
        };
        let store = PostgresStore::connect_configured(&url, &settings).await?;
        let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&store.pool).await?;
        assert_eq!(shown, "300ms");
        let slow = sqlx::query("SELECT pg_sleep(2)").execute(&store.pool).await;
        let error = StoreError::from(Error::from(slow.err().ok_or("the statement should time out")?));
        assert!(matches!(&error, StoreError::Unavailable(m) if m.contains("statement timeout")), "got {error:?}");
        store.close().await;
        Ok(())
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("mysql://u:secret@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact_url("mysql://u@h/db"), "mysql://u@h/db");
        assert_eq!(redact_url("postgres://u:p@ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact_url("postgres://h/db?user=a@b&password=x&sslmode=off"),
            "postgres://h/db?user=a@b&password=***&sslmode=off"
        );
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}

//! The PostgreSQL store of fhirgate: for several gateways sharing one database.
//!
//! [`PostgresStore`] is the relational store of `fhirgate-sql` on a bounded sqlx pool; this
//! crate keeps what is PostgreSQL's own: connecting, the migrations, and the write path. Every
//! version is a row of `resource_version` keyed by `(resource_type, id, version)`, with a write
//! position (`bucket`, `pos`) drawn from its bucket's row in `write_bucket` (`position.rs`): no
//! sequence is shared by every write, and a history snapshot is every bucket's last position;
//! `resource_current` holds each resource's current version and is the row a writer locks to
//! check its precondition; a version's index entries are one JSON array in its row
//! (`index_entries`). JSON is kept as `text`, so it comes back byte for byte. How writes stay
//! race-free and commit-ordered per bucket is told in `write.rs`; every key holds `id`, the
//! distribution column on Citus (README.md).
//!
//! Search runs on the search tables of `fhirgate-sql` (migrations/0002_search.sql, README.md),
//! which hold the index of each resource's current version.
//!
//! Not for: TLS connections (no TLS feature is
//! built in yet).

mod bulk;
mod deferred;
mod load;
mod point;
mod position;
mod write;

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fhirgate_engine::storage::{Guard, StoreError, Write, redact_url};
use fhirgate_sql::{Backend, ReadConnection, SqlStore};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection as _, PgPool};

pub use fhirgate_sql::Error;

/// A FHIR store in one PostgreSQL database.
pub type PostgresStore = SqlStore<PostgresBackend>;

/// Default connections of the pool, shared by reads and writes.
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a pooled connection (or a new one) before reporting the store
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A pooled connection idle for longer than this is checked (one round trip) before it is used,
/// so that one PostgreSQL closed meanwhile (a restart) is replaced instead of failing a request.
/// One used moments ago is not: sqlx's check on every acquire (`test_before_acquire`) was one of
/// a read's three round trips to the database (the others: the query, and sqlx's check as the
/// connection goes back to the pool).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

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

/// What is PostgreSQL's own in a [`PostgresStore`]: its pool.
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    /// Connections kept aside for point reads (`point.rs`).
    kept: Arc<point::Kept>,
}

/// Connects to a `postgres://` or `postgresql://` URL and brings the schema up to date.
pub async fn connect(url: &str) -> Result<PostgresStore, Error> {
    connect_configured(url, &PostgresSettings::default()).await
}

/// Connects to a `postgres://` or `postgresql://` URL with `settings` and brings the schema up to
/// date.
pub async fn connect_configured(url: &str, settings: &PostgresSettings) -> Result<PostgresStore, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Open(format!(
            "not a postgres url: `{}` (expected `postgres://` or `postgresql://`)",
            redact_url(url)
        )));
    }
    let mut options = PgConnectOptions::from_str(url)?;
    if let Some(password) = &settings.password {
        options = options.password(password);
    }
    if let Some(timeout) = settings.statement_timeout {
        options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    open_pool(options, settings.max_connections).await
}

/// Connects with options built in code (database, schema through `options`...) and brings the
/// schema up to date.
pub async fn connect_with(options: PgConnectOptions) -> Result<PostgresStore, Error> {
    open_pool(options, MAX_CONNECTIONS).await
}

async fn open_pool(options: PgConnectOptions, max_connections: u32) -> Result<PostgresStore, Error> {
    // A prepared statement is planned once, for any values. By default PostgreSQL plans it
    // again at every run while a plan for the run's values looks cheaper than the generic
    // one, which for a search page it always did: 0.3-0.7 ms of planning for 0.1-0.4 ms of
    // work (`EXPLAIN ANALYZE`, bench/README.md). The walk of a value's index has one plan for
    // any values; a general search asks for planning per run around its statement
    // (`Driver::plan_each_run`).
    let options = options.options([("plan_cache_mode", "force_generic_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .test_before_acquire(false)
        .before_acquire(check_if_idle)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Some(Duration::from_secs(600)))
        .max_lifetime(Some(Duration::from_secs(1800)))
        .connect_with(options)
        .await?;
    let kept = point::Kept::new(pool.clone(), max_connections.max(1));
    let backend = PostgresBackend { pool, kept };
    backend.migrate().await?;
    tracing::debug!("postgres store connected");
    Ok(SqlStore::new(backend))
}

/// [`CHECK_IDLE_AFTER`]: whether a connection taken from the pool may be used (a failed check
/// closes it, and the pool takes or opens another).
fn check_if_idle(
    connection: &mut PgConnection,
    taken: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if taken.idle_for < CHECK_IDLE_AFTER {
            return Ok(true);
        }
        connection.ping().await.map(|()| true)
    })
}

impl PostgresBackend {
    /// Applies the embedded migrations not yet applied (sqlx serialises concurrent runs with an
    /// advisory lock, so several gateways may start at once).
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    type Database = sqlx::Postgres;
    const KIND: &'static str = "postgres";

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn point_reader(&self) -> Result<ReadConnection<sqlx::Postgres>, Error> {
        Ok(ReadConnection::Own(Box::new(self.kept.take().await?)))
    }

    async fn query_reader(&self) -> Result<ReadConnection<sqlx::Postgres>, Error> {
        self.kept.release_idle();
        Ok(ReadConnection::Pooled(self.pool.acquire().await?))
    }

    async fn transact(&self, writes: Vec<Write>, guards: &[Guard]) -> Result<(), Error> {
        self.kept.release_idle();
        write::transact(&self.pool, &writes, guards).await
    }

    async fn load(&self, writes: &[Write]) -> Result<(), Error> {
        self.kept.release_idle();
        load::load(&self.pool, writes).await
    }

    async fn load_begins(&self) -> Result<(), Error> {
        deferred::set_aside(&self.pool).await
    }

    async fn load_ends(&self) -> Result<bool, Error> {
        deferred::build_one(&self.pool).await
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

    async fn close(&self) {
        self.kept.release_all();
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fhirgate_engine::storage::StoreError;

    use super::{Error, PostgresSettings, connect_configured};

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
        let store = connect_configured(&url, &settings).await?;
        let pool = &store.backend().pool;
        let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(pool).await?;
        assert_eq!(shown, "300ms");
        let plans: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(pool).await?;
        assert_eq!(plans, "force_generic_plan", "with the statement timeout, the plan cache mode is set too");
        let slow = sqlx::query("SELECT pg_sleep(2)").execute(pool).await;
        let error = StoreError::from(Error::from(slow.err().ok_or("the statement should time out")?));
        assert!(matches!(&error, StoreError::Unavailable(m) if m.contains("statement timeout")), "got {error:?}");
        store.close().await;
        Ok(())
    }

    /// A sorted search is planned for its values and its connection plans once for any values
    /// again after it.
    #[tokio::test]
    async fn a_general_search_leaves_its_connection_planning_once() -> Result<(), Box<dyn std::error::Error>> {
        use fhirgate_engine::storage::Store;
        use fhirgate_engine::storage::contract::query::parsed;
        let url = std::env::var("FHIRGATE_TEST_POSTGRES_URL")
            .map_err(|_| "set FHIRGATE_TEST_POSTGRES_URL: run through scripts/with-postgres.sh")?;
        let settings = PostgresSettings { max_connections: 1, ..PostgresSettings::default() };
        let store = connect_configured(&url, &settings).await?;
        let pool = &store.backend().pool;
        let sorted = parsed(Some("Observation"), &[("patient", "p1"), ("_sort", "-date")]);
        store.search_keyed(&sorted, 10).await?;
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(pool).await?;
        assert_eq!(mode, "force_generic_plan");
        store.close().await;
        Ok(())
    }
}

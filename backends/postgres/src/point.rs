//! Connections kept aside for reads of known, small cost (a read by id, a version, the versions a
//! search page names), so that each such read is one round trip to PostgreSQL: sqlx checks a
//! connection with a round trip of its own as it goes back to the pool (always, in sqlx 0.9), so
//! a read by id on a pooled connection was two exchanges for one query.
//!
//! A kept connection stays checked out of the pool, so it counts against the pool's maximum; at
//! most half of them are kept here, so writes and searches always find connections in the pool.
//! A connection goes back to the pool (and through its check) after a statement that failed,
//! when a read was dropped mid-statement (a client gone: what the connection holds then is
//! unknown), once it has been kept for [`MAX_KEPT`] (as the pool renews its own), when more are
//! kept than allowed, when it has been idle for a second as the pool is used for something else
//! (a load of creates alone had half the pool idle here and the writes waiting), and when the
//! store closes. One kept idle for longer than [`crate::CHECK_IDLE_AFTER`] is not used as it
//! is: it goes back to the pool, which checks it before use (PostgreSQL may have restarted).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fhirgate_sql::{Dialect, Driver, Error, KeyedRow, MatchRow, SortKind, Sql, VersionRow};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// The longest a connection is kept here before it goes back to the pool.
const MAX_KEPT: Duration = Duration::from_secs(1800);

/// A kept connection: when it was put aside, and when it was taken from the pool.
type Parked = (PoolConnection<Postgres>, Instant, Instant);

/// The connections kept aside from one pool.
#[derive(Debug)]
pub(crate) struct Kept {
    pool: PgPool,
    idle: Mutex<Vec<Parked>>,
    most: usize,
}

impl Kept {
    /// Keeps at most half of `pool`'s connections (none of a pool of one, whose connection
    /// writes need).
    pub(crate) fn new(pool: PgPool, max_connections: u32) -> Arc<Self> {
        let most = usize::try_from(max_connections / 2).unwrap_or(0);
        Arc::new(Self { pool, idle: Mutex::new(Vec::new()), most })
    }

    /// A kept connection, or one taken from the pool. Kept ones idle for longer than
    /// [`crate::CHECK_IDLE_AFTER`] go back to the pool first, where they are checked (its
    /// `before_acquire`), as any connection is after a second idle.
    pub(crate) async fn take(self: &Arc<Self>) -> Result<Point, Error> {
        self.release(crate::CHECK_IDLE_AFTER);
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (connection, taken) = match kept {
            Some((connection, _, taken)) => (connection, taken),
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(Point { connection: Some(connection), taken, home: Arc::clone(self), clean: true })
    }

    /// Gives the connections kept idle for longer than [`crate::CHECK_IDLE_AFTER`] back to the
    /// pool: called before the pool is used for anything else (a write, a search), so that
    /// connections no point read wants do not keep writes waiting for one.
    pub(crate) fn release_idle(&self) {
        self.release(crate::CHECK_IDLE_AFTER);
    }

    /// Gives every kept connection back to the pool (before it closes, which waits for them).
    pub(crate) fn release_all(&self) {
        self.release(Duration::ZERO);
    }

    /// Gives the connections kept idle for `idle` or longer back to the pool.
    fn release(&self, idle: Duration) {
        let stale: Vec<Parked> = match self.idle.lock() {
            Ok(mut kept) => {
                let (fresh, stale) = std::mem::take(&mut *kept).into_iter().partition(|(_, at, _)| at.elapsed() < idle);
                *kept = fresh;
                stale
            }
            Err(_) => Vec::new(),
        };
        drop(stale); // outside the lock
    }
}

/// A connection for one read; kept aside again when dropped, if it may be.
pub(crate) struct Point {
    connection: Option<PoolConnection<Postgres>>,
    taken: Instant,
    home: Arc<Kept>,
    /// No statement failed or was cut short on it.
    clean: bool,
}

impl Point {
    fn connection(&mut self) -> Result<&mut PoolConnection<Postgres>, Error> {
        self.connection.as_mut().ok_or_else(|| Error::Invalid("a point read's connection was given back".into()))
    }
}

impl Drop for Point {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        if !self.clean || self.taken.elapsed() > MAX_KEPT {
            return; // back to the pool
        }
        let Ok(mut idle) = self.home.idle.lock() else { return };
        if idle.len() < self.home.most {
            idle.push((connection, Instant::now(), self.taken));
        }
    }
}

/// Runs one statement on the point's connection; a failure, or the statement cut short (the
/// future dropped), leaves the connection unclean.
macro_rules! statement {
    ($self:ident, |$c:ident| $call:expr) => {{
        $self.clean = false;
        let $c: &mut sqlx::PgConnection = &mut **$self.connection()?;
        let result = $call.await;
        $self.clean = result.is_ok();
        result
    }};
}

#[async_trait]
impl Driver for Point {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn versions(&mut self, sql: &Sql) -> Result<Vec<VersionRow>, Error> {
        statement!(self, |c| Driver::versions(c, sql))
    }

    async fn matches(&mut self, sql: &Sql) -> Result<Vec<MatchRow>, Error> {
        statement!(self, |c| Driver::matches(c, sql))
    }

    async fn keyed_matches(&mut self, sql: &Sql, kinds: &[SortKind]) -> Result<Vec<KeyedRow>, Error> {
        statement!(self, |c| Driver::keyed_matches(c, sql, kinds))
    }

    async fn pairs(&mut self, sql: &Sql) -> Result<Vec<(String, String)>, Error> {
        statement!(self, |c| Driver::pairs(c, sql))
    }

    async fn integer(&mut self, sql: &Sql) -> Result<Option<i64>, Error> {
        statement!(self, |c| Driver::integer(c, sql))
    }

    async fn execute(&mut self, sql: &Sql) -> Result<(), Error> {
        statement!(self, |c| Driver::execute(c, sql))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fhirgate_sql::{Driver, Sql};

    use crate::{PostgresSettings, connect_configured};

    fn sql(text: &str) -> Sql {
        Sql { text: text.into(), binds: Vec::new() }
    }

    /// A clean point read's connection is kept and used again; one whose statement was cut short
    /// (its future dropped, as when a client goes away) goes back to the pool, so the next point
    /// read never meets the cut statement's answer; the store closes with connections kept.
    #[tokio::test]
    async fn point_reads_keep_only_clean_connections() -> Result<(), Box<dyn std::error::Error>> {
        let url = std::env::var("FHIRGATE_TEST_POSTGRES_URL")
            .map_err(|_| "set FHIRGATE_TEST_POSTGRES_URL: run through scripts/with-postgres.sh")?;
        let settings = PostgresSettings { max_connections: 2, statement_timeout: None, password: None };
        let store = connect_configured(&url, &settings).await?;
        let kept = &store.backend().kept;
        let backend_pid = sql("SELECT pg_backend_pid()::bigint");

        let mut read = kept.take().await?;
        let first = read.integer(&backend_pid).await?;
        drop(read);
        let mut read = kept.take().await?;
        assert_eq!(read.integer(&backend_pid).await?, first, "the connection was kept and used again");

        let slow = sql("SELECT pg_sleep(1)::text::bigint");
        let cut = tokio::time::timeout(Duration::from_millis(50), read.integer(&slow)).await;
        assert!(cut.is_err(), "the slow statement was cut short");
        drop(read);
        let mut read = kept.take().await?;
        assert_ne!(read.integer(&backend_pid).await?, first, "the cut connection was not kept");
        assert_eq!(read.integer(&sql("SELECT 41::bigint + 1")).await?, Some(42));
        drop(read);

        // Kept idle for a second, it goes back to the pool as the pool is used for anything else.
        let kept_now = || kept.idle.lock().map(|idle| idle.len()).unwrap_or(usize::MAX);
        assert_eq!(kept_now(), 1);
        kept.release_idle();
        assert_eq!(kept_now(), 1, "used a moment ago: still kept");
        tokio::time::sleep(crate::CHECK_IDLE_AFTER + Duration::from_millis(100)).await;
        kept.release_idle();
        assert_eq!(kept_now(), 0, "idle for a second: back to the pool");

        tokio::time::timeout(Duration::from_secs(10), store.close()).await?;
        Ok(())
    }
}

//! PostgreSQL: every SQL statement of order-svc lives below this module, one file per table
//! family (`orders`, `products`, `anomalies`, `outbox`, `refunds`, `audit`, `history`,
//! `dead_letters`, `reconciliations`). Values stay their domain types until
//! they are bound to a query parameter; rows become domain types here.
//!
//! Functions that take `&mut PgConnection` run inside the caller's transaction (the
//! transitions lock a row, change it and write its outbox event in one transaction); methods
//! of [`Store`] run on the pool.

pub mod anomalies;
pub mod audit;
pub mod dead_letters;
pub mod history;
pub mod orders;
pub mod outbox;
pub mod products;
pub mod reconciliations;
pub mod refunds;

use std::time::Duration;

use std::sync::Arc;

use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::Notify;

pub use self::orders::{Inserted, NewOrder, OrderFilter, Owner};

/// Why the database could not be prepared at start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server could not be reached or refused the login.
    #[error("PostgreSQL (DATABASE_URL) is not reachable")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("PostgreSQL migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connects and applies the migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, ConnectError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(ConnectError::Connect)?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(ConnectError::Migrate)?;
    Ok(pool)
}

/// A transaction on the order database.
pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The order database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Signalled after a commit that wrote outbox events: wakes this process's relay. In
    /// process rather than PostgreSQL's NOTIFY, which serializes every committing
    /// transaction that used it on one lock (1,155 PAID/s without it, 730 with it, in the
    /// pipeline bench); every outbox write happens in an order-svc process, whose own relay
    /// this wakes, and the relay still looks every second for what another process left.
    outbox_written: Arc<Notify>,
}

impl Store {
    /// Over this pool.
    pub fn new(pool: PgPool) -> Self {
        Store {
            pool,
            outbox_written: Arc::default(),
        }
    }

    /// Says that a committed transaction wrote outbox events (call after the commit: a
    /// relay woken before it would not see them yet).
    pub fn outbox_committed(&self) {
        self.outbox_written.notify_one();
    }

    /// Completes once [`Store::outbox_committed`] was called since the last wait (a call
    /// while nobody waits is kept for the next wait).
    pub async fn outbox_committed_since(&self) {
        self.outbox_written.notified().await;
    }

    /// Starts a transaction (for transitions that lock rows).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A query that failed, or a row that does not hold what the schema promises.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not run the statement.
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// A status change the state machine does not allow (a bug in the caller).
    #[error(transparent)]
    Illegal(#[from] crate::domain::IllegalTransition),
    /// A stored value does not parse as its domain type.
    #[error("the stored {column} is invalid")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// Why it does not parse.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub(crate) fn corrupt(
        column: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Corrupt {
            column,
            source: source.into(),
        }
    }
}

/// What waits for someone: orders in REVIEW and unhealed reconciliation differences (an
/// operator) and unpublished outbox events (the relay), for the `orders_in_review`,
/// `reconciliation_unhealed_differences` and `outbox_*` gauges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Orders in REVIEW.
    pub in_review: i64,
    /// Unhealed differences of the latest reconciled day.
    pub unhealed_differences: i64,
    /// Outbox events not yet published.
    pub outbox_pending: i64,
    /// Age of the oldest of them, in seconds (0 when there is none).
    pub outbox_oldest_seconds: f64,
}

impl Store {
    /// Counts the backlog in one statement (the counts use partial indexes).
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let (in_review, unhealed_differences, outbox_pending, outbox_oldest_seconds): (
            i64,
            i64,
            i64,
            f64,
        ) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'REVIEW'),
                    (SELECT count(*) FROM reconciliation_differences
                     WHERE NOT healed AND day = (SELECT max(day) FROM reconciliations
                                                 WHERE status IN ('MATCHED', 'DIFFERENCES'))),
                    count(*),
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(Backlog {
            in_review,
            unhealed_differences,
            outbox_pending,
            outbox_oldest_seconds,
        })
    }
}

//! One lazily made, shared Redis connection: nothing is connected until first use, a failed
//! connect is not retried for a short backoff (so requests do not each pay a connect timeout
//! while Redis is away), and a connection that failed is forgotten and made again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// How long after a failed connect the next one is tried: short, because a repair waits for
/// it after an outage, and long enough that requests do not each pay a connect timeout while
/// Redis is away.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// The shared connection, and when connecting last failed.
#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

/// A Redis connection made on first use. Cloning shares it.
#[derive(Clone)]
pub struct LazyRedis {
    client: Option<redis::Client>,
    connection: Arc<Mutex<Connection>>,
    timeout: Duration,
}

impl std::fmt::Debug for LazyRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRedis")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LazyRedis {
    /// A connection to `url` (an invalid URL is logged, and every use then fails); each
    /// connect waits at most `timeout`.
    pub fn new(url: &SecretString, timeout: Duration) -> Self {
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| tracing::error!(error = %e, "invalid REDIS_URL"))
            .ok();
        LazyRedis {
            client,
            connection: Arc::default(),
            timeout,
        }
    }

    /// The longest wait for one connect (and, by convention, one command).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection, made now if need be; `None` while Redis cannot be reached.
    pub async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.client.as_ref()?;
        let mut conn = self.connection.lock().await;
        if let Some(m) = &conn.manager {
            return Some(m.clone());
        }
        if conn
            .failed_at
            .is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF)
        {
            return None;
        }
        match tokio::time::timeout(self.timeout, ConnectionManager::new(client.clone())).await {
            Ok(Ok(m)) => {
                conn.manager = Some(m.clone());
                conn.failed_at = None;
                Some(m)
            }
            _ => {
                conn.failed_at = Some(Instant::now());
                None
            }
        }
    }

    /// Forgets a broken connection so the next use reconnects (after the backoff).
    pub async fn reset(&self) {
        let mut conn = self.connection.lock().await;
        conn.manager = None;
        conn.failed_at = Some(Instant::now());
    }
}

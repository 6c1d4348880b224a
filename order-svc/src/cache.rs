//! The order cache in Redis: written on every change, read on every status request, with a
//! TTL. Redis is an accelerator, never a source of truth: every failure or slow answer falls
//! back to PostgreSQL (and is counted), and the request still succeeds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::domain::{Order, OrderId};

/// The cache.
#[derive(Clone)]
pub struct OrderCache {
    client: Option<redis::Client>,
    connection: Arc<Mutex<Connection>>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for OrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The shared connection, and when connecting last failed (to back off instead of paying
/// the connect timeout on every request while Redis is down).
#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

impl OrderCache {
    /// A cache at `url`; nothing is connected until first use.
    pub fn new(url: &SecretString, prefix: String, ttl: Duration, timeout: Duration) -> Self {
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| tracing::error!(error = %e, "invalid REDIS_URL; caching disabled"))
            .ok();
        OrderCache {
            client,
            connection: Arc::default(),
            prefix,
            ttl,
            timeout,
        }
    }

    fn key(&self, id: OrderId) -> String {
        format!("{}order:{id}", self.prefix)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
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
    async fn reset(&self) {
        let mut conn = self.connection.lock().await;
        conn.manager = None;
        conn.failed_at = Some(Instant::now());
    }

    /// The cached order, or `None` on a miss or any Redis trouble.
    pub async fn get(&self, id: OrderId) -> Option<Order> {
        let Some(mut conn) = self.connection().await else {
            fallback("unavailable");
            return None;
        };
        let result: Result<Result<Option<String>, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, conn.get(self.key(id))).await;
        match result {
            Ok(Ok(Some(json))) => match serde_json::from_str(&json) {
                Ok(order) => {
                    metrics::counter!("order_cache_reads_total", "result" => "hit").increment(1);
                    Some(order)
                }
                Err(e) => {
                    tracing::warn!(order_id = %id, error = %e, "unreadable cache entry ignored");
                    fallback("corrupt");
                    None
                }
            },
            Ok(Ok(None)) => {
                metrics::counter!("order_cache_reads_total", "result" => "miss").increment(1);
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis read failed; reading PostgreSQL");
                self.reset().await;
                fallback("error");
                None
            }
            Err(_) => {
                tracing::warn!("redis read timed out; reading PostgreSQL");
                fallback("timeout");
                None
            }
        }
    }

    /// Writes the order after a state change (best effort: a failure is logged and
    /// counted, never returned).
    pub async fn put(&self, order: &Order) {
        self.write(order, false).await;
    }

    /// Fills the cache after a read from PostgreSQL, but only if no entry exists: a state
    /// change committed (and cached) meanwhile must not be overwritten by the older read.
    pub async fn fill(&self, order: &Order) {
        self.write(order, true).await;
    }

    async fn write(&self, order: &Order, only_if_absent: bool) {
        let Some(mut conn) = self.connection().await else {
            metrics::counter!("order_cache_writes_total", "result" => "unavailable").increment(1);
            return;
        };
        let Ok(json) = serde_json::to_string(order) else {
            return;
        };
        let mut command = redis::cmd("SET");
        command.arg(self.key(order.id)).arg(json);
        if only_if_absent {
            command.arg("NX");
        }
        command.arg("EX").arg(self.ttl.as_secs().max(1));
        let result: Result<Result<redis::Value, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, command.query_async(&mut conn)).await;
        let outcome = match result {
            Ok(Ok(_)) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(order_id = %order.id, error = %e, "redis write failed");
                self.reset().await;
                "error"
            }
            Err(_) => "timeout",
        };
        metrics::counter!("order_cache_writes_total", "result" => outcome).increment(1);
    }

    /// Whether Redis answers a PING now.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let pong: Result<Result<String, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, redis::cmd("PING").query_async(&mut conn)).await;
        matches!(pong, Ok(Ok(_)))
    }
}

fn fallback(reason: &'static str) {
    metrics::counter!("order_cache_fallbacks_total", "reason" => reason).increment(1);
}

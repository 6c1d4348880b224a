//! The order cache in Redis: written on every change, read on every status request. Redis is
//! an accelerator, never a source of truth: every failure or slow answer falls back to
//! PostgreSQL (and is counted), and the request still succeeds.
//!
//! Every entry carries the order's `version` (raised by every change of the row), and every
//! write is a compare-and-set in Redis ([`WRITE_IF_NEWER`]): an entry is replaced only by a
//! newer one, so a fill from an older read, or a change that reaches Redis late, never hides
//! a newer status. When writing a change fails, the entry is invalidated with a tombstone of
//! the new version (which also refuses older fills); when even that fails, the invalidation
//! is remembered, the entry is not trusted by this process, and the tombstone is retried
//! ([`OrderCache::repair_pending`], looped by [`OrderCache::spawn_repairs`]) until Redis
//! takes it. The TTL is a backstop, not the repair.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use service_runtime::redis::LazyRedis;

use crate::domain::{Order, OrderId};

/// The cache.
#[derive(Clone)]
pub struct OrderCache {
    redis: LazyRedis,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    /// Orders whose entry may be stale (a change could not be written, nor the entry
    /// invalidated), with the version the tombstone must carry. Their entries are not read
    /// until the tombstone is in.
    pending: Arc<std::sync::Mutex<HashMap<OrderId, i64>>>,
}

impl std::fmt::Debug for OrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// How often pending invalidations are retried.
const REPAIR_PERIOD: Duration = Duration::from_millis(200);

/// Writes `ARGV[2]` (an entry: JSON with a `version`) under `KEYS[1]` for `ARGV[3]` seconds
/// unless the entry there is as new as `ARGV[1]`: an entry of an equal version is kept,
/// except a tombstone, which an order of its version replaces (`ARGV[4]` = `order`). An
/// entry without a readable version counts as version 0. Answers 1 when it wrote.
const WRITE_IF_NEWER: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if ok and type(entry) == 'table' then
    local have = tonumber(entry['version']) or 0
    local want = tonumber(ARGV[1])
    if have > want then return 0 end
    if have == want and not (entry['tombstone'] == true and ARGV[4] == 'order') then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// What an entry holds.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry {
    /// The order was changed to this version but the change could not be cached: a miss,
    /// and a barrier against fills older than it.
    Tombstone { version: i64, tombstone: bool },
    /// The order as of its version.
    Order(Box<Order>),
}

/// A tombstone as stored.
#[derive(Deserialize)]
struct TombstoneFields {
    version: i64,
    tombstone: bool,
}

impl Entry {
    /// Reads an entry. Nearly every entry is an order, so it is read as one directly; only
    /// what is not an order is tried as a tombstone (an untagged enum would first buffer the
    /// whole document, a tenth of the status poll's CPU). A document that is neither is
    /// refused with the order's error.
    fn decode(json: &str) -> Result<Entry, serde_json::Error> {
        match serde_json::from_str::<Order>(json) {
            Ok(order) => Ok(Entry::Order(Box::new(order))),
            Err(not_an_order) => serde_json::from_str::<TombstoneFields>(json)
                .map(|t| Entry::Tombstone {
                    version: t.version,
                    tombstone: t.tombstone,
                })
                .map_err(|_| not_an_order),
        }
    }
}

/// Why a write did not reach Redis.
#[derive(Debug, Clone, Copy)]
enum WriteFailure {
    Unavailable,
    Error,
    Timeout,
}

impl WriteFailure {
    fn label(self) -> &'static str {
        match self {
            WriteFailure::Unavailable => "unavailable",
            WriteFailure::Error => "error",
            WriteFailure::Timeout => "timeout",
        }
    }
}

impl OrderCache {
    /// A cache at `url`; nothing is connected until first use.
    pub fn new(url: &SecretString, prefix: String, ttl: Duration, timeout: Duration) -> Self {
        OrderCache {
            redis: LazyRedis::new(url, timeout),
            prefix,
            ttl,
            timeout,
            pending: Arc::default(),
        }
    }

    fn key(&self, id: OrderId) -> String {
        format!("{}order:{id}", self.prefix)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        self.redis.connection().await
    }

    async fn reset(&self) {
        self.redis.reset().await;
    }

    /// The cached order, or `None` on a miss, a tombstone, an entry that may be stale (an
    /// invalidation of it is pending) or any Redis trouble.
    pub async fn get(&self, id: OrderId) -> Option<Order> {
        if self.pending_version(id).is_some() {
            fallback("pending_invalidation");
            return None;
        }
        let Some(mut conn) = self.connection().await else {
            fallback("unavailable");
            return None;
        };
        let result: Result<Result<Option<String>, redis::RedisError>, _> = tokio::time::timeout(
            self.timeout,
            redis::cmd("GET").arg(self.key(id)).query_async(&mut conn),
        )
        .await;
        match result {
            Ok(Ok(Some(json))) => match Entry::decode(&json) {
                Ok(Entry::Order(order)) => {
                    metrics::counter!("order_cache_reads_total", "result" => "hit").increment(1);
                    Some(*order)
                }
                Ok(Entry::Tombstone { .. }) => {
                    metrics::counter!("order_cache_reads_total", "result" => "tombstone")
                        .increment(1);
                    None
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

    /// Caches the order after a change of it. If that fails, the entry is invalidated (a
    /// tombstone of this version); if that fails too, the invalidation is retried until it
    /// succeeds. Never returns an error: the change is committed, the cache only follows.
    pub async fn put(&self, order: &Order) {
        match self.write_order(order).await {
            Ok(()) => self.settled(order.id, order.version),
            Err(failure) => {
                tracing::warn!(order_id = %order.id, version = order.version, failure = failure.label(), "caching a change failed; invalidating the entry");
                self.invalidate(order.id, order.version).await;
            }
        }
    }

    /// Caches the order after a read from PostgreSQL, unless the entry there is as new (a
    /// change committed and cached meanwhile is never replaced by this older read).
    pub async fn fill(&self, order: &Order) {
        if self.write_order(order).await.is_ok() {
            self.settled(order.id, order.version);
        }
    }

    /// Writes `order` as its entry, if newer than what Redis holds.
    async fn write_order(&self, order: &Order) -> Result<(), WriteFailure> {
        let entry = Entry::Order(Box::new(order.clone()));
        self.write_entry(order.id, order.version, &entry, "order")
            .await
    }

    /// Writes a tombstone of `version` for `id`, or remembers to.
    async fn invalidate(&self, id: OrderId, version: i64) {
        let tombstone = Entry::Tombstone {
            version,
            tombstone: true,
        };
        let result = self.write_entry(id, version, &tombstone, "tombstone").await;
        let outcome = match result {
            Ok(()) => {
                self.settled(id, version);
                "ok"
            }
            Err(failure) => {
                let mut pending = self.lock_pending();
                let wanted = pending.entry(id).or_insert(version);
                *wanted = (*wanted).max(version);
                metrics::gauge!("order_cache_pending_invalidations").set(pending.len() as f64);
                failure.label()
            }
        };
        metrics::counter!("order_cache_invalidations_total", "result" => outcome).increment(1);
    }

    /// Retries every pending invalidation once (stopping at the first failure: Redis is
    /// still away). Returns how many are still pending.
    pub async fn repair_pending(&self) -> usize {
        let due: Vec<(OrderId, i64)> = self
            .lock_pending()
            .iter()
            .map(|(id, version)| (*id, *version))
            .collect();
        for (id, version) in due {
            let tombstone = Entry::Tombstone {
                version,
                tombstone: true,
            };
            match self.write_entry(id, version, &tombstone, "tombstone").await {
                Ok(()) => {
                    self.settled(id, version);
                    tracing::info!(order_id = %id, version, "stale cache entry invalidated after Redis came back");
                    metrics::counter!("order_cache_invalidations_total", "result" => "repaired")
                        .increment(1);
                }
                Err(_) => break,
            }
        }
        let pending = self.lock_pending();
        metrics::gauge!("order_cache_pending_invalidations").set(pending.len() as f64);
        pending.len()
    }

    /// Retries pending invalidations every [`REPAIR_PERIOD`] until `stop` completes.
    pub fn spawn_repairs(
        &self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(REPAIR_PERIOD) => {}
                }
                if !cache.lock_pending().is_empty() {
                    cache.repair_pending().await;
                }
            }
        })
    }

    /// The version an invalidation of `id` is pending for, if one is.
    fn pending_version(&self, id: OrderId) -> Option<i64> {
        self.lock_pending().get(&id).copied()
    }

    /// Redis holds an entry of `id` at least as new as `version`: an invalidation pending
    /// for that version or an older one is done.
    fn settled(&self, id: OrderId, version: i64) {
        let mut pending = self.lock_pending();
        if pending.get(&id).is_some_and(|wanted| *wanted <= version) {
            pending.remove(&id);
            metrics::gauge!("order_cache_pending_invalidations").set(pending.len() as f64);
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<OrderId, i64>> {
        // The map stays consistent under any panic (single inserts and removes).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs [`WRITE_IF_NEWER`]: `Ok` when Redis answered (whether it wrote or kept a newer
    /// entry), else why not.
    async fn write_entry(
        &self,
        id: OrderId,
        version: i64,
        entry: &Entry,
        kind: &'static str,
    ) -> Result<(), WriteFailure> {
        let Some(mut conn) = self.connection().await else {
            metrics::counter!("order_cache_writes_total", "result" => "unavailable").increment(1);
            return Err(WriteFailure::Unavailable);
        };
        let Ok(json) = serde_json::to_string(entry) else {
            return Err(WriteFailure::Error);
        };
        // EVAL rather than EVALSHA: a few hundred bytes per change, and no SCRIPT LOAD to
        // redo after a Redis restart (Redis caches the compiled script by its hash anyway).
        let mut command = redis::cmd("EVAL");
        command
            .arg(WRITE_IF_NEWER)
            .arg(1)
            .arg(self.key(id))
            .arg(version)
            .arg(json)
            .arg(self.ttl.as_secs().max(1))
            .arg(kind);
        let result: Result<Result<i64, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, command.query_async(&mut conn)).await;
        let (outcome, result) = match result {
            Ok(Ok(1)) => ("ok", Ok(())),
            Ok(Ok(_)) => ("older", Ok(())),
            Ok(Err(e)) => {
                tracing::warn!(order_id = %id, error = %e, "redis write failed");
                self.reset().await;
                ("error", Err(WriteFailure::Error))
            }
            Err(_) => ("timeout", Err(WriteFailure::Timeout)),
        };
        metrics::counter!("order_cache_writes_total", "result" => outcome).increment(1);
        result
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_reads_back_and_what_is_neither_is_refused() {
        let json = serde_json::to_string(&Entry::Tombstone {
            version: 7,
            tombstone: true,
        })
        .unwrap();
        assert!(matches!(
            Entry::decode(&json),
            Ok(Entry::Tombstone {
                version: 7,
                tombstone: true
            })
        ));
        assert!(Entry::decode(r#"{"version":1}"#).is_err());
        assert!(Entry::decode("not json").is_err());
    }
}

//! The Redis order cache against the real Redis (and PostgreSQL, through the API): entries are
//! versioned, so an older copy never replaces a newer one whichever is written first; a change
//! that could not be cached while Redis was away is visible within a second of its return;
//! an unreachable Redis is a miss, not an error.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use order_svc::cache::OrderCache;
use order_svc::domain::{Order, OrderItem, OrderStatus, new_out_trade_no};
use reqwest::StatusCode;
use secrecy::SecretString;
use test_support::Proxy;
use time::OffsetDateTime;
use wechat_pay::Fen;

/// How soon after Redis returns the status must be right again.
const WITHIN_A_SECOND: Duration = Duration::from_secs(1);

fn order(status: OrderStatus, version: i64) -> Order {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    Order {
        id: uuid::Uuid::now_v7().into(),
        out_trade_no: new_out_trade_no(),
        openid: wechat_pay::OpenId::parse("oCacheTest").unwrap(),
        status,
        amount: Fen::new(1).unwrap(),
        items: vec![OrderItem {
            sku: "PIN-1FEN".into(),
            name: "pin".into(),
            quantity: 1,
            unit_price_fen: Fen::new(1).unwrap(),
        }],
        created_at: now,
        expires_at: now + time::Duration::minutes(15),
        prepay_id: None,
        prepay_expires_at: None,
        paid_at: None,
        transaction_id: None,
        refunded: Fen::ZERO,
        refunding: Fen::ZERO,
        version,
    }
}

/// The same order, changed to `status` (one version later).
fn changed(order: &Order, status: OrderStatus) -> Order {
    let mut next = order.clone();
    next.status = status;
    next.version += 1;
    next
}

fn cache_at(url: String, prefix: &str) -> OrderCache {
    OrderCache::new(
        &SecretString::from(url),
        prefix.to_owned(),
        Duration::from_secs(60),
        Duration::from_millis(300),
    )
}

async fn redis_cache() -> OrderCache {
    support::require_redis().await;
    cache_at(support::redis_url(), &fresh_prefix())
}

fn fresh_prefix() -> String {
    format!("minipay-cache-test-{}:", support::unique_id())
}

fn redis_addr() -> SocketAddr {
    let url = support::redis_url();
    let rest = url.trim_start_matches("redis://");
    rest.split(['/', '?']).next().unwrap().parse().unwrap()
}

async fn status_in(cache: &OrderCache, order: &Order) -> Option<OrderStatus> {
    cache.get(order.id).await.map(|o| o.status)
}

#[tokio::test]
async fn an_older_fill_after_a_change_keeps_the_change() {
    let cache = redis_cache().await;
    let pending = order(OrderStatus::Pending, 1);
    let paid = changed(&pending, OrderStatus::Paid);
    cache.put(&paid).await;
    cache.fill(&pending).await;
    assert_eq!(status_in(&cache, &pending).await, Some(OrderStatus::Paid));
}

#[tokio::test]
async fn a_change_after_an_older_fill_replaces_it() {
    let cache = redis_cache().await;
    let pending = order(OrderStatus::Pending, 1);
    cache.fill(&pending).await;
    cache.put(&changed(&pending, OrderStatus::Paid)).await;
    assert_eq!(status_in(&cache, &pending).await, Some(OrderStatus::Paid));
}

#[tokio::test]
async fn a_newer_fill_repairs_an_older_entry() {
    let cache = redis_cache().await;
    let pending = order(OrderStatus::Pending, 1);
    cache.put(&pending).await;
    cache.fill(&changed(&pending, OrderStatus::Paid)).await;
    assert_eq!(status_in(&cache, &pending).await, Some(OrderStatus::Paid));
}

#[tokio::test]
async fn a_change_that_arrives_late_never_replaces_a_newer_one() {
    let cache = redis_cache().await;
    let pending = order(OrderStatus::Pending, 1);
    let review = changed(&changed(&pending, OrderStatus::Closed), OrderStatus::Review);
    let closed = changed(&pending, OrderStatus::Closed);
    cache.put(&review).await;
    cache.put(&closed).await;
    assert_eq!(status_in(&cache, &pending).await, Some(OrderStatus::Review));
}

#[tokio::test]
async fn an_unreachable_redis_is_a_miss() {
    let cache = cache_at(format!("redis://{}", support::dead_addr()), "x:");
    let o = order(OrderStatus::Pending, 1);
    cache.put(&o).await;
    assert!(cache.get(o.id).await.is_none());
    assert!(!cache.ping().await);
}

#[tokio::test]
async fn a_change_missed_while_redis_was_away_reaches_other_replicas_within_a_second() {
    support::require_redis().await;
    let proxy = Proxy::start(redis_addr()).await;
    // `writer` reaches Redis through the proxy; `reader` is another replica, always there.
    let prefix = fresh_prefix();
    let writer = cache_at(format!("redis://{}", proxy.addr), &prefix);
    let reader = cache_at(support::redis_url(), &prefix);
    let repairs = writer.spawn_repairs(std::future::pending());
    let pending = order(OrderStatus::Pending, 1);
    writer.put(&pending).await;
    assert_eq!(
        status_in(&reader, &pending).await,
        Some(OrderStatus::Pending)
    );

    proxy.down();
    let paid = changed(&pending, OrderStatus::Paid);
    writer.put(&paid).await;
    // Neither the change nor the invalidation got through: the writer no longer trusts the
    // entry, and an older fill cannot repair anything.
    assert!(writer.get(pending.id).await.is_none());
    reader.fill(&pending).await;
    assert_eq!(
        status_in(&reader, &pending).await,
        Some(OrderStatus::Pending)
    );

    proxy.up();
    let back = Instant::now();
    support::wait_until(
        WITHIN_A_SECOND,
        "the stale PENDING entry is gone",
        || async { status_in(&reader, &pending).await != Some(OrderStatus::Pending) },
    )
    .await;
    eprintln!(
        "stale entry gone {:?} after Redis came back",
        back.elapsed()
    );
    // The invalidation is a barrier: the older read cannot come back, the newer one can.
    reader.fill(&pending).await;
    assert_eq!(status_in(&reader, &pending).await, None);
    reader.fill(&paid).await;
    assert_eq!(status_in(&reader, &pending).await, Some(OrderStatus::Paid));
    assert_eq!(writer.repair_pending().await, 0);
    repairs.abort();
}

#[tokio::test]
async fn a_cancel_while_redis_is_away_is_polled_within_a_second_of_its_return() {
    support::require_redis().await;
    let proxy = Proxy::start(redis_addr()).await;
    let s = support::stack_with(support::Options {
        redis_url: Some(format!("redis://{}", proxy.addr)),
        workers: false,
        ..support::Options::default()
    })
    .await;
    let (token, id, _) = s.prepaid_order("carl").await;
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PENDING");
    let key = format!("{}order:{id}", s.redis_prefix);
    let redis = redis::Client::open(support::redis_url()).unwrap();
    let mut direct = redis.get_multiplexed_async_connection().await.unwrap();
    let cached = || {
        let (mut direct, key) = (direct.clone(), key.clone());
        async move {
            let entry: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut direct)
                .await
                .unwrap();
            entry
        }
    };
    assert!(cached().await.unwrap().contains("PENDING"));

    proxy.down();
    let cancel = s.api.cancel(&token, &id).await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    assert_eq!(s.api.get(&token, &id).await.body["status"], "CLOSED");
    assert!(
        cached().await.unwrap().contains("PENDING"),
        "Redis still holds the entry from before the cancel"
    );

    proxy.up();
    let back = Instant::now();
    support::wait_until(WITHIN_A_SECOND, "Redis no longer holds PENDING", || async {
        cached()
            .await
            .is_none_or(|entry| !entry.contains("PENDING"))
    })
    .await;
    eprintln!(
        "stale entry gone {:?} after Redis came back",
        back.elapsed()
    );
    assert_eq!(s.api.get(&token, &id).await.body["status"], "CLOSED");
    let _ = redis::cmd("DEL")
        .arg(&key)
        .query_async::<i64>(&mut direct)
        .await;
}

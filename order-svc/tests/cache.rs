//! The Redis order cache against the real Redis: a fill from an older read never overwrites
//! a newer state change, and an unreachable Redis is a miss, not an error.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use order_svc::cache::OrderCache;
use order_svc::domain::{Order, OrderItem, OrderStatus, new_out_trade_no};
use secrecy::SecretString;
use time::OffsetDateTime;
use wechat_pay::Fen;

fn order(status: OrderStatus) -> Order {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    Order {
        id: uuid::Uuid::from_u128(0x0190_b0f0_0000_7000_8000_0000_0000_0001).into(),
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
    }
}

#[tokio::test]
async fn a_stale_fill_never_overwrites_a_state_change() {
    support::require_redis().await;
    let prefix = format!("minipay-cache-test-{}:", std::process::id());
    let cache = OrderCache::new(
        &SecretString::from(support::redis_url()),
        prefix,
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    let pending = order(OrderStatus::Pending);
    let mut paid = pending.clone();
    paid.status = OrderStatus::Paid;
    cache.put(&paid).await;
    cache.fill(&pending).await;
    assert_eq!(
        cache.get(pending.id).await.unwrap().status,
        OrderStatus::Paid
    );
    cache.put(&pending).await;
    assert_eq!(
        cache.get(pending.id).await.unwrap().status,
        OrderStatus::Pending,
        "a state change always writes"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_a_miss() {
    let dead = format!("redis://{}", support::dead_addr());
    let cache = OrderCache::new(
        &SecretString::from(dead),
        "x:".into(),
        Duration::from_secs(60),
        Duration::from_millis(200),
    );
    let o = order(OrderStatus::Pending);
    cache.put(&o).await;
    assert!(cache.get(o.id).await.is_none());
    assert!(!cache.ping().await);
}

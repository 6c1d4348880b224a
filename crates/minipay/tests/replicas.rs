//! Two replicas of everything, proven: two order-svc, two notify-svc and two pay-gateway-svc
//! processes (started as `minipay up --replicas 2` starts them) behind the same PostgreSQL,
//! Redis and RabbitMQ. Buyers order and prepay through both order-svc replicas, WeChat sends
//! each notification three times and out of order to both notify-svc replicas, some orders
//! are left to expire (both sweepers race to close them). Afterwards every order was paid
//! once or closed once, and announced once.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use minipay::process::LogSink;
use minipay::purchase::Shop;
use minipay::stack::Ports;
use prost::Message as _;
use proto::events::v1::{OrderClosed, OrderPaid};
use serde_json::json;
use test_support::{OrderEvents, queue_state, wait_until};

mod support;

/// Orders placed; the first `PAID` of them are paid, the rest expire.
const ORDERS: usize = 240;
const PAID: usize = 180;
/// Buyers (logins are rate-limited per client address: a few per replica).
const BUYERS: usize = 8;
/// Prepay needs a minute left for WeChat; the rest is time to place and prepay them all.
const ORDER_TTL: &str = "75s";

#[tokio::test]
async fn two_replicas_of_each_service_pay_once_close_once_and_announce_once() {
    let (mut config, cleanup) = support::isolated("r", LogSink::keep()).await;
    let database = config.database_url.clone();
    config.order_ttl = ORDER_TTL.into();
    config.sweep_interval = "1s".into();
    // A second replica of each service (its ports are picked by `start`).
    config.more_replicas = vec![Ports::standard_replica(1)];
    let events = OrderEvents::listen(&cleanup.topology).await;
    let stack = support::start(config).await;
    let urls = stack.order_urls();
    assert_eq!(urls.len(), 2);
    let shops: Vec<Shop> = urls
        .iter()
        .map(|u| Shop::new(u.clone(), stack.sim_url()))
        .collect();

    // Each buyer logs in at one replica; orders are placed and prepaid alternately through
    // both (a session from one replica is good at the other).
    let mut tokens = Vec::new();
    for b in 0..BUYERS {
        tokens.push(shops[b % 2].login(&format!("rep{b}")).await.unwrap());
    }
    let placed: Vec<(String, String, String)> = futures_util::stream::iter(0..ORDERS)
        .map(|n| {
            let (shop, other) = (&shops[n % 2], &shops[(n + 1) % 2]);
            let token = tokens[n % BUYERS].clone();
            async move {
                let order = shop
                    .create_order(&token, json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]))
                    .await
                    .unwrap();
                let id = order["id"].as_str().unwrap().to_owned();
                let number = order["out_trade_no"].as_str().unwrap().to_owned();
                other.payment(&token, &id).await.unwrap();
                (token, id, number)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    // WeChat: every notification three times, released in reverse batches of five.
    shops[0]
        .faults(json!({ "duplicate_notifications": 3, "reorder_notifications": 5 }))
        .await
        .unwrap();
    let (paid, unpaid) = placed.split_at(PAID);
    futures_util::stream::iter(paid)
        .for_each_concurrent(16, |(_, _, number)| async {
            shops[0].user_pays(number).await.unwrap();
        })
        .await;

    // Every paid order becomes PAID, every other one CLOSED (expired), seen through either
    // replica's API.
    let db = sqlx::PgPool::connect(&database).await.unwrap();
    wait_until(
        Duration::from_secs(150),
        "every order is PAID or CLOSED",
        || async {
            let counts: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status ORDER BY 1")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            let by: HashMap<String, i64> = counts.into_iter().collect();
            let done = by.get("PAID").copied().unwrap_or(0) == PAID as i64
                && by.get("CLOSED").copied().unwrap_or(0) == (ORDERS - PAID) as i64;
            if done { Ok(()) } else { Err(by) }
        },
    )
    .await;
    for (i, (token, id, _)) in paid.iter().enumerate().step_by(37) {
        let order = shops[i % 2].order(token, id).await.unwrap();
        assert_eq!(order["status"], "PAID", "{order}");
    }
    for (i, (token, id, _)) in unpaid.iter().enumerate().step_by(13) {
        let order = shops[(i + 1) % 2].order(token, id).await.unwrap();
        assert_eq!(order["status"], "CLOSED", "{order}");
    }

    // Paid once: one transaction id per paid order, all different; no anomaly.
    let (with_txn, distinct_txn): (i64, i64) = sqlx::query_as(
        "SELECT count(transaction_id), count(DISTINCT transaction_id) FROM orders WHERE status = 'PAID'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((with_txn, distinct_txn), (PAID as i64, PAID as i64));
    let (anomalies,): (i64,) = sqlx::query_as("SELECT count(*) FROM payment_anomalies")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(anomalies, 0);

    // Announced once: one order.paid per paid order and one order.closed per closed order,
    // none twice, although two relays publish from the same outbox.
    wait_until(PATIENCE_EVENTS, "every event is published", || async {
        let (p, c) = (events.count("order.paid"), events.count("order.closed"));
        if p >= PAID && c >= ORDERS - PAID {
            Ok(())
        } else {
            Err((p, c))
        }
    })
    .await;
    let (mut paid_ids, mut closed_ids) = (HashMap::new(), HashMap::new());
    for (key, body) in events.seen.lock().unwrap().iter() {
        match key.as_str() {
            "order.paid" => {
                *paid_ids
                    .entry(OrderPaid::decode(body.as_slice()).unwrap().order_id)
                    .or_insert(0) += 1;
            }
            "order.closed" => {
                *closed_ids
                    .entry(OrderClosed::decode(body.as_slice()).unwrap().order_id)
                    .or_insert(0) += 1;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(paid_ids.len(), PAID);
    assert_eq!(closed_ids.len(), ORDERS - PAID);
    assert!(paid_ids.values().all(|&n| n == 1), "an order.paid twice");
    assert!(
        closed_ids.values().all(|&n| n == 1),
        "an order.closed twice"
    );
    for (_, id, _) in paid {
        assert!(paid_ids.contains_key(id), "{id} was not announced");
    }

    // Nothing dead-lettered; every notification copy was acked by one notify-svc or the other.
    let dlq = cleanup.topology.order_payments_dlq();
    assert_eq!(queue_state(&dlq).await.map(|q| q.messages), Some(0));
    for (_, _, number) in paid.iter().step_by(29) {
        let view = shops[0].at_wechat(number).await.unwrap();
        assert_eq!(view["state"], "SUCCESS");
    }
    support::stop_cleanly(stack).await;
}

/// How long the relays get to publish what the database holds.
const PATIENCE_EVENTS: Duration = Duration::from_secs(30);

//! End to end: the real binaries as separate processes, started exactly as `minipay up`
//! starts them (each test on its own free ports, database, Redis prefix and AMQP prefix),
//! driven only through the public HTTP API and the simulator's control API.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use minipay::infra::{host_port, reachable};
use minipay::process::LogSink;
use minipay::purchase::Shop;
use minipay::stack::{self, Ports, RunningStack, StackConfig};
use rand::Rng;
use reqwest::Method;
use serde_json::json;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn require(service: &str, url: &str, port: u16) {
    let (host, port) = host_port(url, port);
    assert!(
        reachable(&host, port).await,
        "{service} is not reachable at {host}:{port}. Start it with `bash scripts/ensure-services.sh` (or `cargo run -p minipay -- up`, which starts private instances), or set its URL variable."
    );
}

/// A stack of real processes, and what to clean up after it.
struct E2e {
    stack: Option<RunningStack>,
    shop: Shop,
    _cleanup: Cleanup,
}

/// Removes a test's queues and exchanges when it ends, also when it fails (even while the
/// stack is still starting).
struct Cleanup {
    prefix: String,
}

impl E2e {
    async fn start(tweak: impl FnOnce(&mut StackConfig)) -> E2e {
        let admin = env_or(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        let redis = env_or("REDIS_URL", "redis://127.0.0.1:6379");
        let amqp = env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        require("PostgreSQL", &admin, 5432).await;
        require("Redis", &redis, 6379).await;
        require("RabbitMQ", &amqp, 5672).await;
        let id = rand::rng().random::<u32>();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let database = stack::ensure_database(&admin, &format!("minipay_test_{now}_{id:08x}"))
            .await
            .unwrap();
        let mut config =
            StackConfig::local(stack::bin_dir(), database, redis, amqp, LogSink::keep());
        config.ports = Ports::ephemeral().unwrap();
        config.amqp_prefix = format!("e{id:08x}.");
        config.redis_prefix = format!("minipay-e2e-{id:08x}:");
        config.sim_time_scale = 0.001;
        config.sweep_interval = "1s".into();
        tweak(&mut config);
        let cleanup = Cleanup {
            prefix: config.amqp_prefix.clone(),
        };
        // Free ports are picked by the OS and released before the services bind them, so
        // another process may take one in between: start again on new ports.
        let mut attempt = 0;
        let stack = loop {
            let mut attempt_config = config.clone();
            attempt_config.ports = Ports::ephemeral().unwrap();
            match RunningStack::start(attempt_config, &|_| {}).await {
                Ok(stack) => break stack,
                Err(e) if attempt < 3 && e.to_string().contains("already in use") => attempt += 1,
                Err(e) => panic!("the stack did not start: {e}"),
            }
        };
        let shop = Shop::new(stack.order_url(), stack.sim_url());
        E2e {
            stack: Some(stack),
            shop,
            _cleanup: cleanup,
        }
    }

    async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            let unclean = stack.stop().await;
            assert!(
                unclean.is_empty(),
                "these did not stop on SIGTERM: {unclean:?}"
            );
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Remove this test's queues and exchanges (also when the test failed).
        let topology = messaging::Topology::new(self.prefix.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = messaging::connect(
                    &env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                    "e2e-cleanup",
                )
                .await
                else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                topology.delete_all(&ch).await;
                let _ = conn.close(200, "cleanup").await;
            });
        })
        .join();
    }
}

#[tokio::test]
async fn happy_path() {
    let e = E2e::start(|_| {}).await;
    let receipt = e.shop.purchase("ana", &|_, _| {}).await.unwrap();
    assert_eq!(receipt.transaction_id.len(), 28);
    let at_wechat = e.shop.at_wechat(&receipt.out_trade_no).await.unwrap();
    assert_eq!(at_wechat["state"], "SUCCESS");
    assert_eq!(
        at_wechat["notifications"]["attempts"][0]["outcome"],
        "acked"
    );
    e.stop().await;
}

#[tokio::test]
async fn two_users_in_parallel() {
    let e = E2e::start(|_| {}).await;
    let (a, b) = tokio::join!(
        e.shop.purchase("bea", &|_, _| {}),
        e.shop.purchase("cal", &|_, _| {})
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.order_id, b.order_id);
    // Each sees their own order and not the other's.
    let (status, _) = e
        .shop
        .call(
            Method::GET,
            &format!("{}/api/v1/orders/{}", e.shop.order, b.order_id),
            Some(&a.token),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (_, mine) = e
        .shop
        .call(
            Method::GET,
            &format!("{}/api/v1/orders", e.shop.order),
            Some(&a.token),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1);
    e.stop().await;
}

#[tokio::test]
async fn a_notification_duplicated_five_times() {
    let e = E2e::start(|_| {}).await;
    e.shop
        .faults(json!({ "duplicate_notifications": 5 }))
        .await
        .unwrap();
    let receipt = e.shop.purchase("dee", &|_, _| {}).await.unwrap();
    let at_wechat = e.shop.at_wechat(&receipt.out_trade_no).await.unwrap();
    let attempts = at_wechat["notifications"]["attempts"].as_array().unwrap();
    // Five concurrent copies per attempt; under load a copy may get the failure ack (e.g. a
    // slow confirm), and WeChat then simply tries again: what matters is one PAID order.
    assert!(
        attempts.len() >= 5 && attempts.len() % 5 == 0,
        "{attempts:?}"
    );
    assert!(
        attempts.iter().any(|a| a["outcome"] == "acked"),
        "{attempts:?}"
    );
    let order = e
        .shop
        .order(&receipt.token, &receipt.order_id)
        .await
        .unwrap();
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["transaction_id"], at_wechat["transaction_id"]);
    e.stop().await;
}

#[tokio::test]
async fn a_dropped_notification_is_recovered_by_the_active_query() {
    let e = E2e::start(|c| c.payment_query_after = "1s".into()).await;
    e.shop
        .faults(json!({ "drop_notifications": true }))
        .await
        .unwrap();
    let receipt = e.shop.purchase("eve", &|_, _| {}).await.unwrap();
    let at_wechat = e.shop.at_wechat(&receipt.out_trade_no).await.unwrap();
    assert_eq!(at_wechat["notifications"]["dropped"], true);
    assert_eq!(
        at_wechat["notifications"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    e.stop().await;
}

#[tokio::test]
async fn cancel() {
    let e = E2e::start(|_| {}).await;
    let token = e.shop.login("fox").await.unwrap();
    let order = e
        .shop
        .create_order(&token, json!([{ "sku": "TEA-OOLONG", "quantity": 1 }]))
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    e.shop.payment(&token, id).await.unwrap();
    let (status, cancelled) = e
        .shop
        .call(
            Method::POST,
            &format!("{}/api/v1/orders/{id}/cancel", e.shop.order),
            Some(&token),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CLOSED");
    let at_wechat = e
        .shop
        .at_wechat(order["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(at_wechat["state"], "CLOSED");
    let (status, _) = e
        .shop
        .call(
            Method::POST,
            &format!("{}/api/v1/orders/{id}/payment", e.shop.order),
            Some(&token),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 409);
    e.stop().await;
}

#[tokio::test]
async fn expiry() {
    // WeChat needs at least a minute between prepay and time_expire, so this order lives 62 s.
    let e = E2e::start(|c| c.order_ttl = "62s".into()).await;
    let token = e.shop.login("gil").await.unwrap();
    let order = e
        .shop
        .create_order(&token, json!([{ "sku": "SNACK-SESAME", "quantity": 3 }]))
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    e.shop.payment(&token, id).await.unwrap();
    let closed = e
        .shop
        .wait_status(&token, id, "CLOSED", Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(closed["status"], "CLOSED");
    let at_wechat = e
        .shop
        .at_wechat(order["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(at_wechat["state"], "CLOSED");
    e.stop().await;
}

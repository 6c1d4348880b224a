//! End to end: the real binaries as separate processes, started exactly as `minipay up`
//! starts them (each test on its own free ports, database, Redis prefix and AMQP prefix),
//! driven only through the public HTTP API and the simulator's control API.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::E2e;

mod support;

#[tokio::test]
async fn happy_path() {
    let e = E2e::start("e", |_| {}).await;
    let receipt = e.shop.purchase("ana", &|_, _| {}).await.unwrap();
    assert_eq!(receipt.transaction_id.len(), 28);
    let at_wechat = e.settled_at_wechat(&receipt.out_trade_no, 1).await;
    assert_eq!(at_wechat["state"], "SUCCESS");
    assert_eq!(
        at_wechat["notifications"]["attempts"][0]["outcome"],
        "acked"
    );
    e.stop().await;
}

#[tokio::test]
async fn ops_endpoints_answer_on_the_ops_ports_only() {
    let e = E2e::start("e", |_| {}).await;
    let stack = e.stack.as_ref().unwrap();
    let http = reqwest::Client::new();
    for ops in [
        stack.order_ops_url(),
        stack.notify_ops_url(),
        stack.gateway_ops_url(),
    ] {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let answer = http.get(format!("{ops}{path}")).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{ops}{path}");
        }
    }
    for public in [stack.order_url(), stack.notify_url()] {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let answer = http.get(format!("{public}{path}")).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{public}{path}");
        }
    }
    let states = minipay::status::services(&stack.config.ports).await;
    assert!(states.iter().all(|s| s.state == "ready"), "{states:?}");
    e.stop().await;
}

#[tokio::test]
async fn two_users_buy_in_parallel_and_each_sees_only_their_own_order() {
    let e = E2e::start("e", |_| {}).await;
    let (a, b) = tokio::join!(
        e.shop.purchase("bea", &|_, _| {}),
        e.shop.purchase("cal", &|_, _| {})
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.order_id, b.order_id);
    assert_eq!(
        e.api.get(&a.token, &b.order_id).await.status,
        StatusCode::NOT_FOUND
    );
    let mine = e.api.list(&a.token).await.body;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["orders"][0]["id"].as_str(), Some(a.order_id.as_str()));
    e.stop().await;
}

#[tokio::test]
async fn a_notification_duplicated_five_times_pays_the_order_once() {
    let e = E2e::start("e", |_| {}).await;
    e.shop
        .faults(json!({ "duplicate_notifications": 5 }))
        .await
        .unwrap();
    let receipt = e.shop.purchase("dee", &|_, _| {}).await.unwrap();
    // Five concurrent copies per attempt; under load a copy may get the failure ack (e.g. a
    // slow confirm), and WeChat then simply tries again: what matters is one PAID order.
    let at_wechat = e.settled_at_wechat(&receipt.out_trade_no, 5).await;
    let order = e
        .shop
        .order(&receipt.token, &receipt.order_id)
        .await
        .unwrap();
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["transaction_id"], at_wechat["transaction_id"]);
    let mine = e.api.list(&receipt.token).await.body;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1, "{mine}");
    e.stop().await;
}

#[tokio::test]
async fn a_dropped_notification_is_recovered_by_the_active_query() {
    let e = E2e::start("e", |c| c.payment_query_after = "1s".into()).await;
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

/// A logged-in user's new order with a prepay: (token, order).
async fn prepaid_order(e: &E2e, user: &str) -> (String, Value) {
    let token = e.api.login(user).await;
    let order = e
        .api
        .create(&token, r#"{"items":[{"sku":"TEA-OOLONG","quantity":1}]}"#)
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let paying = e.api.pay(&token, order.body["id"].as_str().unwrap()).await;
    assert_eq!(paying.status, StatusCode::OK, "{}", paying.body);
    (token, order.body)
}

#[tokio::test]
async fn a_cancelled_order_is_closed_here_and_at_wechat() {
    let e = E2e::start("e", |_| {}).await;
    let (token, order) = prepaid_order(&e, "fox").await;
    let cancelled = e.api.cancel(&token, order["id"].as_str().unwrap()).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CLOSED");
    let at_wechat = e
        .shop
        .at_wechat(order["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(at_wechat["state"], "CLOSED");
    e.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_paid() {
    let e = E2e::start("e", |_| {}).await;
    let (token, order) = prepaid_order(&e, "fay").await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(e.api.cancel(&token, id).await.status, StatusCode::OK);
    let refused = e.api.pay(&token, id).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "order_not_payable")
    );
    e.stop().await;
}

#[tokio::test]
async fn expiry() {
    // WeChat needs at least a minute between prepay and time_expire, so this order lives 62 s.
    let e = E2e::start("e", |c| c.order_ttl = "62s".into()).await;
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

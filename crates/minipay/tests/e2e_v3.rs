//! End to end on WeChat Pay API v3: the real binaries as separate processes, started as
//! `minipay up --api v3` starts them, driven only through the public HTTP API, the admin API
//! and the simulator's control API. A purchase and a refund; the certificate → public key
//! migration in the middle of a run of purchases, with no notification lost; duplicated
//! notifications paying once.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use minipay::stack::{ApiVersion, StackConfig, V3NotifySigner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::E2e;
use test_support::wait_until;
use wechat_pay::v3::{EXAMPLE_PLATFORM_CERT_SERIAL, EXAMPLE_WECHAT_PUBLIC_KEY_ID};

mod support;

/// Longest wait for what the stack does on its own.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(signer: V3NotifySigner) -> E2e {
    start_with(signer, |_| {}).await
}

/// A stack on API v3 whose simulator signs notifications with `signer` at start.
async fn start_with(signer: V3NotifySigner, tweak: impl FnOnce(&mut StackConfig)) -> E2e {
    E2e::start("v3", |c| {
        c.api = ApiVersion::V3;
        c.v3_notify_signer = signer;
        tweak(c);
    })
    .await
}

/// A call of the simulator's control API: (status, JSON answer).
async fn sim(e: &E2e, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", e.shop.sim));
    if !body.is_null() {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn serials(view: &Value) -> Vec<String> {
    view["notifications"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["serial"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_v3_purchase_and_refund_end_to_end() {
    let e = start(V3NotifySigner::PublicKey).await;
    let receipt = e.shop.purchase("v3-ana", &|_, _| {}).await.unwrap();
    assert_eq!(receipt.transaction_id.len(), 28);
    let at_wechat = e.settled_at_wechat(&receipt.out_trade_no, 1).await;
    let attempt = &at_wechat["notifications"]["attempts"][0];
    assert_eq!(
        (attempt["outcome"].as_str(), attempt["status"].as_u64()),
        (Some("acked"), Some(204))
    );
    assert_eq!(serials(&at_wechat), [EXAMPLE_WECHAT_PUBLIC_KEY_ID]);

    // The wx.requestPayment object was v3's: RSA.
    let prepay = receipt
        .timeline
        .steps
        .iter()
        .find(|(_, step, _)| *step == minipay::purchase::step::PREPAY)
        .unwrap();
    assert!(prepay.2.ends_with("signType=RSA"), "{}", prepay.2);

    // An operator refunds part of it; WeChat settles it and notifies (v3, encrypted).
    let admin = e.config().admin_token.clone();
    let refund = e
        .api
        .call(
            Method::POST,
            &format!("/admin/v1/orders/{}/refunds", receipt.order_id),
            Some(&admin),
            Some(&json!({"amount_fen": 100, "reason": "v3 partial refund"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    let out_refund_no = refund.body["out_refund_no"].as_str().unwrap().to_owned();
    let (status, settled) = sim(
        &e,
        Method::POST,
        &format!("/sim/v1/refunds/{out_refund_no}/settle"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    let order = wait_until(PATIENCE, "the order shows the refund", || async {
        let order = e.api.get(&receipt.token, &receipt.order_id).await.body;
        (order["status"] == "PARTIALLY_REFUNDED").then_some(order)
    })
    .await;
    assert_eq!(order["refunded_fen"], 100);
    let refund_view = wait_until(
        PATIENCE,
        "the refund notification is acknowledged",
        || async {
            let (_, view) = sim(
                &e,
                Method::GET,
                &format!("/sim/v1/refunds/{out_refund_no}"),
                Value::Null,
            )
            .await;
            (view["notifications"]["attempts"][0]["outcome"] == "acked").then_some(view)
        },
    )
    .await;
    assert_eq!(refund_view["status"], "SUCCESS");
    e.stop().await;
}

#[tokio::test]
async fn the_switch_from_certificate_to_public_key_mid_run_loses_no_notification() {
    let e = start(V3NotifySigner::Certificate).await;
    // Every first delivery waits a little, so notifications are in flight when the signer
    // switches.
    e.shop
        .faults(json!({"delay_notifications_ms": 300}))
        .await
        .unwrap();
    let before = e.shop.purchase("v3-before", &|_, _| {}).await.unwrap();
    let buyers: Vec<_> = (0..6)
        .map(|i| {
            let shop = e.shop.clone();
            tokio::spawn(async move { shop.purchase(&format!("v3-during-{i}"), &|_, _| {}).await })
        })
        .collect();
    let (status, _) = sim(
        &e,
        Method::PUT,
        &format!(
            "/sim/v1/merchants/{}/v3-notify-signer",
            wechat_pay::example::MCH_ID
        ),
        json!({"signer": "public_key"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut numbers = vec![before.out_trade_no.clone()];
    for buyer in buyers {
        numbers.push(buyer.await.unwrap().unwrap().out_trade_no);
    }
    let after = e.shop.purchase("v3-after", &|_, _| {}).await.unwrap();
    numbers.push(after.out_trade_no.clone());
    let mut used = std::collections::BTreeSet::new();
    for number in &numbers {
        let view = e.settled_at_wechat(number, 1).await;
        assert_eq!(view["state"], "SUCCESS", "{view}");
        used.extend(serials(&view));
    }
    assert_eq!(
        serials(&e.settled_at_wechat(&before.out_trade_no, 1).await),
        [EXAMPLE_PLATFORM_CERT_SERIAL]
    );
    assert_eq!(
        serials(&e.settled_at_wechat(&after.out_trade_no, 1).await),
        [EXAMPLE_WECHAT_PUBLIC_KEY_ID]
    );
    assert!(
        used.contains(EXAMPLE_PLATFORM_CERT_SERIAL) && used.contains(EXAMPLE_WECHAT_PUBLIC_KEY_ID)
    );
    e.stop().await;
}

#[tokio::test]
async fn a_v3_notification_duplicated_five_times_pays_the_order_once() {
    let e = start(V3NotifySigner::PublicKey).await;
    e.shop
        .faults(json!({"duplicate_notifications": 5}))
        .await
        .unwrap();
    let receipt = e.shop.purchase("v3-dup", &|_, _| {}).await.unwrap();
    let view = wait_until(PATIENCE, "all five copies are recorded", || async {
        let view = e.shop.at_wechat(&receipt.out_trade_no).await.unwrap();
        test_support::sim::settled_attempts(&view, 5).map(|_| view)
    })
    .await;
    // Each copy is signed anew, so none is a replay; order-svc applies the payment once.
    let acked = view["notifications"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "acked")
        .count();
    assert_eq!(acked, 5, "{view}");
    let order = e.api.get(&receipt.token, &receipt.order_id).await.body;
    assert_eq!(order["status"], "PAID");
    e.stop().await;
}

#[tokio::test]
async fn a_dropped_v3_notification_is_recovered_by_the_active_v3_query() {
    let e = start_with(V3NotifySigner::PublicKey, |c| {
        c.payment_query_after = "1s".into();
    })
    .await;
    e.shop
        .faults(json!({"drop_notifications": true}))
        .await
        .unwrap();
    let receipt = e.shop.purchase("v3-eve", &|_, _| {}).await.unwrap();
    let at_wechat = e.shop.at_wechat(&receipt.out_trade_no).await.unwrap();
    assert_eq!(at_wechat["notifications"]["dropped"], true);
    assert_eq!(
        at_wechat["notifications"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let order = e.api.get(&receipt.token, &receipt.order_id).await.body;
    assert_eq!(
        (order["status"].as_str(), order["transaction_id"].as_str()),
        (Some("PAID"), Some(receipt.transaction_id.as_str()))
    );
    e.stop().await;
}

#[tokio::test]
async fn a_cancelled_v3_order_is_closed_here_and_at_wechat() {
    let e = start(V3NotifySigner::PublicKey).await;
    let token = e.api.login("v3-fox").await;
    let order = e
        .api
        .create(&token, r#"{"items":[{"sku":"TEA-OOLONG","quantity":1}]}"#)
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let id = order.body["id"].as_str().unwrap();
    let paying = e.api.pay(&token, id).await;
    assert_eq!(paying.status, StatusCode::OK, "{}", paying.body);
    assert_eq!(paying.body["signType"], "RSA");
    let cancelled = e.api.cancel(&token, id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CLOSED");
    let at_wechat = e
        .shop
        .at_wechat(order.body["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(at_wechat["state"], "CLOSED");
    e.stop().await;
}

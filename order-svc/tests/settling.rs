//! Settling what a payment claim cannot settle by itself, against the real services and the
//! simulator: a notification that contradicts its order is checked with WeChat's order query
//! (amount, currency, merchant, paid after close); cancels with a slow WeChat leave the pool
//! to everyone else; a database outage dead-letters no payment.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use messaging::{Message, Verdict};
use prost::Message as _;
use reqwest::{Method, StatusCode};
use support::*;
use wechat_pay::v2::{self, ApiKey, Params, SignType};

/// A notification signed with the merchant's real key (as if the key had leaked), claiming
/// `out_trade_no` was paid with `transaction_id`, `total_fee` fen in `fee_type`.
fn leaked_key_notification(
    out_trade_no: &str,
    transaction_id: &str,
    total_fee: &str,
    fee_type: &str,
) -> String {
    let key = ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap();
    let mut p: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", wechatpay_sim::DEFAULT_APPID),
        ("mch_id", wechatpay_sim::DEFAULT_MCH_ID),
        ("nonce_str", "leaked0"),
        ("openid", "oLeaked"),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("total_fee", total_fee),
        ("cash_fee", total_fee),
        ("fee_type", fee_type),
        ("transaction_id", transaction_id),
        ("time_end", "20240101120000"),
        ("out_trade_no", out_trade_no),
    ]
    .into_iter()
    .collect();
    v2::sign_params(&mut p, &key, SignType::Md5);
    v2::xml::encode(&p).unwrap()
}

/// POSTs a notification to notify-svc and checks that it acked it (it was published).
async fn notify_accepted(s: &Stack, body: String) {
    let resp = s
        .api
        .http
        .post(format!("{}/wechat/pay/notify", s.notify))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ack = v2::xml::decode(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(ack.get("return_code"), Some("SUCCESS"));
}

/// Anomalies recorded for `out_trade_no` as (reason, source).
async fn anomalies(s: &Stack, out_trade_no: &str) -> Vec<(String, String)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&s.database_url)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT reason, source FROM payment_anomalies WHERE out_trade_no = $1 ORDER BY id",
    )
    .bind(out_trade_no)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// The value of the `payment_events_total` series whose labels contain `label`, in
/// Prometheus text (0 when absent).
fn counter(metrics: &str, label: &str) -> u64 {
    metrics
        .lines()
        .find(|line| line.starts_with("payment_events_total{") && line.contains(label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

fn pair(reason: &str, source: &str) -> (String, String) {
    (reason.to_owned(), source.to_owned())
}

#[tokio::test]
async fn a_notification_in_another_currency_does_not_pay_the_order() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("yuan").await;
    notify_accepted(
        &s,
        leaked_key_notification(&number, "4200000000000000000000000077", "1999", "USD"),
    )
    .await;
    // WeChat's order query says NOTPAY: the notification is refuted and changes nothing.
    s.wait_dead_letters(1).await;
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PENDING");
    assert_eq!(
        anomalies(&s, &number).await,
        vec![pair("currency_mismatch", "notification")]
    );
}

#[tokio::test]
async fn a_paid_notification_for_an_order_wechat_closed_changes_nothing() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("clara").await;
    let cancelled = s.api.cancel(&token, &id).await;
    assert_eq!(cancelled.body["status"], "CLOSED", "{}", cancelled.body);
    notify_accepted(
        &s,
        leaked_key_notification(&number, "4200000000000000000000000078", "1999", "CNY"),
    )
    .await;
    s.wait_dead_letters(1).await;
    assert_eq!(
        s.api.get(&token, &id).await.body["status"],
        "CLOSED",
        "WeChat says the order is closed, not paid: no REVIEW"
    );
    assert_eq!(
        anomalies(&s, &number).await,
        vec![pair("paid_after_close", "notification")]
    );
}

#[tokio::test]
async fn a_payment_wechat_confirms_after_a_close_here_goes_to_review() {
    let s = stack_with(Options {
        payment_query_after: "1h",
        ..Options::default()
    })
    .await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            drop_notifications: true,
            ..Default::default()
        })
        .unwrap();
    let (token, id, number) = s.prepaid_order("rita").await;
    s.user_pays(&number);
    // Closed here while WeChat took the payment (what a lost race would leave).
    s.sql(&format!("UPDATE orders SET status = 'CLOSED', closed_at = now(), close_reason = 'cancelled' WHERE id = '{id}'")).await;
    let txn = s.at_wechat(&number).transaction_id.unwrap();
    notify_accepted(&s, leaked_key_notification(&number, &txn, "1999", "CNY")).await;
    s.wait_status(&token, &id, "REVIEW").await;
    assert_eq!(s.workers().sample_backlog().await.unwrap().in_review, 1);
    assert_eq!(
        anomalies(&s, &number).await,
        vec![pair("paid_after_close", "query")],
        "WeChat's own answer contradicts the order; the notification agreed with it"
    );
}

#[tokio::test]
async fn a_payment_event_for_another_merchant_is_settled_by_wechat_s_answer() {
    let s = stack_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            drop_notifications: true,
            ..Default::default()
        })
        .unwrap();
    let (token, id, number) = s.prepaid_order("mona").await;
    s.user_pays(&number);
    let txn = s.at_wechat(&number).transaction_id.unwrap();
    let event = proto::events::v1::PaymentSucceeded {
        event_id: format!("wxpay:{txn}"),
        out_trade_no: number.clone(),
        transaction_id: txn.clone(),
        amount_fen: 1999,
        appid: wechatpay_sim::DEFAULT_APPID.into(),
        mch_id: "99999999".into(),
        ..Default::default()
    };
    let message = Message {
        data: event.encode_to_vec(),
        routing_key: messaging::PAYMENT_SUCCEEDED.into(),
        redelivered: false,
        properties: Default::default(),
    };
    assert_eq!(
        s.workers().handle_event(message.clone()).await,
        Verdict::DeadLetter
    );
    let order = s.api.get(&token, &id).await.body;
    assert_eq!(
        (order["status"].as_str(), order["transaction_id"].as_str()),
        (Some("PAID"), Some(txn.as_str())),
        "WeChat's answer is the truth: the order was paid to us"
    );
    assert_eq!(
        anomalies(&s, &number).await,
        vec![pair("other_merchant", "notification")]
    );
    assert_eq!(
        s.workers().handle_event(message).await,
        Verdict::Ack,
        "a repeat of the refuted event was recorded before"
    );
    assert_eq!(anomalies(&s, &number).await.len(), 1);
}

/// Cancels this many orders at once while WeChat answers slowly.
const CANCELS: usize = 6;
/// The simulator's added latency on every WeChat call.
const WECHAT_LATENCY: Duration = Duration::from_millis(1000);
/// Longest a price list request may take meanwhile: far below WeChat's latency times the
/// cancels (each cancel makes two WeChat calls), which is what it took when a cancel held
/// a pooled connection across them.
const PROMPT: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn slow_wechat_and_concurrent_cancels_leave_other_endpoints_prompt() {
    let s = stack_with(Options {
        workers: false,
        database_max_connections: "2",
        ..Options::default()
    })
    .await;
    let mut orders = Vec::new();
    for i in 0..CANCELS {
        orders.push(s.prepaid_order(&format!("slow{i}")).await);
    }
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            latency_ms: u64::try_from(WECHAT_LATENCY.as_millis()).unwrap(),
            ..Default::default()
        })
        .unwrap();
    let cancels: Vec<_> = orders
        .iter()
        .map(|(token, id, _)| {
            let (api, token, id) = (s.api.clone(), token.clone(), id.clone());
            tokio::spawn(async move { api.cancel(&token, &id).await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut samples = 0;
    while cancels.iter().any(|c| !c.is_finished()) {
        let started = Instant::now();
        let products = s
            .api
            .call(Method::GET, "/api/v1/products", None, None, &[])
            .await;
        let took = started.elapsed();
        assert_eq!(products.status, StatusCode::OK, "{}", products.body);
        slowest = slowest.max(took);
        samples += 1;
    }
    println!("{samples} price list requests during {CANCELS} slow cancels; slowest {slowest:?}");
    assert!(samples > 0, "no request was made while the cancels ran");
    assert!(
        slowest < PROMPT,
        "the price list took {slowest:?} while cancels waited for WeChat"
    );
    for cancel in cancels {
        let answer = cancel.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["status"], "CLOSED");
    }
    for (_, _, number) in &orders {
        assert_eq!(s.at_wechat(number).state, "CLOSED");
    }
}

#[tokio::test]
async fn a_database_outage_longer_than_the_delivery_limit_dead_letters_nothing() {
    let s = stack_with(Options {
        database_proxy: true,
        // No active query: only the payment event can pay the order.
        payment_query_after: "1h",
        ..Options::default()
    })
    .await;
    let settings = s.order_settings();
    let (token, id, number) = s.prepaid_order("outage").await;
    let proxy = s.db_proxy.as_ref().unwrap();
    proxy.down();
    s.user_pays(&number);
    // notify-svc acks WeChat once the event is in the queue; order-svc cannot apply it.
    s.notification_settled(&number, 1).await;
    // The outage lasts until the consumer has tried more often than the delivery limit
    // allows: had each failed attempt gone back through the queue, the event would be
    // dead-lettered by now.
    let limit = u64::try_from(settings.amqp_delivery_limit).unwrap();
    let metrics = service_runtime::telemetry::metrics_handle();
    wait_until(
        Duration::from_secs(30),
        "the consumer has retried past the delivery limit while the database is down",
        || async { counter(&metrics.render(), "outcome=\"database_unreachable\"") > limit },
    )
    .await;
    proxy.up();
    s.wait_status(&token, &id, "PAID").await;
    assert_eq!(s.dead_letters().await, 0);
}

#[tokio::test]
async fn a_paid_after_close_claim_waits_out_a_payment_gateway_outage() {
    let mut s = stack_with(Options {
        workers: false,
        payment_query_after: "1h",
        ..Options::default()
    })
    .await;
    // order-svc reaches pay-gateway-svc through a proxy that can go down.
    let gateway: std::net::SocketAddr =
        s.gateway_url.trim_start_matches("http://").parse().unwrap();
    let proxy = test_support::Proxy::start(gateway).await;
    s.gateway_url = format!("http://{}", proxy.addr);
    s.stop_order_svc().await;
    s.start_order_svc().await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            drop_notifications: true,
            ..Default::default()
        })
        .unwrap();
    let (token, id, number) = s.prepaid_order("una").await;
    s.user_pays(&number);
    // Closed here while WeChat took the payment (what a lost race would leave).
    s.sql(&format!("UPDATE orders SET status = 'CLOSED', closed_at = now(), close_reason = 'cancelled' WHERE id = '{id}'")).await;
    let txn = s.at_wechat(&number).transaction_id.unwrap();
    let event = proto::events::v1::PaymentSucceeded {
        event_id: format!("wxpay:{txn}"),
        out_trade_no: number.clone(),
        transaction_id: txn.clone(),
        amount_fen: 1999,
        appid: wechatpay_sim::DEFAULT_APPID.into(),
        mch_id: wechatpay_sim::DEFAULT_MCH_ID.into(),
        ..Default::default()
    };
    let message = Message {
        data: event.encode_to_vec(),
        routing_key: messaging::PAYMENT_SUCCEEDED.into(),
        redelivered: false,
        properties: Default::default(),
    };
    let metrics = service_runtime::telemetry::metrics_handle();
    proxy.down();
    let workers = s.workers().clone();
    let handled = tokio::spawn(async move { workers.handle_event(message).await });
    // The claim contradicts the closed order, so WeChat must be asked, and cannot be: the
    // consumer keeps the event (a dead letter now would leave a charged buyer unrecorded).
    wait_until(
        Duration::from_secs(20),
        "the consumer waits out the pay-gateway-svc outage",
        || async {
            metrics
                .render()
                .contains("outcome=\"payment_gateway_unavailable\"")
        },
    )
    .await;
    proxy.up();
    assert_eq!(
        handled.await.unwrap(),
        Verdict::DeadLetter,
        "REVIEW orders are dead-lettered for an operator"
    );
    s.wait_status(&token, &id, "REVIEW").await;
    assert_eq!(
        anomalies(&s, &number).await,
        vec![pair("paid_after_close", "query")],
        "WeChat's answer, once it came, put the order in review"
    );
}

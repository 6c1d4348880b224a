//! The payment pipeline end to end: the simulator notifies notify-svc, notify-svc publishes
//! to RabbitMQ with confirms, order-svc applies the event exactly once and emits `order.paid`
//! through its outbox; plus the active query, expiry, cancel, and outages. Real PostgreSQL,
//! Redis and RabbitMQ.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use messaging::{Message, Verdict};
use prost::Message as _;
use reqwest::StatusCode;
use support::*;
use test_support::Proxy;
use wechat_pay::v2::{self, ApiKey, Params, SignType};

#[tokio::test]
async fn a_paid_notification_makes_the_order_paid_and_emits_one_event() {
    let s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    let (token, id, number) = s.prepaid_order("alice").await;
    s.user_pays(&number);
    let order = s.wait_status(&token, &id, "PAID").await;
    let at_wechat = s.at_wechat(&number);
    assert_eq!(
        order["transaction_id"].as_str(),
        at_wechat.transaction_id.as_deref()
    );
    assert!(order["paid_at"].is_string());
    s.wait_events(&events, "order.paid", 1).await;
    let (_, payload) = events.seen.lock().unwrap()[0].clone();
    let event = proto::events::v1::OrderPaid::decode(payload.as_slice()).unwrap();
    assert_eq!(
        (event.order_id.as_str(), event.amount_fen),
        (id.as_str(), 1999)
    );
    // One outbox row, and nothing left for the relay: no second event can follow.
    assert_eq!(s.sql_count("SELECT count(*) FROM outbox").await, 1);
    wait_until(PATIENCE, "the outbox row is marked published", || async {
        s.sql_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await
            == 0
    })
    .await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 0);
    assert_eq!(events.count("order.paid"), 1);
}

#[tokio::test]
async fn wechat_gets_the_success_ack_and_stops_notifying() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("abe").await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    let attempts = s.notification_settled(&number, 1).await;
    assert_eq!(
        attempts.len(),
        1,
        "acked at the first attempt: {attempts:?}"
    );
    assert_eq!(attempts[0]["outcome"], "acked");
}

/// After every copy of one order's payment was handled: the order is PAID, by one transition
/// (one outbox row for it, one for the barrier), with no anomaly and no dead letter, and both
/// `order.paid` events are out.
async fn paid_once(s: &Stack, events: &OrderEvents, id: &str) {
    s.handled_so_far().await;
    assert_eq!(
        s.sql_count(&format!(
            "SELECT count(*) FROM orders WHERE id = '{id}' AND status = 'PAID'"
        ))
        .await,
        1
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox").await,
        2,
        "one transition for this order, one for the barrier"
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM payment_anomalies").await,
        0
    );
    assert_eq!(s.dead_letters().await, 0);
    s.wait_events(events, "order.paid", 2).await;
}

#[tokio::test]
async fn five_concurrent_copies_of_a_notification_apply_once() {
    let s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            duplicate_notifications: 5,
            ..Default::default()
        })
        .unwrap();
    let (token, id, number) = s.prepaid_order("bob").await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    // Under load a copy may get the failure ack (a slow confirm) and WeChat tries again:
    // what matters is that every copy of every attempt is in, and one PAID order.
    s.notification_settled(&number, 5).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults::default())
        .unwrap();
    paid_once(&s, &events, &id).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 0);
    assert_eq!(events.count("order.paid"), 2);
}

#[tokio::test]
async fn a_broker_redelivery_of_an_applied_payment_changes_nothing() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("bea").await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    let txn = s.at_wechat(&number).transaction_id.unwrap();
    let event = payment_event(&number, &txn);
    let redelivery = Message {
        data: event.encode_to_vec(),
        routing_key: messaging::PAYMENT_SUCCEEDED.into(),
        redelivered: true,
        properties: Default::default(),
    };
    assert_eq!(s.workers().handle_event(redelivery).await, Verdict::Ack);
    assert_eq!(s.sql_count("SELECT count(*) FROM outbox").await, 1);
    assert_eq!(
        s.sql_count("SELECT count(*) FROM payment_anomalies").await,
        0
    );
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PAID");
}

fn signed_notification(fields: &[(&str, &str)], key: &ApiKey) -> String {
    let mut p: Params = fields.iter().copied().collect();
    v2::sign_params(&mut p, key, SignType::Md5);
    v2::xml::encode(&p).unwrap()
}

/// Notifications notify-svc must refuse, by what is wrong with them, for `out_trade_no`.
fn refused_notifications(out_trade_no: &str) -> Vec<(&'static str, String)> {
    let key = ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap();
    let forger = ApiKey::new("ffffffffffffffffffffffffffffffff").unwrap();
    let fields = |appid: &'static str, mch: &'static str| {
        vec![
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", appid),
            ("mch_id", mch),
            ("nonce_str", "abc123"),
            ("openid", "oX"),
            ("trade_type", "JSAPI"),
            ("bank_type", "OTHERS"),
            ("total_fee", "1999"),
            ("cash_fee", "1999"),
            ("transaction_id", "4200000000000000000000000001"),
            ("time_end", "20240101120000"),
            ("out_trade_no", out_trade_no),
        ]
    };
    vec![
        (
            "forged signature",
            signed_notification(&fields(wechatpay_sim::DEFAULT_APPID, "10000100"), &forger),
        ),
        (
            "wrong appid",
            signed_notification(&fields("wx0000000000000000", "10000100"), &key),
        ),
        (
            "wrong mch_id",
            signed_notification(&fields(wechatpay_sim::DEFAULT_APPID, "99999999"), &key),
        ),
        (
            "malformed",
            "<xml><return_code>SUCCESS</return_code>".into(),
        ),
        (
            "doctype",
            r#"<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>"#
                .into(),
        ),
        (
            "unsigned",
            v2::xml::encode(
                &fields(wechatpay_sim::DEFAULT_APPID, "10000100")
                    .into_iter()
                    .collect(),
            )
            .unwrap(),
        ),
        (
            "oversized",
            format!("<xml><a>{}</a></xml>", "x".repeat(70_000)),
        ),
    ]
}

/// POSTs a notification to notify-svc; its ack's `return_code`.
async fn notify(s: &Stack, body: String) -> String {
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
    ack.get("return_code").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn refused_notifications_get_the_failure_ack() {
    let s = stack().await;
    let (_, _, number) = s.prepaid_order("carl").await;
    for (label, body) in refused_notifications(&number) {
        assert_eq!(notify(&s, body).await, "FAIL", "{label}");
    }
}

#[tokio::test]
async fn refused_notifications_change_nothing() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("carol").await;
    for (_, body) in refused_notifications(&number) {
        notify(&s, body).await;
    }
    // Had anything been published, order-svc would have handled it by now.
    s.handled_so_far().await;
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PENDING");
    assert_eq!(
        s.sql_count("SELECT count(*) FROM payment_anomalies").await,
        0,
        "nothing was even published"
    );
    assert_eq!(s.dead_letters().await, 0);
}

#[tokio::test]
async fn refused_notifications_are_counted_by_reason() {
    let s = stack().await;
    let (_, _, number) = s.prepaid_order("cleo").await;
    for (_, body) in refused_notifications(&number) {
        notify(&s, body).await;
    }
    let metrics = s
        .api
        .http
        .get(format!("{}/metrics", s.notify_ops))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reason=\"bad_signature\"")
            && metrics.contains("reason=\"wrong_merchant\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_wrong_amount_is_settled_by_asking_wechat_and_the_real_payment_applies() {
    let s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            wrong_amount: true,
            duplicate_notifications: 3,
            ..Default::default()
        })
        .unwrap();
    let (token, id, number) = s.prepaid_order("dave").await;
    s.user_pays(&number);
    // WeChat's order query says 1999 was paid: that is what applies.
    let order = s.wait_status(&token, &id, "PAID").await;
    assert_eq!(
        order["transaction_id"].as_str(),
        s.at_wechat(&number).transaction_id.as_deref()
    );
    s.notification_settled(&number, 3).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults::default())
        .unwrap();
    s.handled_so_far().await;
    s.wait_dead_letters(1).await;
    assert_eq!(
        s.dead_letters().await,
        1,
        "three copies of one refuted notification: dead-lettered once"
    );
    assert_eq!(
        s.sql_count(
            "SELECT count(*) FROM payment_anomalies WHERE reason = 'amount_mismatch' AND source = 'notification'"
        )
        .await,
        1
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM payment_anomalies").await,
        1
    );
    s.wait_events(&events, "order.paid", 2).await;
    assert_eq!(s.workers().relay_once().await.unwrap(), 0);
    assert_eq!(
        events.count("order.paid"),
        2,
        "this order's and the barrier's"
    );
}

#[tokio::test]
async fn a_dropped_notification_is_recovered_by_the_active_query() {
    let s = stack_with(Options {
        payment_query_after: "200ms",
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
    let (token, id, number) = s.prepaid_order("erin").await;
    s.user_pays(&number);
    assert!(s.at_wechat(&number).notifications.dropped);
    let order = s.wait_status(&token, &id, "PAID").await;
    assert_eq!(
        order["transaction_id"].as_str(),
        s.at_wechat(&number).transaction_id.as_deref()
    );
    // The order's history says how it was found.
    assert_eq!(
        s.sql_count(&format!(
            "SELECT count(*) FROM order_history WHERE order_id = '{id}' AND kind = 'query' AND detail LIKE 'paid (%'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_expired_order_is_closed_at_wechat_and_locally() {
    let s = stack_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let (token, id, number) = s.prepaid_order("fay").await;
    s.sql(&format!("UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second' WHERE id = '{id}'")).await;
    assert_eq!(s.workers().expire_once().await.unwrap(), 1);
    assert_eq!(s.api.get(&token, &id).await.body["status"], "CLOSED");
    assert_eq!(s.at_wechat(&number).state, "CLOSED");
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE routing_key = 'order.closed'")
            .await,
        1
    );
    assert_eq!(
        s.workers().expire_once().await.unwrap(),
        0,
        "nothing left to close"
    );
    let pay = s.api.pay(&token, &id).await;
    assert_eq!(
        (pay.status, pay.code()),
        (StatusCode::CONFLICT, "order_not_payable")
    );
}

#[tokio::test]
async fn an_expired_order_paid_at_the_last_moment_becomes_paid_not_closed() {
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
    let (token, id, number) = s.prepaid_order("gus").await;
    s.user_pays(&number);
    s.sql(&format!("UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second' WHERE id = '{id}'")).await;
    s.workers().expire_once().await.unwrap();
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PAID");
    assert_eq!(s.at_wechat(&number).state, "SUCCESS");
}

#[tokio::test]
async fn two_sweepers_racing_close_each_order_once() {
    let s = stack_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(s.prepaid_order(&format!("racer{i}")).await);
    }
    s.sql("UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second'").await;
    let a = order_svc::Application::build(s.order_settings())
        .await
        .unwrap()
        .workers();
    let b = order_svc::Application::build(s.order_settings())
        .await
        .unwrap()
        .workers();
    let (ra, rb) = tokio::join!(a.expire_once(), b.expire_once());
    assert_eq!(
        ra.unwrap() + rb.unwrap(),
        8,
        "every order settled by exactly one sweeper"
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM orders WHERE status = 'CLOSED'")
            .await,
        8
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE routing_key = 'order.closed'")
            .await,
        8,
        "one close each"
    );
    for (_, _, number) in &ids {
        assert_eq!(s.at_wechat(number).state, "CLOSED");
    }
}

#[tokio::test]
async fn cancel_closes_the_order_here_and_at_wechat() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("hal").await;
    let cancelled = s.api.cancel(&token, &id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CLOSED");
    assert_eq!(s.at_wechat(&number).state, "CLOSED");
}

#[tokio::test]
async fn cancelling_twice_is_harmless() {
    let s = stack().await;
    let (token, id, _) = s.prepaid_order("hank").await;
    s.api.cancel(&token, &id).await;
    let again = s.api.cancel(&token, &id).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "CLOSED");
}

#[tokio::test]
async fn another_users_order_cannot_be_cancelled() {
    let s = stack().await;
    let (token, id, _) = s.prepaid_order("hugo").await;
    let other = s.api.login("ivy").await;
    let stranger = s.api.cancel(&other, &id).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PENDING");
}

#[tokio::test]
async fn a_paid_order_cannot_be_cancelled() {
    let s = stack().await;
    let (token, id, number) = s.prepaid_order("jay").await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    let refused = s.api.cancel(&token, &id).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "order_not_payable")
    );
}

#[tokio::test]
async fn notify_svc_refuses_while_rabbitmq_is_unreachable_and_recovers() {
    let upstream: std::net::SocketAddr = "127.0.0.1:5672".parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let s = stack_with(Options {
        notify_amqp_url: Some(format!("amqp://guest:guest@{}/%2f", proxy.addr)),
        ..Options::default()
    })
    .await;
    let (token, id, number) = s.prepaid_order("kim").await;
    proxy.down();
    // Readiness follows the broker.
    let readyz = format!("{}/readyz", s.notify_ops);
    wait_until(
        Duration::from_secs(5),
        "notify-svc is not ready",
        || async {
            let status = s.api.http.get(&readyz).send().await.unwrap().status();
            if status == 503 { Ok(()) } else { Err(status) }
        },
    )
    .await;
    s.user_pays(&number);
    // WeChat's first attempts get the failure ack...
    let attempts = wait_until(PATIENCE, "two notification attempts", || async {
        let attempts = s.at_wechat(&number).notifications.attempts;
        if attempts.len() >= 2 {
            Ok(attempts)
        } else {
            Err(attempts)
        }
    })
    .await;
    assert!(
        attempts.iter().all(|a| a.outcome == "failure_ack"),
        "{attempts:?}"
    );
    assert_eq!(s.api.get(&token, &id).await.body["status"], "PENDING");
    // ...and once the broker is back, a retry goes through.
    proxy.up();
    s.wait_status(&token, &id, "PAID").await;
    let attempts = s.notification_settled(&number, 1).await;
    assert_eq!(attempts.last().unwrap()["outcome"], "acked");
}

#[tokio::test]
async fn events_that_pile_up_while_order_svc_is_down_all_apply_after_restart() {
    let mut s = stack().await;
    let mut orders = Vec::new();
    for i in 0..3 {
        orders.push(s.prepaid_order(&format!("pile{i}")).await);
    }
    s.stop_order_svc().await;
    for (_, _, number) in &orders {
        s.user_pays(number);
    }
    for (_, _, number) in &orders {
        // notify-svc acks with order-svc down: the event waits in the queue.
        s.notification_settled(number, 1).await;
    }
    s.start_order_svc().await;
    for (token, id, _) in &orders {
        s.wait_status(token, id, "PAID").await;
    }
    assert_eq!(
        s.sql_count("SELECT count(*) FROM orders WHERE status = 'PAID'")
            .await,
        3
    );
}

#[tokio::test]
async fn ten_queued_copies_of_a_payment_handled_at_once_apply_once() {
    let mut s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    let (token, id, number) = s.prepaid_order("burst").await;
    s.stop_order_svc().await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            duplicate_notifications: 10,
            ..Default::default()
        })
        .unwrap();
    s.user_pays(&number);
    // Every copy is acked by notify-svc and waits in the queue ...
    s.notification_settled(&number, 10).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults::default())
        .unwrap();
    // ... so the restarted consumer takes them up together (within the prefetch).
    s.start_order_svc().await;
    s.wait_status(&token, &id, "PAID").await;
    paid_once(&s, &events, &id).await;
    assert_eq!(events.count("order.paid"), 2);
}

/// A queue of payments taken up together: the plain ones share transactions (several
/// `order.paid` rows with one commit time), while the duplicates, an unknown order, a wrong
/// amount and a poison event (another order's transaction id, refused by the unique index
/// and failing the shared transaction it is in) each get the one-by-one treatment: every
/// order paid once and announced once, the poison dead-lettered alone.
#[tokio::test]
async fn queued_payments_share_transactions_and_the_odd_ones_are_taken_alone() {
    let mut s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    let (first_token, first_id, first_number) = s.prepaid_order("early").await;
    s.user_pays(&first_number);
    s.wait_status(&first_token, &first_id, "PAID").await;
    let taken = s.at_wechat(&first_number).transaction_id.unwrap();
    let mut orders = Vec::new();
    for i in 0..24 {
        orders.push(s.prepaid_order(&format!("queued{i}")).await);
    }
    let (victim_token, victim_id, victim_number) = s.prepaid_order("victim").await;
    let (short_token, short_id, short_number) = s.prepaid_order("short").await;
    s.stop_order_svc().await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            duplicate_notifications: 2,
            ..Default::default()
        })
        .unwrap();
    for (_, _, number) in &orders {
        s.user_pays(number);
    }
    for (_, _, number) in &orders {
        s.notification_settled(number, 2).await;
    }
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults::default())
        .unwrap();
    publish(&s, &payment_event(&victim_number, &taken)).await;
    publish(
        &s,
        &payment_event("NOSUCHORDER0001", "4200000000000000000000000001"),
    )
    .await;
    let mut short = payment_event(&short_number, "4200000000000000000000000002");
    short.amount_fen = 1;
    publish(&s, &short).await;
    s.start_order_svc().await;
    for (token, id, _) in &orders {
        s.wait_status(token, id, "PAID").await;
    }
    s.wait_dead_letters(3).await;
    s.handled_so_far().await;
    // 1 early + 24 queued + the barrier, one row each.
    assert_eq!(s.sql_count("SELECT count(*) FROM outbox").await, 26);
    assert_eq!(
        s.sql_count("SELECT count(DISTINCT out_trade_no) FROM orders WHERE status = 'PAID'")
            .await,
        26
    );
    // The early payment's row is the first; the 25 after it came in fewer commits.
    let commits = s
        .sql_count(
            "SELECT count(DISTINCT created_at) FROM outbox \
             WHERE created_at > (SELECT min(created_at) FROM outbox)",
        )
        .await;
    assert!(
        commits < 25,
        "24 queued payments and the barrier in {commits} commits"
    );
    assert_eq!(
        s.api.get(&victim_token, &victim_id).await.body["status"],
        "PENDING"
    );
    assert_eq!(
        s.api.get(&short_token, &short_id).await.body["status"],
        "PENDING"
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM payment_anomalies WHERE reason = 'unknown_order'")
            .await,
        1
    );
    s.wait_events(&events, "order.paid", 26).await;
    assert_eq!(events.count("order.paid"), 26);
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_after_the_delivery_limit() {
    let s = stack().await;
    let (token_a, id_a, number_a) = s.prepaid_order("lou").await;
    s.user_pays(&number_a);
    s.wait_status(&token_a, &id_a, "PAID").await;
    let taken = s.at_wechat(&number_a).transaction_id.unwrap();
    // An event for another order reusing A's transaction id: the unique constraint refuses
    // it on every attempt, so it is retried, then dead-lettered instead of looping.
    let (token_b, id_b, number_b) = s.prepaid_order("mo").await;
    publish(&s, &payment_event(&number_b, &taken)).await;
    s.wait_dead_letters(1).await;
    assert_eq!(s.api.get(&token_b, &id_b).await.body["status"], "PENDING");
}

#[tokio::test]
async fn two_relays_publish_each_outbox_event_once() {
    let s = stack_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let events = OrderEvents::listen(&s.topology).await;
    for i in 0..6 {
        s.prepaid_order(&format!("relay{i}")).await;
    }
    s.sql("UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second'").await;
    assert_eq!(s.workers().expire_once().await.unwrap(), 6);
    let a = order_svc::Application::build(s.order_settings())
        .await
        .unwrap()
        .workers();
    let b = order_svc::Application::build(s.order_settings())
        .await
        .unwrap()
        .workers();
    let (ra, rb) = tokio::join!(a.relay_once(), b.relay_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let rest = s.workers().relay_once().await.unwrap();
    assert_eq!(ra + rb + rest, 6, "six rows published, each once");
    s.wait_events(&events, "order.closed", 6).await;
    assert_eq!(events.count("order.closed"), 6);
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
}

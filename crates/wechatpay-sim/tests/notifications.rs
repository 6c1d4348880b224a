//! Notification delivery on WeChat's schedule (scaled), and every notification fault.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::*;
use wechat_pay::v2::{
    NotifyError, PaymentOutcome, SignType, SignatureError, parse_payment_notification,
};
use wechatpay_sim::RETRY_GAPS_SECS;

async fn placed(
    sim: &wechatpay_sim::RunningSim,
    user: &str,
    url: &str,
    fen: u64,
    sign_type: SignType,
) -> wechat_pay::OutTradeNo {
    let openid = login(sim, user).await;
    let n = number();
    client(sim, sign_type)
        .unified_order(&order(n.clone(), &openid, url, fen))
        .await
        .unwrap();
    n
}

async fn pay(
    sim: &wechatpay_sim::RunningSim,
    n: &wechat_pay::OutTradeNo,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let (status, v) = pay_order(sim, n.as_str(), body).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Waits until the order's record shows `count` attempts.
async fn attempts(
    sim: &wechatpay_sim::RunningSim,
    n: &wechat_pay::OutTradeNo,
    count: usize,
) -> Vec<serde_json::Value> {
    eventually(format!("{count} notification attempts for {n}"), || async {
        let a = attempts_of(&view(sim, n).await);
        (a.len() >= count).then_some(a)
    })
    .await
}

#[tokio::test]
async fn receiver_failing_its_first_three_attempts_is_retried_on_the_scaled_schedule() {
    // time_scale 0.01: gaps of 150 ms, 150 ms, 300 ms.
    let sim = sim_with(|c| c.time_scale = 0.01).await;
    let receiver = Receiver::start(3).await;
    let n = placed(&sim, "nina", &receiver.url(), 2500, SignType::HmacSha256).await;
    pay(&sim, &n, None).await;
    // Settled: the delivery has ended, so no attempt can follow the ones recorded.
    let log = attempts_of(&settled(&sim, &n).await);
    let outcomes: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["failure_ack", "failure_ack", "failure_ack", "acked"]
    );
    // Each retry waited at least its scaled gap (the exact gaps are the unit test of
    // `notify::gap_before`; an upper bound here would only measure the machine's load).
    let at: Vec<u64> = log.iter().map(|a| a["at_ms"].as_u64().unwrap()).collect();
    for i in 1..at.len() {
        let expected = RETRY_GAPS_SECS[i - 1] * 10; // ms at scale 0.01
        let gap = at[i] - at[i - 1];
        assert!(
            gap + 5 >= expected,
            "gap {i}: {gap} ms, schedule says {expected} ms"
        );
    }
    assert_eq!(log[3]["status"], 200);
    assert!(log[3]["ack_body"].as_str().unwrap().contains("SUCCESS"));
    assert_eq!(receiver.count(), 4, "acknowledged: no more attempts");

    // Every copy is a valid, signed notification with the order's algorithm.
    let parsed = parse_payment_notification(&receiver.body(0), &key()).unwrap();
    assert_eq!(parsed.sign_type, SignType::HmacSha256);
    assert_eq!(parsed.out_trade_no, n);
    let PaymentOutcome::Paid(paid) = &parsed.outcome else {
        panic!("expected a paid notification")
    };
    assert_eq!(paid.total_fee.get(), 2500);
    assert_eq!(
        parsed.check_merchant(wechatpay_sim::DEFAULT_APPID, wechatpay_sim::DEFAULT_MCH_ID),
        Ok(())
    );
}

#[tokio::test]
async fn the_whole_schedule_is_sixteen_attempts_then_silence() {
    let sim = sim_with(|c| c.time_scale = 0.00001).await;
    let n = placed(&sim, "olga", &dead_url(), 1, SignType::Md5).await;
    pay(&sim, &n, None).await;
    let log = attempts_of(&settled(&sim, &n).await);
    assert_eq!(log.len(), 16);
    assert!(log.iter().all(|a| a["outcome"] == "connection_error"));
    let numbers: Vec<u64> = log.iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=16).collect::<Vec<u64>>());
}

#[tokio::test]
async fn non_2xx_and_garbage_acks_count_as_failures() {
    let sim = sim_with(|c| c.time_scale = 0.0001).await;
    let app = axum::Router::new()
        .route(
            "/500",
            axum::routing::post(|| async {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops")
            }),
        )
        .route("/text", axum::routing::post(|| async { "SUCCESS" }))
        .route(
            "/202",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::ACCEPTED,
                    wechat_pay::v2::ACK_SUCCESS,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for (path, outcome) in [
        ("500", "http_error"),
        ("text", "failure_ack"),
        ("202", "failure_ack"),
    ] {
        let n = placed(
            &sim,
            "pete",
            &format!("http://{addr}/{path}"),
            1,
            SignType::Md5,
        )
        .await;
        pay(&sim, &n, None).await;
        let log = attempts(&sim, &n, 2).await;
        assert_eq!(log[0]["outcome"], outcome, "{path}");
    }
}

#[tokio::test]
async fn timeouts_count_as_failures() {
    let sim = sim_with(|c| {
        c.time_scale = 0.0001;
        c.notify_timeout = Duration::from_millis(100);
    })
    .await;
    let app = axum::Router::new().route(
        "/slow",
        // Never answers: the simulator's notify timeout ends every attempt.
        axum::routing::post(std::future::pending::<&str>),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let n = placed(
        &sim,
        "quin",
        &format!("http://{addr}/slow"),
        1,
        SignType::Md5,
    )
    .await;
    pay(&sim, &n, None).await;
    let log = attempts(&sim, &n, 2).await;
    assert_eq!(log[0]["outcome"], "timeout");
}

#[tokio::test]
async fn drop_fault_sends_nothing() {
    let sim = sim_with(|c| c.faults.drop_notifications = true).await;
    let receiver = Receiver::start(0).await;
    let n = placed(&sim, "rita", &receiver.url(), 1, SignType::Md5).await;
    let v = pay(&sim, &n, None).await;
    assert_eq!(v["state"], "SUCCESS");
    // The answer to the payment already shows the notification dropped, with no delivery
    // scheduled: nothing can reach the receiver later.
    assert_eq!(v["notifications"]["dropped"], true);
    assert_eq!(v["notifications"]["deliveries_running"], 0);
    assert_eq!(v["notifications"]["held"], false);
    assert_eq!(attempts_of(&v).len(), 0);
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn duplicate_fault_sends_n_concurrent_copies() {
    let sim = sim_with(|c| c.faults.duplicate_notifications = 5).await;
    let receiver = Receiver::start(0).await;
    let n = placed(&sim, "sam", &receiver.url(), 300, SignType::Md5).await;
    pay(&sim, &n, None).await;
    let log = attempts_of(&settled(&sim, &n).await);
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|a| a["attempt"] == 1 && a["outcome"] == "acked")
    );
    assert_eq!(receiver.count(), 5, "acknowledged: no second attempt");
    let first = receiver.body(0);
    for i in 1..5 {
        assert_eq!(receiver.body(i), first, "copies are identical");
    }
}

#[tokio::test]
async fn reorder_fault_delivers_newest_first() {
    let sim = sim_with(|c| c.faults.reorder_notifications = 2).await;
    let receiver = Receiver::start(0).await;
    let a = placed(&sim, "tom", &receiver.url(), 1, SignType::Md5).await;
    let b = placed(&sim, "uma", &receiver.url(), 2, SignType::Md5).await;
    let v = pay(&sim, &a, None).await;
    // Held, with no delivery scheduled: nothing is sent until the batch is full.
    assert_eq!(v["notifications"]["held"], true);
    assert_eq!(v["notifications"]["deliveries_running"], 0);
    assert_eq!(receiver.count(), 0, "held until the batch is full");
    pay(&sim, &b, None).await;
    receiver.wait_for(2).await;
    let first = parse_payment_notification(&receiver.body(0), &key()).unwrap();
    let second = parse_payment_notification(&receiver.body(1), &key()).unwrap();
    assert_eq!((first.out_trade_no, second.out_trade_no), (b, a));

    // Switching the fault off releases what is held.
    let c = placed(&sim, "vic", &receiver.url(), 3, SignType::Md5).await;
    pay(&sim, &c, None).await;
    assert_eq!(view(&sim, &c).await["notifications"]["held"], true);
    let (status, _) = put_faults(&sim, serde_json::json!({})).await;
    assert_eq!(status, 200);
    receiver.wait_for(3).await;
    let third = parse_payment_notification(&receiver.body(2), &key()).unwrap();
    assert_eq!(third.out_trade_no, c);
}

#[tokio::test]
async fn wrong_amount_is_validly_signed_and_forged_signature_is_refused() {
    let sim = sim().await;
    let receiver = Receiver::start(0).await;
    put_faults(&sim, serde_json::json!({"wrong_amount": true})).await;
    let n = placed(&sim, "walt", &receiver.url(), 1000, SignType::Md5).await;
    pay(&sim, &n, None).await;
    receiver.wait_for(1).await;
    let parsed = parse_payment_notification(&receiver.body(0), &key()).unwrap();
    let PaymentOutcome::Paid(paid) = parsed.outcome else {
        panic!("expected paid")
    };
    assert_eq!(paid.total_fee.get(), 1001);

    put_faults(&sim, serde_json::json!({"forge_signature": true})).await;
    let n = placed(&sim, "xena", &receiver.url(), 1000, SignType::HmacSha256).await;
    pay(&sim, &n, None).await;
    receiver.wait_for(2).await;
    assert_eq!(
        parse_payment_notification(&receiver.body(1), &key()),
        Err(NotifyError::Signature(SignatureError::Mismatch))
    );
}

#[tokio::test]
async fn payerror_sends_a_failed_notification_and_auto_pay_pays() {
    let sim = sim().await;
    let receiver = Receiver::start(0).await;
    let n = placed(&sim, "yuri", &receiver.url(), 1, SignType::Md5).await;
    let v = pay(&sim, &n, Some(serde_json::json!({"result": "USERPAYING"}))).await;
    assert_eq!(v["state"], "USERPAYING");
    // Nothing sent, held, dropped or scheduled: USERPAYING sends nothing.
    assert_eq!(v["notifications"]["deliveries_running"], 0);
    assert_eq!(v["notifications"]["held"], false);
    assert_eq!(v["notifications"]["dropped"], false);
    assert_eq!(receiver.count(), 0, "USERPAYING sends nothing");
    let v = pay(&sim, &n, Some(serde_json::json!({"result": "PAYERROR"}))).await;
    assert_eq!(v["state"], "PAYERROR");
    receiver.wait_for(1).await;
    let parsed = parse_payment_notification(&receiver.body(0), &key()).unwrap();
    assert!(matches!(parsed.outcome, PaymentOutcome::Failed { .. }));
    let (status, _) = pay_order(
        &sim,
        n.as_str(),
        Some(serde_json::json!({"result": "MAYBE"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = pay_order(&sim, "NOSUCHORDER1", None).await;
    assert_eq!(status, 404);

    let auto = sim_with(|c| c.auto_pay_after = Some(Duration::from_millis(100))).await;
    let receiver = Receiver::start(0).await;
    let n = placed(&auto, "zoe", &receiver.url(), 1, SignType::Md5).await;
    receiver.wait_for(1).await;
    assert_eq!(view(&auto, &n).await["state"], "SUCCESS");
}

#[tokio::test]
async fn delay_fault_sends_the_first_delivery_late_and_counts_it_as_running() {
    let sim = sim_with(|c| c.faults.delay_notifications_ms = 400).await;
    let receiver = Receiver::start(0).await;
    let n = placed(&sim, "wes", &receiver.url(), 4, SignType::Md5).await;
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let v = pay(&sim, &n, None).await;
    // Scheduled, not sent: a delivery is under way, no attempt made.
    assert_eq!(v["notifications"]["deliveries_running"], 1);
    assert_eq!(attempts_of(&v).len(), 0);
    let log = attempts_of(&settled(&sim, &n).await);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "acked");
    let sent_ms = u128::from(log[0]["at_ms"].as_u64().unwrap());
    assert!(
        sent_ms >= before_ms + 400,
        "sent {} ms after the payment",
        sent_ms - before_ms
    );

    // Refused above an hour.
    let too_late = serde_json::json!({ "delay_notifications_ms": 3_600_001 });
    let (status, _) = put_faults(&sim, too_late).await;
    assert_eq!(status, 400);
}

//! Refunds end to end: an operator's refund through the admin API, pay-gateway-svc (with a
//! merchant certificate), the simulator, its encrypted refund notification through notify-svc
//! and RabbitMQ, confirmed by refund query and applied by order-svc; the concurrency rule,
//! idempotency, a lost notification, a forged one, SYSTEMERROR. Real PostgreSQL, Redis and
//! RabbitMQ.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use test_support::Answer;
use wechat_pay::v2::{self, ApiKey, Params, xml};

/// A paid order of 19.99: (buyer's token, id, out_trade_no).
async fn paid_order(s: &Stack, user: &str) -> (String, String, String) {
    let (token, id, number) = s.prepaid_order(user).await;
    s.user_pays(&number);
    s.wait_status(&token, &id, "PAID").await;
    (token, id, number)
}

async fn refund(s: &Stack, id: &str, amount: i64, key: Option<&str>) -> Answer {
    let body = json!({"amount_fen": amount, "reason": "damaged in transit"}).to_string();
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    s.api
        .call(
            Method::POST,
            &format!("/admin/v1/orders/{id}/refunds"),
            Some(ADMIN_TOKEN),
            Some(&body),
            &headers,
        )
        .await
}

async fn admin_order(s: &Stack, id: &str) -> Value {
    let answer = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/orders/{id}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

/// Waits until the order (as operators see it) is `status` with `refunded` fen given back.
async fn wait_refunded(s: &Stack, id: &str, status: &str, refunded: u64) -> Value {
    wait_until(
        PATIENCE,
        &format!("order {id} {status} with {refunded} fen refunded"),
        || async {
            let order = admin_order(s, id).await;
            if order["status"] == status && order["refunded_fen"] == refunded {
                Ok(order)
            } else {
                Err(order)
            }
        },
    )
    .await
}

/// WeChat finishes the refund (the simulator's control, as its operator would).
fn wechat_settles(s: &Stack, out_refund_no: &str, status: v2::RefundStatus) {
    let sim = s.sim.sim();
    let key = sim.find_refund(out_refund_no, None).unwrap();
    sim.settle_refund(&key, out_refund_no, status).unwrap();
}

#[tokio::test]
async fn a_partial_then_a_full_refund_reach_refunded_through_the_notifications() {
    let s = stack().await;
    let events = OrderEvents::listen(&s.topology).await;
    let (token, id, _) = paid_order(&s, "rosa").await;

    let first = refund(&s, &id, 500, None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["status"], "PROCESSING", "WeChat accepted it");
    assert_eq!(first.body["requested_by"], ADMIN_OPERATOR);
    let order = admin_order(&s, &id).await;
    assert_eq!(
        (order["status"].as_str(), order["refunding_fen"].as_u64()),
        (Some("REFUNDING"), Some(500))
    );
    wechat_settles(
        &s,
        first.body["out_refund_no"].as_str().unwrap(),
        v2::RefundStatus::Success,
    );
    wait_refunded(&s, &id, "PARTIALLY_REFUNDED", 500).await;

    let rest = refund(&s, &id, 1499, None).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    wechat_settles(
        &s,
        rest.body["out_refund_no"].as_str().unwrap(),
        v2::RefundStatus::Success,
    );
    let order = wait_refunded(&s, &id, "REFUNDED", 1999).await;
    assert_eq!(order["refunding_fen"], 0);
    let refunds = order["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2);
    assert!(refunds.iter().all(|r| r["status"] == "SUCCESS"));

    // The buyer sees it too, and nothing more can be refunded.
    let mine = s.api.get(&token, &id).await;
    assert_eq!(
        (
            mine.body["status"].as_str(),
            mine.body["refunded_fen"].as_u64()
        ),
        (Some("REFUNDED"), Some(1999))
    );
    let more = refund(&s, &id, 1, None).await;
    assert_eq!(
        (more.status, more.code()),
        (StatusCode::CONFLICT, "refund_exceeds_paid")
    );

    // The history lists every step, in time order.
    let kinds: Vec<&str> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "created",
        "prepay",
        "notification",
        "paid",
        "refund_requested",
        "refund_settled",
        "admin_action",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "refund_settled").count(), 2);
    let at: Vec<time::OffsetDateTime> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = t["at"].as_str().unwrap();
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap()
        })
        .collect();
    let mut sorted = at.clone();
    sorted.sort_unstable();
    assert_eq!(at, sorted);

    // One order.refunded event per refund that succeeded, through the outbox.
    s.wait_events(&events, "order.refunded", 2).await;
    assert_eq!(
        s.sql_count("SELECT count(*) FROM outbox WHERE routing_key = 'order.refunded'")
            .await,
        2
    );
}

#[tokio::test]
async fn twenty_concurrent_partial_refunds_never_add_up_to_more_than_was_paid() {
    let s = stack().await;
    let (_, id, number) = paid_order(&s, "cora").await;
    // 1999 fen paid: 13 refunds of 150 fit (1950), the 14th would not.
    let answers = futures_util::future::join_all((0..20).map(|_| refund(&s, &id, 150, None))).await;
    let accepted = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let refused: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status != StatusCode::CREATED)
        .collect();
    assert_eq!(
        accepted,
        13,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 7);
    assert!(
        refused
            .iter()
            .all(|a| a.status == StatusCode::CONFLICT && a.code() == "refund_exceeds_paid")
    );
    assert_eq!(
        s.sql_count(&format!(
            "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM refunds WHERE order_id = '{id}'"
        ))
        .await,
        1950
    );
    // WeChat got exactly the 13.
    let at_wechat = s.at_wechat(&number);
    assert_eq!(at_wechat.refunds.len(), 13);
    // Every refusal is in the audit log, with who asked.
    assert_eq!(
        s.sql_count(&format!(
            "SELECT count(*) FROM admin_actions WHERE order_id = '{id}' AND outcome = 'refused:refund_exceeds_paid' AND operator = '{ADMIN_OPERATOR}'"
        ))
        .await,
        7
    );
}

#[tokio::test]
async fn the_same_idempotency_key_is_the_same_refund() {
    let s = stack().await;
    let (_, id, number) = paid_order(&s, "ivan").await;
    let first = refund(&s, &id, 300, Some("refund-ivan-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = refund(&s, &id, 300, Some("refund-ivan-1")).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = refund(&s, &id, 301, Some("refund-ivan-1")).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    assert_eq!(s.at_wechat(&number).refunds.len(), 1);
    assert_eq!(admin_order(&s, &id).await["refunding_fen"], 300);
}

#[tokio::test]
async fn an_unpaid_order_cannot_be_refunded_and_bad_requests_change_nothing() {
    let s = stack().await;
    let (_, id, _) = s.prepaid_order("una").await;
    let answer = refund(&s, &id, 100, None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "order_not_refundable")
    );
    for body in [
        json!({"amount_fen": 0, "reason": "x"}),
        json!({"amount_fen": -5, "reason": "x"}),
        json!({"amount_fen": 1.5, "reason": "x"}),
        json!({"amount_fen": 10, "reason": ""}),
        json!({"amount_fen": 10, "reason": "退".repeat(81)}),
        json!({"amount_fen": 10}),
        json!({"amount_fen": 10, "reason": "x", "extra": 1}),
    ] {
        let answer = s
            .api
            .call(
                Method::POST,
                &format!("/admin/v1/orders/{id}/refunds"),
                Some(ADMIN_TOKEN),
                Some(&body.to_string()),
                &[],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
    }
    let missing = refund(&s, "0196a1c0-0000-7000-8000-000000000000", 100, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(s.sql_count("SELECT count(*) FROM refunds").await, 0);
    assert_eq!(
        s.sql_count(
            "SELECT count(*) FROM admin_actions WHERE outcome = 'refused:order_not_refundable'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn admin_calls_need_an_operators_token() {
    let s = stack().await;
    let (token, id, _) = paid_order(&s, "tom").await;
    let path = format!("/admin/v1/orders/{id}");
    for credential in [None, Some("wrong-token"), Some(token.as_str())] {
        let answer = s.api.call(Method::GET, &path, credential, None, &[]).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{credential:?}"
        );
        let body = json!({"amount_fen": 1, "reason": "x"}).to_string();
        let answer = s
            .api
            .call(
                Method::POST,
                &format!("{path}/refunds"),
                credential,
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(s.sql_count("SELECT count(*) FROM refunds").await, 0);
    // The admin API's own document.
    let doc = s
        .api
        .call(Method::GET, "/admin/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"]["/admin/v1/orders/{id}/refunds"]["post"].is_object());
}

#[tokio::test]
async fn a_lost_refund_notification_is_recovered_by_the_refund_query() {
    let s = stack().await;
    let (_, id, _) = paid_order(&s, "lou").await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            drop_notifications: true,
            ..Default::default()
        })
        .unwrap();
    let answer = refund(&s, &id, 1999, None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    wechat_settles(
        &s,
        answer.body["out_refund_no"].as_str().unwrap(),
        v2::RefundStatus::Success,
    );
    // No notification comes; the refund worker's query finds it.
    wait_refunded(&s, &id, "REFUNDED", 1999).await;
}

#[tokio::test]
async fn a_closed_refund_gives_the_amount_back_to_refund() {
    let s = stack().await;
    let (_, id, _) = paid_order(&s, "cleo").await;
    let answer = refund(&s, &id, 1999, None).await;
    wechat_settles(
        &s,
        answer.body["out_refund_no"].as_str().unwrap(),
        v2::RefundStatus::Refundclose,
    );
    let order = wait_refunded(&s, &id, "PAID", 0).await;
    assert_eq!(order["refunding_fen"], 0);
    assert_eq!(order["refunds"][0]["status"], "REFUNDCLOSE");
    let again = refund(&s, &id, 1999, None).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

/// A refund notification as WeChat would send it for `out_refund_no`, claiming SUCCESS,
/// encrypted under `key`.
fn refund_notification(number: &str, out_refund_no: &str, fen: &str, key: &str) -> String {
    let info: Params = [
        ("transaction_id", "4200000000000000000000000099"),
        ("out_trade_no", number),
        ("refund_id", "50300000000000000000000000099"),
        ("out_refund_no", out_refund_no),
        ("total_fee", "1999"),
        ("refund_fee", fen),
        ("refund_status", "SUCCESS"),
        ("success_time", "2026-12-01 12:00:00"),
    ]
    .into_iter()
    .collect();
    let plain = xml::encode_with_root(&info, "root").unwrap();
    let req_info = v2::encrypt_req_info(plain.as_bytes(), &ApiKey::new(key).unwrap());
    let envelope: Params = [
        ("return_code", "SUCCESS"),
        ("appid", wechatpay_sim::DEFAULT_APPID),
        ("mch_id", wechatpay_sim::DEFAULT_MCH_ID),
        ("nonce_str", "forgedNonce01"),
        ("req_info", req_info.as_str()),
    ]
    .into_iter()
    .collect();
    xml::encode(&envelope).unwrap()
}

#[tokio::test]
async fn a_refund_notification_wechat_does_not_confirm_changes_nothing() {
    let s = stack().await;
    let (_, id, number) = paid_order(&s, "fay").await;
    let answer = refund(&s, &id, 700, None).await;
    let out_refund_no = answer.body["out_refund_no"].as_str().unwrap();
    let http = reqwest::Client::new();
    let post = |body: String| {
        let http = http.clone();
        let url = format!("{}/wechat/refund/notify", s.notify);
        async move {
            http.post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    // Under another key: notify-svc cannot decrypt it.
    let forged = refund_notification(
        &number,
        out_refund_no,
        "700",
        "0123456789abcdef0123456789abcdef",
    );
    assert!(post(forged).await.contains("undecryptable"));
    // Under the right key (the key leaked, say) but WeChat has not finished the refund: the
    // refund query says PROCESSING, so nothing is applied.
    let claimed = refund_notification(
        &number,
        out_refund_no,
        "700",
        wechatpay_sim::DEFAULT_API_KEY,
    );
    assert_eq!(post(claimed).await, v2::ACK_SUCCESS);
    s.handled_so_far().await;
    let order = admin_order(&s, &id).await;
    assert_eq!(
        (order["status"].as_str(), order["refunded_fen"].as_u64()),
        (Some("REFUNDING"), Some(0))
    );
    assert_eq!(order["refunds"][0]["status"], "PROCESSING");
}

#[tokio::test]
async fn a_refund_wechat_answers_systemerror_to_is_sent_again_with_the_same_number() {
    let s = stack().await;
    let (_, id, number) = paid_order(&s, "sam").await;
    // More SYSTEMERRORs than pay-gateway-svc's three attempts.
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            system_error_next: 3,
            ..Default::default()
        })
        .unwrap();
    let answer = refund(&s, &id, 400, None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "REQUESTED");
    let out_refund_no = answer.body["out_refund_no"].as_str().unwrap().to_owned();
    // The refund worker sends it again, with the same number, and WeChat accepts it.
    wait_until(PATIENCE, "the refund accepted by WeChat", || async {
        let order = admin_order(&s, &id).await;
        match order["refunds"][0]["status"].as_str() {
            Some("PROCESSING") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let at_wechat = s.at_wechat(&number);
    assert_eq!(at_wechat.refunds.len(), 1);
    assert_eq!(at_wechat.refunds[0].out_refund_no, out_refund_no);
}

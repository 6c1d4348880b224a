//! The operators' order search (`GET /admin/v1/orders`) against the real stack: every filter,
//! pagination, refusals.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::*;
use test_support::Answer;

async fn search(s: &Stack, query: &str) -> Answer {
    s.api
        .call(
            Method::GET,
            &format!("/admin/v1/orders{query}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn operators_find_orders_by_status_number_transaction_buyer_and_time() {
    let s = stack().await;
    let (token_a, paid, paid_number) = s.prepaid_order("ann").await;
    s.user_pays(&paid_number);
    s.wait_status(&token_a, &paid, "PAID").await;
    let (_, pending_a, _) = s.prepaid_order("ann").await;
    let (_, pending_b, pending_b_number) = s.prepaid_order("ben").await;
    let everyone = search(&s, "").await;
    assert_eq!(everyone.status, StatusCode::OK, "{}", everyone.body);
    assert_eq!(
        ids(&everyone.body),
        [pending_b.as_str(), pending_a.as_str(), paid.as_str()]
    );

    let by_status = search(&s, "?status=PAID").await;
    assert_eq!(ids(&by_status.body), [paid.as_str()]);
    let by_number = search(&s, &format!("?out_trade_no={pending_b_number}")).await;
    assert_eq!(ids(&by_number.body), [pending_b.as_str()]);
    let txn = s.at_wechat(&paid_number).transaction_id.unwrap();
    let by_transaction = search(&s, &format!("?transaction_id={txn}")).await;
    assert_eq!(ids(&by_transaction.body), [paid.as_str()]);
    let admin_view = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/orders/{paid}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    let buyer = admin_view.body["openid"].as_str().unwrap();
    let by_buyer = search(&s, &format!("?openid={buyer}&status=PENDING")).await;
    assert_eq!(ids(&by_buyer.body), [pending_a.as_str()]);
    let future = search(&s, "?from=2100-01-01T00:00:00Z").await;
    assert!(ids(&future.body).is_empty());
    let past = search(&s, "?to=2000-01-01T00:00:00Z").await;
    assert!(ids(&past.body).is_empty());

    // Two per page: the cursor leads to the rest, and the last page has none.
    let first = search(&s, "?limit=2").await;
    assert_eq!(ids(&first.body), [pending_b.as_str(), pending_a.as_str()]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = search(&s, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second.body), [paid.as_str()]);
    assert!(second.body["next_cursor"].is_null());

    for bad in [
        "?status=LOST",
        "?from=yesterday",
        "?out_trade_no=a%20b",
        "?limit=0",
        "?limit=101",
        "?cursor=nope",
        "?colour=red",
    ] {
        let answer = search(&s, bad).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {}",
            answer.body
        );
    }
    let anonymous = s
        .api
        .call(Method::GET, "/admin/v1/orders", None, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_dead_letter_is_kept_listed_and_replayed_through_the_consumer_once() {
    let s = stack().await;
    // A payment for an order nobody has: refused and dead-lettered.
    let number = "MPLATE0000000001";
    publish(&s, &payment_event(number, "4200000000000000000000000777")).await;
    s.wait_dead_letters(1).await;
    let list = s
        .api
        .call(
            Method::GET,
            "/admin/v1/dead-letters",
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let letter = &list.body["dead_letters"][0];
    assert_eq!(letter["routing_key"], "payment.succeeded");
    assert_eq!(letter["out_trade_no"], number);
    assert_eq!(letter["reason"], "rejected");
    let id = letter["id"].as_i64().unwrap();

    // The order turns up (restored from a backup, say); the event is replayed.
    s.sql(&format!(
        "INSERT INTO orders (id, out_trade_no, openid, status, amount_fen, items, created_at, expires_at, updated_at)
         VALUES (gen_random_uuid(), '{number}', 'oLateBuyer', 'PENDING', 1999,
                 '[{{\"sku\":\"TEA-JASMINE\",\"name\":\"Jasmine tea\",\"quantity\":1,\"unit_price_fen\":1999}}]',
                 now(), now() + interval '15 minutes', now())"
    ))
    .await;
    let replay = |reason: &'static str| {
        let api = s.api.clone();
        async move {
            api.call(
                Method::POST,
                &format!("/admin/v1/dead-letters/{id}/replay"),
                Some(ADMIN_TOKEN),
                Some(&serde_json::json!({ "reason": reason }).to_string()),
                &[],
            )
            .await
        }
    };
    let first = replay("order restored").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["replays"], 1);
    wait_until(PATIENCE, "the replayed payment applied", || async {
        match s
            .sql_count(&format!(
                "SELECT count(*) FROM orders WHERE out_trade_no = '{number}' AND status = 'PAID'"
            ))
            .await
        {
            1 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    // Twice changes nothing: no second order.paid (only the barrier's), no new dead letter.
    let announced = "SELECT count(*) FROM outbox WHERE routing_key = 'order.paid'";
    let before = s.sql_count(announced).await;
    let second = replay("again").await;
    assert_eq!(second.body["replays"], 2);
    s.handled_so_far().await;
    assert_eq!(s.dead_letters().await, 1);
    assert_eq!(
        s.sql_count(announced).await,
        before + 1,
        "only the barrier's"
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM admin_actions WHERE action = 'replay_dead_letter' AND outcome = 'replayed'")
            .await,
        2
    );
    for missing in ["999999", "abc"] {
        let answer = s
            .api
            .call(
                Method::POST,
                &format!("/admin/v1/dead-letters/{missing}/replay"),
                Some(ADMIN_TOKEN),
                Some(r#"{"reason":"x"}"#),
                &[],
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::NOT_FOUND, "dead_letter_not_found")
        );
    }
}

/// An order put in REVIEW as a contradicting payment would leave it, paid at WeChat or not.
async fn in_review(s: &Stack, user: &str, paid_at_wechat: bool) -> (String, String, String) {
    let (token, id, number) = s.prepaid_order(user).await;
    if paid_at_wechat {
        s.sim
            .sim()
            .set_faults(wechatpay_sim::Faults {
                drop_notifications: true,
                ..Default::default()
            })
            .unwrap();
        s.user_pays(&number);
        s.sim
            .sim()
            .set_faults(wechatpay_sim::Faults::default())
            .unwrap();
    }
    s.sql(&format!(
        "UPDATE orders SET status = 'REVIEW', review_reason = 'paid_after_close' WHERE id = '{id}'"
    ))
    .await;
    (token, id, number)
}

async fn resolve(s: &Stack, id: &str, action: &str) -> Answer {
    let body =
        serde_json::json!({"action": action, "reason": "checked with the buyer"}).to_string();
    s.api
        .call(
            Method::POST,
            &format!("/admin/v1/orders/{id}/resolve"),
            Some(ADMIN_TOKEN),
            Some(&body),
            &[],
        )
        .await
}

#[tokio::test]
async fn each_review_resolution_applies_only_where_wechat_agrees() {
    let s = stack_with(Options {
        payment_query_after: "1h",
        ..Options::default()
    })
    .await;
    let (_, unpaid, _) = in_review(&s, "una", false).await;
    let (_, kept, kept_number) = in_review(&s, "kim", true).await;
    let (_, given_back, _) = in_review(&s, "gil", true).await;

    let queue = s
        .api
        .call(
            Method::GET,
            "/admin/v1/reviews",
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let listed: Vec<&str> = queue.body["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(queue.body["reviews"][0]["reason"] == "paid_after_close");

    // WeChat has no payment: it can be closed, not accepted or refunded.
    for action in ["accept_payment", "refund"] {
        let refused = resolve(&s, &unpaid, action).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::CONFLICT, "resolution_not_allowed"),
            "{action}"
        );
    }
    let closed = resolve(&s, &unpaid, "close").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["status"], "CLOSED");
    let history = s
        .api
        .call(
            Method::GET,
            &format!("/admin/v1/orders/{unpaid}"),
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    let steps: Vec<(String, String)> = history.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for kind in ["created", "prepay", "closed", "admin_action"] {
        assert!(
            steps.iter().any(|(k, _)| k == kind),
            "{kind} missing: {steps:?}"
        );
    }
    assert!(steps.iter().any(|(k, d)| k == "closed" && d == "resolved"));

    // WeChat has the payment: it cannot be closed; accepting makes it PAID with WeChat's
    // transaction, once.
    let refused = resolve(&s, &kept, "close").await;
    assert_eq!(refused.code(), "resolution_not_allowed");
    let accepted = resolve(&s, &kept, "accept_payment").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "PAID");
    assert_eq!(
        accepted.body["transaction_id"].as_str(),
        s.at_wechat(&kept_number).transaction_id.as_deref()
    );
    let again = resolve(&s, &kept, "accept_payment").await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "resolution_not_allowed")
    );

    // Refunding gives the whole payment back through the normal refund path.
    let refunded = resolve(&s, &given_back, "refund").await;
    assert_eq!(refunded.status, StatusCode::OK, "{}", refunded.body);
    assert_eq!(refunded.body["status"], "REFUNDING");
    assert_eq!(
        s.sql_count(&format!(
            "SELECT count(*) FROM refunds WHERE order_id = '{given_back}' AND amount_fen = 1999 AND status = 'PROCESSING'"
        ))
        .await,
        1
    );

    // Every attempt is audited, the refusals too.
    assert_eq!(
        s.sql_count("SELECT count(*) FROM admin_actions WHERE action LIKE 'resolve:%'")
            .await,
        7
    );
    assert_eq!(
        s.sql_count("SELECT count(*) FROM admin_actions WHERE action LIKE 'resolve:%' AND outcome LIKE 'refused:%'")
            .await,
        4
    );
    let empty = s
        .api
        .call(
            Method::GET,
            "/admin/v1/reviews",
            Some(ADMIN_TOKEN),
            None,
            &[],
        )
        .await;
    assert!(empty.body["reviews"].as_array().unwrap().is_empty());
}

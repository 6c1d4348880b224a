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

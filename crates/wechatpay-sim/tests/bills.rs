//! The daily bill at the simulator, read through the protocol library's client: payments and
//! refunds of the day with their fees, every bill type, gzip, an empty day, and each
//! adjustment of the control API (a dropped, altered or duplicated line; a summary that does
//! not add up, which the client refuses).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use serde_json::json;
use support::*;
use wechat_pay::v2::{
    BillAnswer, BillError, BillRowKind, BillType, Client, DownloadBillRequest, Error,
    RefundRequest, SignType,
};
use wechat_pay::{Fen, OutRefundNo, WeChatTime};

/// Today, Beijing time (the simulator answers for the current day too).
fn today() -> time::Date {
    let now = WeChatTime::now().to_string();
    time::Date::parse(&now[..8], wechat_pay::v2::bill::BILL_DATE).unwrap()
}

fn iso(date: time::Date) -> String {
    date.to_string()
}

async fn bill(
    client: &Client,
    date: time::Date,
    bill_type: BillType,
    gzip: bool,
) -> Result<BillAnswer, Error> {
    client
        .download_bill(&DownloadBillRequest {
            bill_date: date,
            bill_type,
            gzip,
        })
        .await
}

async fn lines(client: &Client, bill_type: BillType) -> Vec<wechat_pay::v2::BillRow> {
    match bill(client, today(), bill_type, false).await.unwrap() {
        BillAnswer::Bill(b) => b.rows,
        BillAnswer::NoBill => Vec::new(),
    }
}

async fn adjust(sim: &wechatpay_sim::RunningSim, body: serde_json::Value) {
    let (status, v) = control(
        sim,
        reqwest::Method::POST,
        "/sim/v1/bill-adjustments",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

#[tokio::test]
async fn a_day_of_payments_and_refunds_is_billed_with_fees_in_every_type_and_through_gzip() {
    let sim = sim().await;
    let client = refund_client(&sim);
    // Nothing yet: an empty day.
    assert_eq!(
        bill(&client, today(), BillType::All, false).await.unwrap(),
        BillAnswer::NoBill
    );

    let big = paid_order(&sim, "bella", 9000).await;
    let small = paid_order(&sim, "sam", 100).await;
    client
        .refund(&RefundRequest {
            transaction_id: None,
            out_trade_no: Some(big.clone()),
            out_refund_no: OutRefundNo::parse("RF-bill-1").unwrap(),
            total_fee: Fen::new(9000).unwrap(),
            refund_fee: Fen::new(3000).unwrap(),
            refund_fee_type: None,
            refund_desc: None,
            refund_account: None,
            notify_url: None,
        })
        .await
        .unwrap();

    let BillAnswer::Bill(all) = bill(&client, today(), BillType::All, false).await.unwrap() else {
        panic!("no bill for a day with payments");
    };
    assert_eq!(all.rows.len(), 3);
    let payment = all
        .rows
        .iter()
        .find(|r| r.out_trade_no == big.as_str() && r.kind == BillRowKind::Payment)
        .unwrap();
    assert_eq!(
        (payment.order_fen, payment.settlement_fen, payment.fee_e5),
        (9000, 9000, 54_000)
    );
    assert_eq!(
        payment.transaction_id,
        view(&sim, &big).await["transaction_id"].as_str().unwrap()
    );
    let refund = all
        .rows
        .iter()
        .find(|r| r.kind == BillRowKind::Refund)
        .unwrap();
    let r = refund.refund.as_ref().unwrap();
    assert_eq!(
        (r.out_refund_no.as_str(), r.amount_fen, r.status.as_str()),
        ("RF-bill-1", 3000, "PROCESSING")
    );
    assert_eq!(refund.fee_e5, -18_000);
    assert_eq!(all.summary.count, 3);
    assert_eq!(all.summary.settlement_fen, 9100);
    assert_eq!(all.summary.refund_fen, 3000);

    // Gzipped: the same bill.
    assert_eq!(
        bill(&client, today(), BillType::All, true).await.unwrap(),
        BillAnswer::Bill(all.clone())
    );
    // By type.
    let payments = lines(&client, BillType::Success).await;
    assert_eq!(payments.len(), 2);
    assert!(payments.iter().all(|r| r.kind == BillRowKind::Payment));
    assert!(payments.iter().any(|r| r.out_trade_no == small.as_str()));
    let refunds = lines(&client, BillType::Refund).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].refund.as_ref().unwrap().amount_fen, 3000);

    // A day without anything, and a day to come.
    let earlier = today().previous_day().unwrap().previous_day().unwrap();
    assert_eq!(
        bill(&client, earlier, BillType::All, false).await.unwrap(),
        BillAnswer::NoBill
    );
    let tomorrow = today().next_day().unwrap();
    assert!(matches!(
        bill(&client, tomorrow, BillType::All, false).await,
        Err(Error::Protocol { .. })
    ));
}

#[tokio::test]
async fn adjustments_drop_alter_and_duplicate_lines_and_can_break_the_summary() {
    let sim = sim().await;
    let client = refund_client(&sim);
    let a = paid_order(&sim, "ann", 500).await;
    let b = paid_order(&sim, "bob", 700).await;
    let c = paid_order(&sim, "cat", 900).await;
    let day = iso(today());

    adjust(
        &sim,
        json!({ "date": day, "action": "drop", "out_trade_no": a.as_str() }),
    )
    .await;
    adjust(&sim, json!({ "date": day, "action": "alter_amount", "out_trade_no": b.as_str(), "amount_fen": 650 })).await;
    adjust(
        &sim,
        json!({ "date": day, "action": "duplicate", "out_trade_no": c.as_str() }),
    )
    .await;
    let rows = lines(&client, BillType::All).await;
    assert!(rows.iter().all(|r| r.out_trade_no != a.as_str()), "dropped");
    let altered: Vec<_> = rows
        .iter()
        .filter(|r| r.out_trade_no == b.as_str())
        .collect();
    assert_eq!(altered.len(), 1);
    assert_eq!(
        (altered[0].order_fen, altered[0].settlement_fen),
        (650, 650)
    );
    assert_eq!(
        rows.iter().filter(|r| r.out_trade_no == c.as_str()).count(),
        2,
        "duplicated"
    );
    // Cleared: the bill is the records' again.
    let (status, _) = control(
        &sim,
        reqwest::Method::DELETE,
        "/sim/v1/bill-adjustments",
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(lines(&client, BillType::All).await.len(), 3);

    // A summary that does not add up: the client refuses the bill whole.
    adjust(&sim, json!({ "date": day, "action": "corrupt_summary" })).await;
    let refused = bill(&client, today(), BillType::All, false).await;
    assert!(
        matches!(refused, Err(Error::Bill(BillError::Mismatch(_)))),
        "{refused:?}"
    );

    // Nonsense is refused with a message.
    let (status, v) = control(
        &sim,
        reqwest::Method::POST,
        "/sim/v1/bill-adjustments",
        Some(json!({ "date": day, "action": "alter_amount", "out_trade_no": "x" })),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("amount_fen"), "{v}");
}

#[tokio::test]
async fn system_error_is_retryable_and_a_wrong_signature_is_refused() {
    let sim = sim().await;
    paid_order(&sim, "dan", 300).await;
    let client = refund_client(&sim);
    put_faults(&sim, json!({ "system_error_next": 1 })).await;
    let busy = bill(&client, today(), BillType::All, false)
        .await
        .unwrap_err();
    assert!(busy.is_retryable(), "{busy:?}");
    assert!(matches!(
        bill(&client, today(), BillType::All, false).await,
        Ok(BillAnswer::Bill(_))
    ));

    let other_key = wechat_pay::v2::ApiKey::new("0".repeat(32)).unwrap();
    let forged = client_with_key(&sim, SignType::HmacSha256, other_key, false);
    let refused = forged
        .download_bill(&DownloadBillRequest {
            bill_date: today(),
            bill_type: BillType::All,
            gzip: false,
        })
        .await;
    assert!(
        matches!(refused, Err(Error::Protocol { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_portal_refund_is_settled_at_once_unnotified_and_on_the_bill() {
    let sim = sim().await;
    let client = refund_client(&sim);
    let n = paid_order(&sim, "pia", 1000).await;
    let path = format!("/sim/v1/orders/{n}/portal-refunds");
    let (status, refund) = control(
        &sim,
        reqwest::Method::POST,
        &path,
        Some(json!({ "amount_fen": 400 })),
    )
    .await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["status"], "SUCCESS");
    let number = refund["out_refund_no"].as_str().unwrap();
    assert!(number.starts_with("PORTAL"), "{refund}");
    assert!(attempts_of(&refund).is_empty(), "no notification: {refund}");
    let rows = lines(&client, BillType::Refund).await;
    assert_eq!(rows.len(), 1);
    let on_bill = rows[0].refund.as_ref().unwrap();
    assert_eq!(
        (
            on_bill.out_refund_no.as_str(),
            on_bill.amount_fen,
            on_bill.status.as_str()
        ),
        (number, 400, "SUCCESS")
    );

    // Never more than is left; never on an unpaid order.
    let (status, v) = control(
        &sim,
        reqwest::Method::POST,
        &path,
        Some(json!({ "amount_fen": 601 })),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let unpaid = unpaid_order(&sim, "quinn", 100).await;
    let (status, v) = control(
        &sim,
        reqwest::Method::POST,
        &format!("/sim/v1/orders/{unpaid}/portal-refunds"),
        Some(json!({ "amount_fen": 1 })),
    )
    .await;
    assert_eq!(status, 409, "{v}");
}

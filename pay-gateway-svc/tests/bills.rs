//! The daily bill through pay-gateway-svc's DownloadBill, against the simulator over HTTP:
//! a day's payments as lines and totals, an empty day, a bill that does not add up (refused,
//! BILL_INVALID), a malformed date.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use proto::paygateway::v1 as pb;
use serde_json::json;
use support::{Client, TOKEN, client, reason};
use tonic::Code;
use wechatpay_sim::RunningSim;

async fn stack() -> (RunningSim, Client) {
    let running = support::start(1.0, &[]).await;
    (running.sim, client(running.grpc, Some(TOKEN)).await)
}

/// An order placed through the gateway and paid at the simulator; its number.
async fn paid(sim: &RunningSim, client: &mut Client, name: &str, fen: i64) -> String {
    let openid = client
        .code2_session(pb::Code2SessionRequest {
            js_code: format!("test-{name}"),
        })
        .await
        .unwrap()
        .into_inner()
        .openid;
    let number = format!("MPBILL{name}{fen}");
    client
        .create_prepay(pb::CreatePrepayRequest {
            out_trade_no: number.clone(),
            amount_fen: fen,
            description: "Minipay-Tea".into(),
            openid,
            client_ip: "127.0.0.1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let paid = reqwest::Client::new()
        .post(format!("{}/sim/v1/orders/{number}/pay", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    number
}

/// Today, Beijing time.
fn today() -> String {
    let now = wechat_pay::WeChatTime::now().to_string();
    format!("{}-{}-{}", &now[0..4], &now[4..6], &now[6..8])
}

async fn bill(client: &mut Client, date: &str) -> Result<pb::DownloadBillResponse, tonic::Status> {
    client
        .download_bill(pb::DownloadBillRequest { date: date.into() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_day_is_downloaded_checked_and_answered_as_lines_and_totals() {
    let (sim, mut client) = stack().await;
    assert!(
        bill(&mut client, "2020-01-01").await.unwrap().no_bill,
        "an empty day"
    );

    let a = paid(&sim, &mut client, "ada", 2500).await;
    let b = paid(&sim, &mut client, "ben", 100).await;
    let answer = bill(&mut client, &today()).await.unwrap();
    assert!(!answer.no_bill);
    assert_eq!(answer.lines.len(), 2);
    let line = answer.lines.iter().find(|l| l.out_trade_no == a).unwrap();
    assert_eq!(line.kind(), pb::BillLineKind::Payment);
    assert_eq!(
        (line.order_fen, line.settlement_fen, line.fee_e5),
        (2500, 2500, 15_000)
    );
    assert!(line.transaction_id.starts_with("4200"), "{line:?}");
    assert!(answer.lines.iter().any(|l| l.out_trade_no == b));
    let totals = answer.totals.unwrap();
    assert_eq!(
        (totals.lines, totals.settlement_fen, totals.order_fen),
        (2, 2600, 2600)
    );

    // A bill that does not add up is refused whole.
    let adjusted = reqwest::Client::new()
        .post(format!("{}/sim/v1/bill-adjustments", sim.base_url()))
        .header("content-type", "application/json")
        .body(json!({ "date": today(), "action": "corrupt_summary" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(adjusted.status(), 201);
    let refused = bill(&mut client, &today()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "BILL_INVALID");

    let bad = bill(&mut client, "2026/11/27").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
}

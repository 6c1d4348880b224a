//! Refunds at the simulator through the protocol library's client: accepted as PROCESSING,
//! idempotent by `out_refund_no`, never above what was paid, settled by the control API,
//! notified with `req_info` encrypted, and listed by refund query.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use support::*;
use wechat_pay::v2::{
    Error, RefundQueryRequest, RefundRequest, RefundStatus, SignType, parse_refund_notification,
};
use wechat_pay::{Fen, OutRefundNo, OutTradeNo};

fn refund_of(n: &OutTradeNo, number: &str, total: u64, fen: u64) -> RefundRequest {
    RefundRequest {
        transaction_id: None,
        out_trade_no: Some(n.clone()),
        out_refund_no: OutRefundNo::parse(number).unwrap(),
        total_fee: Fen::new(total).unwrap(),
        refund_fee: Fen::new(fen).unwrap(),
        refund_fee_type: None,
        refund_desc: Some("退货".into()),
        refund_account: None,
        notify_url: None,
    }
}

fn err_code(e: &Error) -> String {
    match e {
        Error::Business { code, .. } => code.as_str().to_owned(),
        other => panic!("expected a business refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn partial_refunds_never_exceed_the_payment_and_each_is_notified_encrypted() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url();
    let sim = sim_with(|c| c.refund_notify_url = Some(url)).await;
    let n = paid_order(&sim, "rita", 1999).await;
    let wechat = refund_client(&sim);

    let first = wechat
        .refund(&refund_of(&n, "RF-rita-1", 1999, 500))
        .await
        .unwrap();
    assert_eq!(first.refund_fee, Fen::new(500).unwrap());
    // The same number again is the same refund, not a second one.
    let again = wechat
        .refund(&refund_of(&n, "RF-rita-1", 1999, 500))
        .await
        .unwrap();
    assert_eq!(again.refund_id, first.refund_id);
    // The same number with another amount, and more than what is left, are refused.
    let e = wechat
        .refund(&refund_of(&n, "RF-rita-1", 1999, 501))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "INVALID_REQUEST");
    let e = wechat
        .refund(&refund_of(&n, "RF-rita-2", 1999, 1500))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ERROR");
    wechat
        .refund(&refund_of(&n, "RF-rita-2", 1999, 1499))
        .await
        .unwrap();
    assert_eq!(view(&sim, &n).await["state"], "REFUND");

    // Both PROCESSING until WeChat finishes them; the query lists both.
    let listed = wechat
        .refund_query(&RefundQueryRequest {
            refund_id: None,
            out_refund_no: None,
            transaction_id: None,
            out_trade_no: Some(n.clone()),
        })
        .await
        .unwrap();
    assert_eq!(listed.refunds.len(), 2);
    assert!(
        listed
            .refunds
            .iter()
            .all(|r| r.refund_status == RefundStatus::Processing)
    );
    assert_eq!(receiver.count(), 0);

    let (status, v) = control(
        &sim,
        reqwest::Method::POST,
        "/sim/v1/refunds/RF-rita-1/settle",
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "SUCCESS");
    receiver.wait_for(1).await;
    let notification = parse_refund_notification(&receiver.body(0), &key()).unwrap();
    notification
        .check_merchant(wechatpay_sim::DEFAULT_APPID, wechatpay_sim::DEFAULT_MCH_ID)
        .unwrap();
    assert_eq!(notification.info.out_refund_no.as_str(), "RF-rita-1");
    assert_eq!(notification.info.out_trade_no, n);
    assert_eq!(notification.info.refund_fee, Fen::new(500).unwrap());
    assert_eq!(
        notification.info.refund_id.as_str(),
        first.refund_id.as_str()
    );
    assert_eq!(notification.info.refund_status, RefundStatus::Success);
    assert!(notification.info.success_time.is_some());
    // The body carries no field in the clear but the envelope.
    let body = String::from_utf8(receiver.body(0).to_vec()).unwrap();
    assert!(!body.contains("RF-rita-1"), "{body}");

    let one = wechat
        .refund_query(&RefundQueryRequest::by_out_refund_no(
            OutRefundNo::parse("RF-rita-1").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(one.refunds.len(), 1);
    assert_eq!(one.refunds[0].refund_status, RefundStatus::Success);
    // A settled refund cannot be settled again.
    let (status, _) = control(
        &sim,
        reqwest::Method::POST,
        "/sim/v1/refunds/RF-rita-1/settle",
        Some(serde_json::json!({"status": "REFUNDCLOSE"})),
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_closed_refund_gives_its_amount_back_to_refund_again() {
    let sim = sim().await;
    let n = paid_order(&sim, "carl", 800).await;
    let wechat = refund_client(&sim);
    wechat
        .refund(&refund_of(&n, "RF-carl-1", 800, 800))
        .await
        .unwrap();
    let e = wechat
        .refund(&refund_of(&n, "RF-carl-2", 800, 1))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ERROR");
    let (status, v) = control(
        &sim,
        reqwest::Method::POST,
        "/sim/v1/refunds/RF-carl-1/settle",
        Some(serde_json::json!({"status": "REFUNDCLOSE"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    wechat
        .refund(&refund_of(&n, "RF-carl-2", 800, 800))
        .await
        .unwrap();
}

#[tokio::test]
async fn unpaid_unknown_or_mismatched_orders_are_refused_and_a_client_without_certificate_refuses_itself()
 {
    let sim = sim().await;
    let wechat = refund_client(&sim);
    let openid = login(&sim, "uma").await;
    let unpaid = number();
    client(&sim, SignType::HmacSha256)
        .unified_order(&order(unpaid.clone(), &openid, &dead_url(), 100))
        .await
        .unwrap();
    let e = wechat
        .refund(&refund_of(&unpaid, "RF-uma-1", 100, 100))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ORDERNOTEXIST");
    let e = wechat
        .refund(&refund_of(&number(), "RF-uma-2", 100, 100))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ORDERNOTEXIST");
    let paid = paid_order(&sim, "ulf", 100).await;
    let e = wechat
        .refund(&refund_of(&paid, "RF-ulf-1", 99, 50))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "INVALID_REQUEST");
    let e = wechat
        .refund_query(&RefundQueryRequest::by_out_refund_no(
            OutRefundNo::parse("RF-nobody").unwrap(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "REFUNDNOTEXIST");
    // Without the merchant certificate the client does not even try.
    let plain = client(&sim, SignType::HmacSha256);
    let e = plain
        .refund(&refund_of(&paid, "RF-ulf-2", 100, 50))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
}

/// A simulator serving HTTPS with a certificate `server` signed, trusting merchant
/// certificates `clients` signed.
async fn tls_sim(
    server: &test_support::TestCa,
    clients: &test_support::TestCa,
) -> wechatpay_sim::RunningSim {
    let pem = server.server();
    let tls = wechatpay_sim::SimTls::from_pem(
        pem.cert.as_bytes(),
        pem.key.as_bytes(),
        clients.cert_pem().as_bytes(),
    )
    .unwrap();
    sim_with(|c| c.tls = Some(tls)).await
}

#[tokio::test]
async fn over_tls_the_refund_needs_a_merchant_certificate_from_the_trusted_ca() {
    let (server_ca, merchant_ca, rogue_ca) = (
        test_support::TestCa::new("WeChat test server CA"),
        test_support::TestCa::new("WeChat test merchant CA"),
        test_support::TestCa::new("someone else"),
    );
    let sim = tls_sim(&server_ca, &merchant_ca).await;
    assert!(sim.base_url().starts_with("https://"));
    let merchant = merchant_ca.client(wechatpay_sim::DEFAULT_MCH_ID);
    let wechat = client_of(&sim, Some(&server_ca), Some(&merchant));
    // Unified order needs no certificate: a NATIVE order (no openid), paid in the simulator.
    let anonymous = client_of(&sim, Some(&server_ca), None);
    let n = number();
    let mut native = order(n.clone(), "", &dead_url(), 300);
    native.trade_type = wechat_pay::v2::TradeType::Native;
    native.openid = None;
    native.product_id = Some("TEA".into());
    anonymous.unified_order(&native).await.unwrap();
    let order_key = sim.sim().find(n.as_str(), None).unwrap();
    sim.sim()
        .pay(&order_key, wechatpay_sim::PayResult::Success)
        .unwrap();

    let accepted = wechat
        .refund(&refund_of(&n, "RF-tls-1", 300, 100))
        .await
        .unwrap();
    assert_eq!(accepted.refund_fee, Fen::new(100).unwrap());

    // A connection without a certificate: the simulator refuses the refund itself.
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(server_ca.cert_pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let mut params = wechat_pay::v2::Params::new();
    for (k, v) in [
        ("appid", wechatpay_sim::DEFAULT_APPID),
        ("mch_id", wechatpay_sim::DEFAULT_MCH_ID),
        ("nonce_str", "nocertnonce"),
        ("out_trade_no", n.as_str()),
        ("out_refund_no", "RF-tls-2"),
        ("total_fee", "300"),
        ("refund_fee", "100"),
    ] {
        params.insert(k, v);
    }
    wechat_pay::v2::sign_params(&mut params, &key(), SignType::Md5);
    let answer = http
        .post(format!("{}/secapi/pay/refund", sim.base_url()))
        .body(wechat_pay::v2::xml::encode(&params).unwrap())
        .send()
        .await
        .unwrap();
    let answer = wechat_pay::v2::xml::decode(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.get("return_code"), Some("FAIL"));

    // A certificate from another CA does not get through the handshake.
    let rogue = rogue_ca.client(wechatpay_sim::DEFAULT_MCH_ID);
    let e = client_of(&sim, Some(&server_ca), Some(&rogue))
        .refund(&refund_of(&n, "RF-tls-3", 300, 100))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    let view = sim.sim().view(&order_key).unwrap();
    assert_eq!(view.refunds.len(), 1, "only the certified refund exists");
}

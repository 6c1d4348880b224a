//! pay-gateway-svc speaking API v3 to the simulator behind the same gRPC API: prepay with the
//! RSA `wx.requestPayment` object, queries, close, refund and refund query, the platform
//! certificates it lists for notify-svc, and the start-up checks of the v3 settings.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use proto::paygateway::v1 as pb;
use service_runtime::settings::{MapEnv, SettingsError};
use support::{TOKEN, client, login, prepay_request, reason};
use tonic::Code;
use wechat_pay::v3::{self, EXAMPLE_MERCHANT_PUBLIC_KEY_PEM, WeChatPublicKey};

const V3: &[(&str, &str)] = &[
    ("WECHAT_API_VERSION", "v3"),
    (
        "WECHAT_NOTIFY_URL",
        "http://127.0.0.1:9/wechat/v3/pay/notify",
    ),
    (
        "WECHAT_REFUND_NOTIFY_URL",
        "http://127.0.0.1:9/wechat/v3/refund/notify",
    ),
];

#[tokio::test]
async fn the_same_grpc_api_over_v3() {
    let running = support::start(0.001, V3).await;
    let mut client = client(running.grpc, Some(TOKEN)).await;
    let openid = login(&mut client, "v3-alice").await;
    let answer = client
        .create_prepay(prepay_request("GWV3000001", &openid, 1999))
        .await
        .unwrap()
        .into_inner();
    let payment = answer.payment.unwrap();
    assert_eq!(payment.sign_type, "RSA");
    assert_eq!(payment.package, format!("prepay_id={}", answer.prepay_id));
    // paySign is the merchant's RSA signature of appId, timeStamp, nonceStr, package.
    let merchant = WeChatPublicKey::from_pem(EXAMPLE_MERCHANT_PUBLIC_KEY_PEM).unwrap();
    let message = v3::pay_sign_message(
        &payment.app_id,
        &payment.time_stamp,
        &payment.nonce_str,
        &payment.package,
    );
    assert!(merchant.verifies(&message, &payment.pay_sign));
    assert!(answer.prepay_expires_at_unix > 0);

    let unpaid = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GWV3000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unpaid.state(), pb::TradeState::Notpay);
    running
        .sim
        .sim()
        .pay(
            &running.sim.sim().find("GWV3000001", None).unwrap(),
            wechatpay_sim::PayResult::Success,
        )
        .unwrap();
    let paid = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GWV3000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.state(), pb::TradeState::Success);
    assert_eq!(paid.amount_fen, 1999);
    assert_eq!(paid.openid, openid);
    assert!(paid.paid_at_unix > 0 && !paid.transaction_id.is_empty());

    // Paid: closing is refused as ORDER_PAID, the same reason as under v2.
    let refused = client
        .close_payment(pb::ClosePaymentRequest {
            out_trade_no: "GWV3000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "ORDER_PAID")
    );

    // v3 refunds need no client certificate.
    let refund = client
        .refund(pb::RefundRequest {
            out_trade_no: "GWV3000001".into(),
            out_refund_no: "GWV3R000001".into(),
            total_fen: 1999,
            refund_fen: 999,
            reason: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.refund_fen, 999);
    assert_eq!(refund.transaction_id, paid.transaction_id);
    let key = running.sim.sim().find_refund("GWV3R000001", None).unwrap();
    running
        .sim
        .sim()
        .settle_refund(&key, "GWV3R000001", wechat_pay::v2::RefundStatus::Success)
        .unwrap();
    let settled = client
        .query_refund(pb::QueryRefundRequest {
            out_refund_no: "GWV3R000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settled.state(), pb::RefundState::Success);
    assert_eq!(settled.succeeded_at.len(), "2026-12-02 10:00:00".len());
    let missing = client
        .query_refund(pb::QueryRefundRequest {
            out_refund_no: "GWV3R000404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "REFUND_NOT_EXIST")
    );

    // An unpaid order closes, and closing it again is not an error.
    client
        .create_prepay(prepay_request("GWV3000002", &openid, 5))
        .await
        .unwrap();
    for already_closed in [false, true] {
        let closed = client
            .close_payment(pb::ClosePaymentRequest {
                out_trade_no: "GWV3000002".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(closed.already_closed, already_closed);
    }

    // The platform certificate fetched at start, listed for notify-svc.
    let listed = client
        .list_platform_certificates(pb::ListPlatformCertificatesRequest { refresh: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.certificates.len(), 1);
    assert_eq!(
        listed.certificates[0].serial_no,
        "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304"
    );
}

#[tokio::test]
async fn wechat_busy_under_v3_is_retried_and_then_unavailable() {
    let running = support::start(0.001, V3).await;
    let mut client = client(running.grpc, Some(TOKEN)).await;
    running
        .sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            system_error_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let busy = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GWV3BUSY01".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::Unavailable, "{busy:?}");
}

#[test]
fn v3_settings_are_checked_at_start_naming_the_variable() {
    let env = |pairs: &[(&str, &str)]| {
        let mut env = MapEnv::from_pairs([
            ("WECHAT_APPID", "wxd930ea5d5a258f4f"),
            ("WECHAT_MCH_ID", "10000100"),
            ("WECHAT_API_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ("WECHAT_APP_SECRET", "secret"),
            ("GRPC_TOKEN", TOKEN),
            ("WECHAT_API_VERSION", "v3"),
        ]);
        for (k, v) in pairs {
            env.0.insert((*k).into(), (*v).into());
        }
        pay_gateway_svc::Settings::from_source(&env)
    };
    let named = |result: Result<pay_gateway_svc::Settings, SettingsError>| match result {
        Err(SettingsError::MerchantMissing { name } | SettingsError::Missing { name }) => name,
        Err(SettingsError::Invalid { name, .. }) => name,
        Ok(_) => "accepted".into(),
    };
    assert_eq!(named(env(&[])), "WECHAT_MCH_SERIAL");
    assert_eq!(
        named(env(&[("WECHAT_MCH_SERIAL", "5157F09E")])),
        "WECHAT_MCH_PRIVATE_KEY_FILE"
    );
    let key = v3::EXAMPLE_MERCHANT_KEY_PEM;
    let with_key = [
        ("WECHAT_MCH_SERIAL", "5157F09E"),
        ("WECHAT_MCH_PRIVATE_KEY", key),
    ];
    assert_eq!(named(env(&with_key)), "WECHAT_API_V3_KEY");
    let mut full = with_key.to_vec();
    full.push(("WECHAT_API_V3_KEY", "short"));
    assert_eq!(named(env(&full)), "WECHAT_API_V3_KEY");
    full.pop();
    full.push(("WECHAT_API_V3_KEY", v3::EXAMPLE_API_V3_KEY));
    // Platform certificates alone are enough; turning them off needs the public key.
    assert_eq!(named(env(&full)), "accepted");
    full.push(("WECHAT_PLATFORM_CERTIFICATES", "off"));
    assert_eq!(named(env(&full)), "WECHAT_PUBLIC_KEY_FILE");
    full.push(("WECHAT_PUBLIC_KEY", v3::EXAMPLE_WECHAT_PUBLIC_KEY_PEM));
    assert_eq!(named(env(&full)), "WECHAT_PUBLIC_KEY_ID");
    full.push(("WECHAT_PUBLIC_KEY_ID", "KEY1"));
    assert_eq!(named(env(&full)), "WECHAT_PUBLIC_KEY_ID");
    full.pop();
    full.push(("WECHAT_PUBLIC_KEY_ID", v3::EXAMPLE_WECHAT_PUBLIC_KEY_ID));
    assert_eq!(named(env(&full)), "accepted");
    full.push(("WECHAT_MCH_PRIVATE_KEY_FILE", "/nonexistent/key.pem"));
    assert_eq!(named(env(&full)), "WECHAT_MCH_PRIVATE_KEY_FILE");
    assert_eq!(
        named(env(&[("WECHAT_API_VERSION", "v4")])),
        "WECHAT_API_VERSION"
    );
    // A key that is not a private key is refused, and never shown.
    let bad = [
        ("WECHAT_MCH_SERIAL", "5157F09E"),
        (
            "WECHAT_MCH_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ),
    ];
    match env(&bad) {
        Err(e @ SettingsError::Invalid { .. }) => assert!(!e.to_string().contains("AAAA"), "{e}"),
        other => panic!("{other:?}"),
    }
}

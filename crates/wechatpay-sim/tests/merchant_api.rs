//! The protocol library's client (and raw signed calls) against the simulator: every
//! endpoint and every error WeChat would give.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use support::*;
use wechat_pay::v2::{
    self, CloseOrderRequest, ErrCode, Error, OrderQueryRequest, Params, RequestPayment, SignType,
    TradeState,
};
use wechat_pay::{Fen, OutTradeNo};

fn p(pairs: &[(&str, &str)]) -> Params {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn unified_order_then_pay_then_query_with_both_sign_types() {
    let sim = sim().await;
    let openid = login(&sim, "alice").await;
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let client = client(&sim, sign_type);
        let n = number();
        let prepay = client
            .unified_order(&order(
                n.clone(),
                &openid,
                "http://127.0.0.1:9/notify",
                1999,
            ))
            .await
            .unwrap();
        assert!(prepay.prepay_id.starts_with("wx") && prepay.prepay_id.len() <= 64);
        let pay = RequestPayment::new(
            wechatpay_sim::DEFAULT_APPID,
            &prepay.prepay_id,
            sign_type,
            &key(),
        );
        assert_eq!(pay.verify(&key()), Ok(()));

        let q = client
            .order_query(&OrderQueryRequest::by_out_trade_no(n.clone()))
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::Notpay);
        assert_eq!(q.transaction_id, None);

        let (status, v) = pay_order(&sim, n.as_str(), None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["state"], "SUCCESS");

        let q = client
            .order_query(&OrderQueryRequest::by_out_trade_no(n.clone()))
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::Success);
        assert_eq!(q.total_fee, Some(Fen::new(1999).unwrap()));
        assert_eq!(q.openid.as_deref(), Some(openid.as_str()));
        let txn = q.transaction_id.clone().unwrap();
        assert_eq!(txn.len(), 28);
        assert!(q.time_end.is_some());
        let by_txn = client
            .order_query(&OrderQueryRequest {
                transaction_id: Some(txn),
                out_trade_no: None,
            })
            .await
            .unwrap();
        assert_eq!(by_txn.out_trade_no, n);

        let again = client
            .unified_order(&order(
                n.clone(),
                &openid,
                "http://127.0.0.1:9/notify",
                1999,
            ))
            .await
            .unwrap_err();
        assert_eq!(again.err_code(), Some(&ErrCode::OrderPaid));
        let close = client
            .close_order(&CloseOrderRequest { out_trade_no: n })
            .await
            .unwrap_err();
        assert_eq!(close.err_code(), Some(&ErrCode::OrderPaid));
    }
}

#[tokio::test]
async fn re_entry_same_parameters_same_prepay_different_parameters_refused() {
    let sim = sim().await;
    let openid = login(&sim, "bob").await;
    let client = client(&sim, SignType::HmacSha256);
    let n = number();
    let first = client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap();
    let second = client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap();
    assert_eq!(first.prepay_id, second.prepay_id);
    let changed = client
        .unified_order(&order(n, &openid, "http://127.0.0.1:9/notify", 101))
        .await
        .unwrap_err();
    assert_eq!(changed.err_code(), Some(&ErrCode::OutTradeNoUsed));
}

#[tokio::test]
async fn expired_prepay_is_refreshed_on_re_entry() {
    let sim = sim().await; // prepay_ttl: 2 h

    let openid = login(&sim, "carol").await;
    let client = client(&sim, SignType::Md5);
    let n = number();
    let first = client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap();
    sim.sim()
        .advance_clock(std::time::Duration::from_secs(2 * 3600 + 1));
    let (status, _) = pay_order(&sim, n.as_str(), None).await;
    assert_eq!(status, 409, "an expired prepay cannot be paid");
    let second = client
        .unified_order(&order(n, &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap();
    assert_ne!(first.prepay_id, second.prepay_id);
}

#[tokio::test]
async fn close_order_lifecycle() {
    let sim = sim().await;
    let openid = login(&sim, "dave").await;
    let client = client(&sim, SignType::Md5);
    let n = number();
    client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap();
    client
        .close_order(&CloseOrderRequest {
            out_trade_no: n.clone(),
        })
        .await
        .unwrap();
    let q = client
        .order_query(&OrderQueryRequest::by_out_trade_no(n.clone()))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Closed);
    let twice = client
        .close_order(&CloseOrderRequest {
            out_trade_no: n.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(twice.err_code(), Some(&ErrCode::OrderClosed));
    let reorder = client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/notify", 100))
        .await
        .unwrap_err();
    assert_eq!(reorder.err_code(), Some(&ErrCode::OrderClosed));
    let (status, v) = pay_order(&sim, n.as_str(), None).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("invalid_state")));
    let unknown = client
        .order_query(&OrderQueryRequest::by_out_trade_no(number()))
        .await
        .unwrap_err();
    assert_eq!(unknown.err_code(), Some(&ErrCode::OrderNotExist));
    let unknown = client
        .close_order(&CloseOrderRequest {
            out_trade_no: number(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.err_code(), Some(&ErrCode::OrderNotExist));
}

#[tokio::test]
async fn jsapi_needs_an_openid_this_simulator_issued_for_the_appid() {
    let sim = sim().await;
    let client = client(&sim, SignType::Md5);
    let stranger = client
        .unified_order(&order(
            number(),
            "oNeverLoggedIn000000000000000",
            "http://127.0.0.1:9/n",
            1,
        ))
        .await;
    assert_eq!(stranger.unwrap_err().err_code(), Some(&ErrCode::ParamError));
    let mut no_openid = order(number(), "x", "http://127.0.0.1:9/n", 1);
    no_openid.openid = None;
    assert_eq!(
        client
            .unified_order(&no_openid)
            .await
            .unwrap_err()
            .err_code(),
        Some(&ErrCode::LackParams)
    );
}

fn base_order(openid: &str) -> Params {
    p(&[
        ("body", "Minipay-Test"),
        ("out_trade_no", "RAW0000000001"),
        ("total_fee", "1"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", "https://shop.example/notify"),
        ("trade_type", "JSAPI"),
        ("openid", openid),
    ])
}

#[tokio::test]
async fn field_formats_lengths_and_required_fields() {
    let sim = sim().await;
    let openid = login(&sim, "erin").await;
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("total_fee", Some("0"), "INVALID_REQUEST"),
        ("total_fee", Some("1.5"), "INVALID_REQUEST"),
        ("total_fee", Some("-1"), "INVALID_REQUEST"),
        ("total_fee", None, "LACK_PARAMS"),
        ("out_trade_no", Some("abc"), "INVALID_REQUEST"),
        ("out_trade_no", Some("has space 123"), "INVALID_REQUEST"),
        ("out_trade_no", Some(&"x".repeat(33)), "INVALID_REQUEST"),
        ("body", None, "LACK_PARAMS"),
        ("body", Some(&"长".repeat(128)), "INVALID_REQUEST"),
        ("nonce_str", Some(&"n".repeat(33)), "INVALID_REQUEST"),
        ("spbill_create_ip", Some("not-an-ip"), "INVALID_REQUEST"),
        (
            "notify_url",
            Some("https://shop.example/notify?x=1"),
            "INVALID_REQUEST",
        ),
        (
            "notify_url",
            Some("ftp://shop.example/notify"),
            "INVALID_REQUEST",
        ),
        ("trade_type", Some("BOGUS"), "INVALID_REQUEST"),
        ("time_start", Some("2024-01-01"), "INVALID_REQUEST"),
        ("time_expire", Some("20991301000000"), "INVALID_REQUEST"),
        ("fee_type", Some("USD"), "INVALID_REQUEST"),
        ("appid", Some("wx0000000000000000"), "APPID_MCHID_NOT_MATCH"),
    ];
    for (field, value, code) in cases {
        let mut params = base_order(&openid);
        match value {
            Some(v) => params.insert(*field, *v),
            None => params.remove(field),
        };
        let answer = raw_call(&sim, "/pay/unifiedorder", params, true).await;
        assert_eq!(
            answer.get("return_code"),
            Some("SUCCESS"),
            "{field}={value:?}"
        );
        assert_eq!(answer.get("result_code"), Some("FAIL"), "{field}={value:?}");
        assert_eq!(
            answer.get("err_code"),
            Some(*code),
            "{field}={value:?}: {answer:?}"
        );
        assert_eq!(
            v2::verify(&answer, &key(), SignType::Md5),
            Ok(()),
            "business refusals are signed"
        );
    }
    // time_expire closer than a minute from now.
    let soon = wechat_pay::WeChatTime::now()
        .plus_seconds(30)
        .unwrap()
        .to_string();
    let mut params = base_order(&openid);
    params.insert("time_expire", soon);
    let answer = raw_call(&sim, "/pay/unifiedorder", params, true).await;
    assert_eq!(answer.get("err_code"), Some("INVALID_REQUEST"));
    // A valid window is accepted.
    let later = wechat_pay::WeChatTime::now()
        .plus_seconds(900)
        .unwrap()
        .to_string();
    let mut params = base_order(&openid);
    params.insert("time_expire", later);
    params.insert("out_trade_no", "RAW0000000002");
    let answer = raw_call(&sim, "/pay/unifiedorder", params, true).await;
    assert_eq!(answer.get("result_code"), Some("SUCCESS"), "{answer:?}");
}

#[tokio::test]
async fn protocol_refusals_are_unsigned_return_code_fail() {
    let sim = sim().await;
    let openid = login(&sim, "frank").await;
    let url = format!("{}/pay/unifiedorder", sim.base_url());
    let get = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let cases: Vec<(Params, &str)> = vec![
        (
            raw_call(&sim, "/pay/unifiedorder", base_order(&openid), false).await,
            "unsigned",
        ),
        (
            raw_post(&sim, "/pay/unifiedorder", "<xml><a>1</xml>".into()).await,
            "malformed",
        ),
        (
            raw_post(&sim, "/pay/unifiedorder", "<!DOCTYPE x><xml/>".into()).await,
            "doctype",
        ),
        (
            raw_post(&sim, "/pay/unifiedorder", " ".into()).await,
            "empty",
        ),
        (wechat_pay::v2::xml::decode(get.as_bytes()).unwrap(), "GET"),
        (
            {
                let mut params = base_order(&openid);
                params.insert("mch_id", "99999999");
                raw_call(&sim, "/pay/unifiedorder", params, true).await
            },
            "unknown mch_id",
        ),
        (
            {
                let mut params = base_order(&openid);
                params.insert("appid", wechatpay_sim::DEFAULT_APPID);
                params.insert("mch_id", "10000100");
                params.insert("nonce_str", "n1");
                v2::sign_params(
                    &mut params,
                    &wechat_pay::v2::ApiKey::new("ffffffffffffffffffffffffffffffff").unwrap(),
                    SignType::Md5,
                );
                raw_post(&sim, "/pay/unifiedorder", v2::xml::encode(&params).unwrap()).await
            },
            "wrong key",
        ),
        (
            {
                let mut params = base_order(&openid);
                params.insert("sign_type", "SHA1");
                raw_call(&sim, "/pay/unifiedorder", params, true).await
            },
            "unknown sign_type",
        ),
    ];
    for (answer, label) in cases {
        assert_eq!(
            answer.get("return_code"),
            Some("FAIL"),
            "{label}: {answer:?}"
        );
        assert!(answer.get_non_empty("return_msg").is_some(), "{label}");
        assert!(
            !answer.contains("sign"),
            "{label}: protocol refusals are not signed"
        );
    }
}

#[tokio::test]
async fn systemerror_fault_twice_then_success_yields_a_prepay() {
    let sim = sim().await;
    let openid = login(&sim, "gina").await;
    let (status, _) = put_faults(&sim, serde_json::json!({"system_error_next": 2})).await;
    assert_eq!(status, 200);
    let client = client(&sim, SignType::Md5);
    let n = number();
    client
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/n", 5))
        .await
        .unwrap();
    assert_eq!(
        sim.sim().faults().system_error_next,
        0,
        "both injected errors were consumed"
    );

    let (status, _) = put_faults(&sim, serde_json::json!({"system_error_rate": 1.0})).await;
    assert_eq!(status, 200);
    let err = client
        .order_query(&OrderQueryRequest::by_out_trade_no(n))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Business {
                code: ErrCode::SystemError,
                ..
            }
        ),
        "{err}"
    );
    let (status, v) = put_faults(&sim, serde_json::json!({"system_error_rate": 2.0})).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("invalid_request")));
    let (status, _) = put_faults(&sim, serde_json::json!({"no_such_fault": true})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn latency_fault_delays_answers() {
    let sim = sim_with(|c| c.faults.latency_ms = 200).await;
    let client = client(&sim, SignType::Md5);
    let started = std::time::Instant::now();
    let _ = client
        .order_query(&OrderQueryRequest::by_out_trade_no(number()))
        .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn sandbox_sign_key_and_sandbox_orders() {
    let sim = sim().await;
    let openid = login(&sim, "hank").await;
    let sandbox_key = client(&sim, SignType::HmacSha256)
        .sandbox_sign_key()
        .await
        .unwrap();
    assert_ne!(sandbox_key.expose(), key().expose());
    let sandbox = client_with_key(&sim, SignType::Md5, sandbox_key, true);
    let n = number();
    sandbox
        .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/n", 101))
        .await
        .unwrap();
    let q = sandbox
        .order_query(&OrderQueryRequest::by_out_trade_no(n.clone()))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Notpay);
    // The production API does not see sandbox orders, and the production key is refused there.
    let prod = client(&sim, SignType::Md5);
    assert_eq!(
        prod.order_query(&OrderQueryRequest::by_out_trade_no(n))
            .await
            .unwrap_err()
            .err_code(),
        Some(&ErrCode::OrderNotExist)
    );
    let wrong = client_with_key(&sim, SignType::Md5, key(), true);
    assert!(matches!(
        wrong
            .order_query(&OrderQueryRequest::by_out_trade_no(number()))
            .await,
        Err(Error::Protocol { .. })
    ));
}

#[tokio::test]
async fn unknown_extra_fields_are_kept_by_the_client_and_typed_values_parse() {
    let sim = sim().await;
    let openid = login(&sim, "ivy").await;
    let client = client(&sim, SignType::Md5);
    let n = OutTradeNo::parse("EXTRA000001").unwrap();
    let prepay = client
        .unified_order(&order(n, &openid, "http://127.0.0.1:9/n", 1))
        .await
        .unwrap();
    assert!(prepay.extra.is_empty() || prepay.extra.keys().all(|k| !k.is_empty()));
    assert_eq!(prepay.trade_type, v2::TradeType::Jsapi);
}

#[tokio::test]
async fn re_entry_of_an_existing_order_answers_from_its_state_not_the_expire_window() {
    let sim = sim().await;
    let openid = login(&sim, "jane").await;
    let mut params = base_order(&openid);
    params.insert("out_trade_no", "WINDOW0000001");
    params.insert(
        "time_expire",
        wechat_pay::WeChatTime::now()
            .plus_seconds(90)
            .unwrap()
            .to_string(),
    );
    let first = raw_call(&sim, "/pay/unifiedorder", params.clone(), true).await;
    assert_eq!(first.get("result_code"), Some("SUCCESS"), "{first:?}");
    let (status, _) = pay_order(&sim, "WINDOW0000001", None).await;
    assert_eq!(status, 200);
    sim.sim().advance_clock(std::time::Duration::from_secs(60)); // the window is now under 60 s
    let again = raw_call(&sim, "/pay/unifiedorder", params, true).await;
    assert_eq!(again.get("err_code"), Some("ORDERPAID"), "{again:?}");
}

#[tokio::test]
async fn close_order_ignores_a_stray_transaction_id() {
    let sim = sim().await;
    let openid = login(&sim, "kyle").await;
    let client = client(&sim, SignType::Md5);
    let (paid, open) = (number(), number());
    for n in [&paid, &open] {
        client
            .unified_order(&order(n.clone(), &openid, "http://127.0.0.1:9/n", 1))
            .await
            .unwrap();
    }
    let (_, v) = pay_order(&sim, paid.as_str(), None).await;
    let txn = v["transaction_id"].as_str().unwrap().to_owned();
    let answer = raw_call(
        &sim,
        "/pay/closeorder",
        p(&[("out_trade_no", open.as_str()), ("transaction_id", &txn)]),
        true,
    )
    .await;
    assert_eq!(answer.get("result_code"), Some("SUCCESS"), "{answer:?}");
    assert_eq!(view(&sim, &open).await["state"], "CLOSED");
    assert_eq!(view(&sim, &paid).await["state"], "SUCCESS");
}

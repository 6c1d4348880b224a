//! The v2 client against a scripted WeChat peer over real HTTP: signing, verification of
//! every answer, typed results, and retries of retryable failures only.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::{APPID, MCH_ID, Peer, Step, key, spawn_peer};
use wechat_pay::v2::{
    self, Client, ClientConfig, CloseOrderRequest, ErrCode, Error, Merchant, OrderQueryRequest,
    RetryPolicy, SignType, SignatureError, TradeState, UnifiedOrderRequest,
};
use wechat_pay::{Fen, OutTradeNo, TransportError};

fn order() -> UnifiedOrderRequest {
    UnifiedOrderRequest::jsapi(
        OutTradeNo::parse("MP20240101000001").unwrap(),
        "Minipay-Tea",
        Fen::new(1999).unwrap(),
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "https://shop.example/wechat/pay/notify",
        "127.0.0.1",
    )
}

async fn client_for(peer: &Peer, sign_type: SignType) -> Client {
    let addr = spawn_peer(peer.clone()).await;
    let merchant = Merchant {
        appid: APPID.into(),
        mch_id: MCH_ID.into(),
        key: key(),
        sign_type,
    };
    let mut config = ClientConfig::new(format!("http://{addr}").parse().unwrap());
    config.timeout = Duration::from_millis(1000);
    config.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        deadline: Duration::from_secs(5),
    };
    Client::new(merchant, config).unwrap()
}

fn prepay() -> Step {
    Step::Ok(vec![
        ("trade_type", "JSAPI"),
        ("prepay_id", "wx201410272009395522657a690389285100"),
    ])
}

#[tokio::test]
async fn unified_order_is_signed_and_typed() {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let peer = Peer::new(vec![prepay()]);
        let client = client_for(&peer, sign_type).await;
        let answer = client.unified_order(&order()).await.unwrap();
        assert_eq!(answer.prepay_id, "wx201410272009395522657a690389285100");
        let sent = peer.request(0);
        assert_eq!(sent.get("sign_type"), Some(sign_type.as_str()));
        assert_eq!(sent.get("total_fee"), Some("1999"));
        assert_eq!(sent.get("appid"), Some(APPID));
        assert_eq!(sent.get("nonce_str").map(str::len), Some(32));
        assert_eq!(v2::verify(&sent, &key(), sign_type), Ok(()));
    }
}

#[tokio::test]
async fn systemerror_twice_then_success_retries_with_identical_business_fields() {
    let peer = Peer::new(vec![
        Step::Business("SYSTEMERROR"),
        Step::Business("SYSTEMERROR"),
        prepay(),
    ]);
    let client = client_for(&peer, SignType::HmacSha256).await;
    let answer = client.unified_order(&order()).await.unwrap();
    assert_eq!(answer.prepay_id, "wx201410272009395522657a690389285100");
    assert_eq!(peer.request_count(), 3);
    let strip = |mut p: v2::Params| {
        p.remove("nonce_str");
        p.remove("sign");
        p
    };
    assert_eq!(strip(peer.request(0)), strip(peer.request(2)));
    assert_ne!(
        peer.request(0).get("nonce_str"),
        peer.request(1).get("nonce_str")
    );
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let peer = Peer::new(vec![Step::Business("SYSTEMERROR"); 5]);
    let client = client_for(&peer, SignType::Md5).await;
    let err = client.unified_order(&order()).await.unwrap_err();
    assert!(
        matches!(err.err_code(), Some(ErrCode::SystemError)),
        "{err}"
    );
    assert_eq!(peer.request_count(), 3);
}

#[tokio::test]
async fn http_5xx_and_timeouts_are_retried() {
    let peer = Peer::new(vec![Step::Status(503), Step::Hang, prepay()]);
    let client = client_for(&peer, SignType::Md5).await;
    client.unified_order(&order()).await.unwrap();
    assert_eq!(peer.request_count(), 3);

    let peer = Peer::new(vec![Step::Hang; 3]);
    let client = client_for(&peer, SignType::Md5).await;
    let err = client.unified_order(&order()).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::Timeout(_))),
        "{err}"
    );
}

#[tokio::test]
async fn final_errors_are_not_retried() {
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Step, Check)> = vec![
        (Step::Business("ORDERPAID"), |e| {
            matches!(e.err_code(), Some(ErrCode::OrderPaid))
        }),
        (Step::Business("ORDERCLOSED"), |e| {
            matches!(e.err_code(), Some(ErrCode::OrderClosed))
        }),
        (Step::Business("OUT_TRADE_NO_USED"), |e| {
            matches!(e.err_code(), Some(ErrCode::OutTradeNoUsed))
        }),
        (
            Step::ReturnFail("签名错误"),
            |e| matches!(e, Error::Protocol { return_msg } if return_msg == "签名错误"),
        ),
        (Step::Status(404), |e| {
            matches!(e, Error::HttpStatus { status: 404 })
        }),
        (Step::BadSign, |e| {
            matches!(e, Error::Signature(SignatureError::Mismatch))
        }),
        (Step::Unsigned, |e| {
            matches!(e, Error::Signature(SignatureError::Missing))
        }),
        (Step::OtherMerchant, |e| {
            matches!(e, Error::MerchantMismatch { field: "mch_id" })
        }),
        (Step::Raw("<!DOCTYPE x><xml/>".into()), |e| {
            matches!(e, Error::Decode(_))
        }),
        (
            Step::Raw(format!("<xml><a>{}</a></xml>", "x".repeat(70_000))),
            |e| matches!(e, Error::Transport(TransportError::TooLarge { .. })),
        ),
    ];
    for (step, check) in cases {
        let label = format!("{step:?}").chars().take(60).collect::<String>();
        let peer = Peer::new(vec![step]);
        let client = client_for(&peer, SignType::Md5).await;
        let err = client.unified_order(&order()).await.unwrap_err();
        assert!(check(&err), "{label}: got {err:?}");
        assert!(!err.is_retryable(), "{label}");
        assert_eq!(
            peer.request_count(),
            1,
            "{label}: a final error must not be retried"
        );
    }
}

#[tokio::test]
async fn zero_amount_is_refused_before_sending() {
    let peer = Peer::new(vec![]);
    let client = client_for(&peer, SignType::Md5).await;
    let mut req = order();
    req.total_fee = Fen::ZERO;
    assert!(matches!(
        client.unified_order(&req).await,
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(peer.request_count(), 0);
}

#[tokio::test]
async fn order_query_and_close_are_typed() {
    let peer = Peer::new(vec![
        Step::Ok(vec![
            ("trade_state", "SUCCESS"),
            ("out_trade_no", "MP20240101000001"),
            ("transaction_id", "4200000000000000000000000001"),
            ("total_fee", "1999"),
            ("cash_fee", "1999"),
            ("time_end", "20240101120000"),
            ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            ("coupon_fee_0", "0"),
        ]),
        Step::Ok(vec![("result_msg", "OK")]),
    ]);
    let client = client_for(&peer, SignType::HmacSha256).await;
    let q = client
        .order_query(&OrderQueryRequest::by_out_trade_no(
            OutTradeNo::parse("MP20240101000001").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Success);
    assert_eq!(q.total_fee, Some(Fen::new(1999).unwrap()));
    assert_eq!(q.extra.get("coupon_fee_0").map(String::as_str), Some("0"));
    let c = client
        .close_order(&CloseOrderRequest {
            out_trade_no: OutTradeNo::parse("MP20240101000001").unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(c.result_msg.as_deref(), Some("OK"));
    assert!(peer.request(1).get("out_trade_no").is_some());
}

#[tokio::test]
async fn sandbox_sign_key_is_md5_signed_and_verified() {
    let peer = Peer::new(vec![Step::Ok(vec![(
        "sandbox_signkey",
        "0123456789abcdef0123456789abcdef",
    )])]);
    let client = client_for(&peer, SignType::HmacSha256).await;
    let sandbox_key = client.sandbox_sign_key().await.unwrap();
    assert_eq!(sandbox_key.expose(), "0123456789abcdef0123456789abcdef");
    let sent = peer.request(0);
    assert_eq!(v2::verify(&sent, &key(), SignType::Md5), Ok(()));
    assert!(!sent.contains("appid"));

    let peer = Peer::new(vec![Step::Unsigned]);
    let client = client_for(&peer, SignType::Md5).await;
    assert!(matches!(
        client.sandbox_sign_key().await,
        Err(Error::Signature(SignatureError::Missing))
    ));
}

#[tokio::test]
async fn refused_connection_is_a_retryable_transport_error() {
    // Bind then drop a listener: nothing accepts on that port.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let merchant = Merchant {
        appid: APPID.into(),
        mch_id: MCH_ID.into(),
        key: key(),
        sign_type: SignType::Md5,
    };
    let mut config = ClientConfig::new(format!("http://{addr}").parse().unwrap());
    config.retry.max_attempts = 1;
    let client = Client::new(merchant, config).unwrap();
    let err = client.unified_order(&order()).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::Network(_))),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

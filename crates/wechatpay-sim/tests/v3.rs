//! The simulator's v3 API through the protocol library's v3 client, over real HTTP: prepay,
//! queries, close, refunds, certificates; every request check (signature, timestamp, serial);
//! answers signed with the key the request named; signed, encrypted notifications on the
//! retry schedule, and the switch of their signer from certificate to public key.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use support::{eventually, login, number, pay_order, put_faults, sim_with};
use wechat_pay::v3::{
    self, ApiV3Key, Client, ClientConfig, EXAMPLE_API_V3_KEY, EXAMPLE_MERCHANT_KEY_PEM,
    EXAMPLE_MERCHANT_SERIAL, EXAMPLE_PLATFORM_CERT_SERIAL, EXAMPLE_WECHAT_PUBLIC_KEY_ID,
    EXAMPLE_WECHAT_PUBLIC_KEY_PEM, JsapiPrepayRequest, MerchantKey, Notification, Payer,
    PrepayAmount, RefundRequest, RefundRequestAmount, Verifier, WeChatPublicKey,
};
use wechat_pay::{Fen, OutRefundNo, OutTradeNo};
use wechatpay_sim::{DEFAULT_APPID, DEFAULT_MCH_ID, RunningSim};

fn merchant_key() -> Arc<MerchantKey> {
    Arc::new(MerchantKey::from_pem(EXAMPLE_MERCHANT_KEY_PEM, EXAMPLE_MERCHANT_SERIAL).unwrap())
}

fn api_v3_key() -> ApiV3Key {
    ApiV3Key::new(EXAMPLE_API_V3_KEY).unwrap()
}

fn public_key_verifier() -> Verifier {
    let verifier = Verifier::new();
    verifier.set_public_key(
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        WeChatPublicKey::from_pem(EXAMPLE_WECHAT_PUBLIC_KEY_PEM).unwrap(),
    );
    verifier
}

fn client(sim: &RunningSim, verifier: Verifier) -> Client {
    let merchant = v3::Merchant {
        appid: DEFAULT_APPID.into(),
        mchid: DEFAULT_MCH_ID.into(),
        key: merchant_key(),
        api_v3_key: api_v3_key(),
    };
    let mut config = ClientConfig::new(sim.base_url().parse().unwrap());
    config.retry = wechat_pay::RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        deadline: Duration::from_secs(5),
    };
    Client::new(merchant, verifier, config).unwrap()
}

fn prepay(
    out_trade_no: &OutTradeNo,
    openid: &str,
    notify_url: &str,
    fen: u64,
) -> JsapiPrepayRequest {
    JsapiPrepayRequest {
        appid: String::new(),
        mchid: String::new(),
        description: "Minipay-Test".into(),
        out_trade_no: out_trade_no.clone(),
        time_expire: None,
        attach: None,
        notify_url: notify_url.into(),
        amount: PrepayAmount {
            total: Fen::new(fen).unwrap(),
            currency: Some("CNY".into()),
        },
        payer: Payer {
            openid: openid.into(),
        },
    }
}

/// What a receiver got: each request's headers and body.
type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A v3 notification receiver keeping headers and bodies; answers `status`.
#[derive(Clone)]
struct V3Receiver {
    url: String,
    got: Got,
}

impl V3Receiver {
    async fn start(status: StatusCode) -> V3Receiver {
        let got: Got = Arc::default();
        let app = Router::new()
            .route(
                "/v3/notify",
                post(
                    move |State(got): State<Got>, headers: HeaderMap, body: Bytes| async move {
                        got.lock().unwrap().push((headers, body));
                        status
                    },
                ),
            )
            .with_state(Arc::clone(&got));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        V3Receiver {
            url: format!("http://{addr}/v3/notify"),
            got,
        }
    }

    async fn nth(&self, n: usize) -> (HeaderMap, Bytes) {
        eventually(format!("notification {n}"), || async {
            self.got.lock().unwrap().get(n).cloned()
        })
        .await
    }
}

fn serial_of(headers: &HeaderMap) -> String {
    headers["Wechatpay-Serial"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_v3_purchase_and_refund_through_the_client() {
    let sim = sim_with(|_| {}).await;
    let receiver = V3Receiver::start(StatusCode::NO_CONTENT).await;
    let client = client(&sim, public_key_verifier());
    let openid = login(&sim, "v3-buyer").await;
    let no = number();
    let prepay_id = client
        .jsapi_prepay(&prepay(&no, &openid, &receiver.url, 1999))
        .await
        .unwrap()
        .prepay_id;
    assert!(prepay_id.starts_with("wx"));
    // Re-entry with the same parameters answers the same prepay session.
    let again = client
        .jsapi_prepay(&prepay(&no, &openid, &receiver.url, 1999))
        .await
        .unwrap();
    assert_eq!(again.prepay_id, prepay_id);
    // Different parameters: OUT_TRADE_NO_USED, final.
    let used = client
        .jsapi_prepay(&prepay(&no, &openid, &receiver.url, 2000))
        .await
        .unwrap_err();
    assert!(
        used.has_code("OUT_TRADE_NO_USED") && !used.is_retryable(),
        "{used}"
    );
    let unpaid = client.query_by_out_trade_no(&no).await.unwrap();
    assert_eq!(unpaid.trade_state.as_str(), "NOTPAY");

    let (status, _) = pay_order(&sim, no.as_str(), None).await;
    assert_eq!(status, 200);
    let (headers, body) = receiver.nth(0).await;
    // Signed with the key the simulator signs notifications with by default: the public key.
    assert_eq!(serial_of(&headers), EXAMPLE_WECHAT_PUBLIC_KEY_ID);
    let signed = v3::signed_headers(&headers);
    public_key_verifier()
        .verify(&signed, &body, v3::unix_now())
        .unwrap();
    let notification = Notification::parse(&body).unwrap();
    let paid = notification
        .transaction(&api_v3_key(), DEFAULT_APPID, DEFAULT_MCH_ID)
        .unwrap();
    assert_eq!(
        paid.amount.as_ref().unwrap().total,
        Some(Fen::new(1999).unwrap())
    );
    let transaction_id = paid.transaction_id.clone().unwrap();

    let queried = client
        .query_by_transaction_id(&transaction_id)
        .await
        .unwrap();
    assert_eq!(queried.out_trade_no, no);
    assert_eq!(queried.trade_state.as_str(), "SUCCESS");
    let closing_paid = client.close(&no).await.unwrap_err();
    assert!(closing_paid.has_code("ORDER_PAID"), "{closing_paid}");

    let out_refund_no = OutRefundNo::parse(format!("R{no}")).unwrap();
    let request = RefundRequest {
        transaction_id: None,
        out_trade_no: Some(no.clone()),
        out_refund_no: out_refund_no.clone(),
        reason: Some("test".into()),
        notify_url: Some(receiver.url.clone()),
        amount: RefundRequestAmount {
            refund: Fen::new(500).unwrap(),
            total: Fen::new(1999).unwrap(),
            currency: "CNY".into(),
        },
    };
    let refund = client.refund(&request).await.unwrap();
    assert_eq!(refund.status.as_str(), "PROCESSING");
    // The same request again is the same refund.
    assert_eq!(
        client.refund(&request).await.unwrap().refund_id,
        refund.refund_id
    );
    let over = RefundRequest {
        out_refund_no: OutRefundNo::parse(format!("S{no}")).unwrap(),
        amount: RefundRequestAmount {
            refund: Fen::new(1999).unwrap(),
            ..request.amount.clone()
        },
        ..request.clone()
    };
    assert!(!client.refund(&over).await.unwrap_err().is_retryable());
    let (status, _) = support::control(
        &sim,
        reqwest::Method::POST,
        &format!("/sim/v1/refunds/{out_refund_no}/settle"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (headers, body) = receiver.nth(1).await;
    public_key_verifier()
        .verify(&v3::signed_headers(&headers), &body, v3::unix_now())
        .unwrap();
    let settled = Notification::parse(&body)
        .unwrap()
        .refund(&api_v3_key(), DEFAULT_MCH_ID)
        .unwrap();
    assert_eq!(settled.refund_status.as_str(), "SUCCESS");
    assert_eq!(settled.amount.refund.get(), 500);
    assert_eq!(
        client
            .query_refund(&out_refund_no)
            .await
            .unwrap()
            .status
            .as_str(),
        "SUCCESS"
    );
    let missing = OutRefundNo::parse("NOPE1").unwrap();
    assert!(
        client
            .query_refund(&missing)
            .await
            .unwrap_err()
            .has_code("RESOURCE_NOT_EXISTS")
    );
}

#[tokio::test]
async fn answers_are_signed_by_the_key_the_request_names_and_certificates_are_fetched() {
    let sim = sim_with(|_| {}).await;
    let openid = login(&sim, "v3-keys").await;
    // Certificate mode: no Wechatpay-Serial sent; the first answer names the platform
    // certificate, which the client fetches once from /v3/certificates.
    let by_certificate = client(&sim, Verifier::new());
    let no = number();
    by_certificate
        .jsapi_prepay(&prepay(&no, &openid, "http://127.0.0.1:9/n", 100))
        .await
        .unwrap();
    let held = by_certificate.verifier().certificates();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].serial_no, "B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304");
    // Closing an unpaid order: 204; closing it again: ORDER_CLOSED, final.
    by_certificate.close(&no).await.unwrap();
    let again = by_certificate.close(&no).await.unwrap_err();
    assert!(
        again.has_code("ORDER_CLOSED") && !again.is_retryable(),
        "{again}"
    );

    // Raw requests: which serial signs the answer.
    for (asked, answered) in [
        (None, EXAMPLE_PLATFORM_CERT_SERIAL),
        (
            Some(EXAMPLE_WECHAT_PUBLIC_KEY_ID),
            EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        ),
        // Serials compare as numbers: the leading zero dropped still names the certificate.
        (
            Some("B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304"),
            EXAMPLE_PLATFORM_CERT_SERIAL,
        ),
    ] {
        let (status, headers, _) = raw(&sim, "GET", "/v3/certificates", b"", 0, asked).await;
        assert_eq!(status, 200);
        assert_eq!(serial_of(&headers), answered, "asked {asked:?}");
    }
}

/// A request signed by the example merchant `skew` seconds off, with a body and optionally a
/// `Wechatpay-Serial`: (status, headers, body).
async fn raw(
    sim: &RunningSim,
    method: &str,
    path: &str,
    body: &[u8],
    skew: i64,
    serial: Option<&str>,
) -> (u16, HeaderMap, serde_json::Value) {
    let auth = merchant_key().authorization(
        DEFAULT_MCH_ID,
        method,
        path,
        v3::unix_now() + skew,
        "rawnonce",
        body,
    );
    send(sim, method, path, body, &auth, serial).await
}

async fn send(
    sim: &RunningSim,
    method: &str,
    path: &str,
    body: &[u8],
    auth: &str,
    serial: Option<&str>,
) -> (u16, HeaderMap, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", sim.base_url()))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(serial) = serial {
        request = request.header("Wechatpay-Serial", serial);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        headers.insert(name.clone(), value.clone());
    }
    let bytes = answer.bytes().await.unwrap();
    // Every answer, refusals included, is signed.
    let signed = v3::signed_headers(&headers);
    let verifier = public_key_verifier();
    verifier.add_certificates(
        vec![
            v3::PlatformCertificate::from_pem(
                EXAMPLE_PLATFORM_CERT_SERIAL,
                0,
                i64::MAX,
                v3::EXAMPLE_PLATFORM_CERT_PEM.into(),
            )
            .unwrap(),
        ],
        0,
    );
    verifier.verify(&signed, &bytes, v3::unix_now()).unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

#[tokio::test]
async fn requests_are_refused_like_wechat_refuses_them() {
    let sim = sim_with(|_| {}).await;
    let path = format!("/v3/pay/transactions/out-trade-no/NOPE000001?mchid={DEFAULT_MCH_ID}");
    let (status, _, body) = raw(&sim, "GET", &path, b"", 0, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("ORDER_NOT_EXIST"))
    );
    // Five minutes off either way: SIGN_ERROR.
    for skew in [-301, 301] {
        let (status, _, body) = raw(&sim, "GET", &path, b"", skew, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("SIGN_ERROR")),
            "{skew}"
        );
    }
    // Signed over another path: SIGN_ERROR.
    let auth = merchant_key().authorization(
        DEFAULT_MCH_ID,
        "GET",
        "/v3/certificates",
        v3::unix_now(),
        "n",
        b"",
    );
    let (status, _, body) = send(&sim, "GET", &path, b"", &auth, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("SIGN_ERROR")));
    // No Authorization, or another merchant serial: SIGN_ERROR.
    let (status, _, _) = send(&sim, "GET", &path, b"", "", None).await;
    assert_eq!(status, 401);
    let other = MerchantKey::from_pem(
        EXAMPLE_MERCHANT_KEY_PEM,
        "5157F09EFDC096DE15EBE81A47057A7232F1B8E2",
    )
    .unwrap();
    let auth = other.authorization(DEFAULT_MCH_ID, "GET", &path, v3::unix_now(), "n", b"");
    assert_eq!(send(&sim, "GET", &path, b"", &auth, None).await.0, 401);
    // An unknown Wechatpay-Serial: PARAM_ERROR.
    let (status, _, body) = raw(&sim, "GET", &path, b"", 0, Some("PUB_KEY_ID_0999")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("PARAM_ERROR")));
    // A malformed body: PARAM_ERROR; another merchant's appid: APPID_MCHID_NOT_MATCH.
    let jsapi = "/v3/pay/transactions/jsapi";
    let (status, _, body) = raw(&sim, "POST", jsapi, b"{\"amount\":", 0, None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("PARAM_ERROR")));
    let foreign = serde_json::json!({
        "appid": "wx0000000000000000", "mchid": DEFAULT_MCH_ID, "description": "x",
        "out_trade_no": "FOREIGN1", "notify_url": "https://shop.example/n",
        "amount": {"total": 1}, "payer": {"openid": "o"},
    });
    let (status, _, body) = raw(&sim, "POST", jsapi, foreign.to_string().as_bytes(), 0, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("APPID_MCHID_NOT_MATCH"))
    );
    // SYSTEMERROR fault: 500 SYSTEM_ERROR, which the client retries.
    put_faults(&sim, serde_json::json!({"system_error_next": 1})).await;
    let (status, _, body) = raw(&sim, "GET", &path, b"", 0, None).await;
    assert_eq!((status, body["code"].as_str()), (500, Some("SYSTEM_ERROR")));
    assert_eq!(sim.sim().order_count(), 0, "no refusal created anything");
}

#[tokio::test]
async fn a_sign_test_probe_is_refused_by_the_client() {
    let sim = sim_with(|_| {}).await;
    let client = client(&sim, public_key_verifier());
    put_faults(&sim, serde_json::json!({"sign_test_next": 1})).await;
    let no = OutTradeNo::parse("PROBE1").unwrap();
    let probed = client.query_by_out_trade_no(&no).await.unwrap_err();
    assert!(
        matches!(probed, v3::Error::Signature(v3::VerifyError::BadSignature)),
        "{probed}"
    );
}

#[tokio::test]
async fn notifications_retry_until_acknowledged_and_switch_signer_mid_run() {
    let sim = sim_with(|c| c.v3.notify_signer = wechatpay_sim::NotifySigner::Certificate).await;
    // The receiver fails every attempt, so the simulator keeps retrying.
    let receiver = V3Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let client = client(&sim, public_key_verifier());
    let openid = login(&sim, "v3-migration").await;
    let no = number();
    client
        .jsapi_prepay(&prepay(&no, &openid, &receiver.url, 300))
        .await
        .unwrap();
    pay_order(&sim, no.as_str(), None).await;
    let (first, first_body) = receiver.nth(0).await;
    assert_eq!(serial_of(&first), EXAMPLE_PLATFORM_CERT_SERIAL);
    let id = Notification::parse(&first_body).unwrap().id;
    let (status, _) = support::control(
        &sim,
        reqwest::Method::PUT,
        &format!("/sim/v1/merchants/{DEFAULT_MCH_ID}/v3-notify-signer"),
        Some(serde_json::json!({"signer": "public_key"})),
    )
    .await;
    assert_eq!(status, 200);
    // A later retry of the same notification is signed with the public key, with a fresh
    // nonce and the same id.
    let later = eventually("a retry signed with the public key", || async {
        let got = receiver.got.lock().unwrap().clone();
        got.into_iter()
            .find(|(h, _)| serial_of(h) == EXAMPLE_WECHAT_PUBLIC_KEY_ID)
    })
    .await;
    assert_ne!(later.0["Wechatpay-Nonce"], first["Wechatpay-Nonce"]);
    assert_eq!(Notification::parse(&later.1).unwrap().id, id);
    public_key_verifier()
        .verify(&v3::signed_headers(&later.0), &later.1, v3::unix_now())
        .unwrap();
    let view = support::view(&sim, &no).await;
    assert!(
        support::attempts_of(&view)
            .iter()
            .all(|a| a["outcome"] == "http_error"),
        "{view}"
    );
}

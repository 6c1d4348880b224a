//! notify-svc's v3 callbacks over HTTP against the real RabbitMQ and Redis, with the platform
//! certificates coming from the real pay-gateway-svc (itself against the simulator): a signed,
//! encrypted notification becomes one confirmed event and a 204; every refusal (signature,
//! timestamp, serial, signature type, probe, replay, ciphertext, APIv3 key, merchant, Redis
//! unreachable) answers a failure status and publishes nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use messaging::{PAYMENT_SUCCEEDED, REFUND_SETTLED};
use prost::Message as _;
use proto::events::v1::{PaymentSucceeded, RefundSettled};
use service_runtime::settings::MapEnv;
use support::{AMQP_URL, Sink, rand_id};
use wechat_pay::example::{APPID, MCH_ID};
use wechat_pay::v3::{
    self, ApiV3Key, EXAMPLE_API_V3_KEY, EXAMPLE_PLATFORM_CERT_SERIAL, EXAMPLE_WECHAT_KEY_PEM,
    EXAMPLE_WECHAT_PUBLIC_KEY_ID, MerchantKey, Resource,
};

const GATEWAY_TOKEN: &str = "notify-v3-test-gateway-token-0123456789";

/// notify-svc in v3 mode with its own exchange prefix and Redis prefix, an exclusive queue
/// bound to its exchange, and pay-gateway-svc and the simulator behind it.
struct Harness {
    sink: Sink,
    base: String,
    http: reqwest::Client,
    _sim: wechatpay_sim::RunningSim,
}

impl Harness {
    async fn start(redis_url: &str) -> Harness {
        let sink = Sink::start("notify-v3-test").await;
        let prefix = sink.prefix.clone();
        let sim = wechatpay_sim::spawn(wechatpay_sim::SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..wechatpay_sim::SimConfig::default()
        })
        .await
        .unwrap();
        let sim_url = sim.base_url();
        let gateway_env = MapEnv::from_pairs([
            ("WECHAT_MODE", "simulator"),
            ("WECHAT_API_VERSION", "v3"),
            ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
            ("PAY_GATEWAY_OPS_ADDR", "127.0.0.1:0"),
            ("WECHAT_PAY_BASE_URL", sim_url.as_str()),
            ("GRPC_TOKEN", GATEWAY_TOKEN),
        ]);
        let gateway = pay_gateway_svc::Application::build(
            pay_gateway_svc::Settings::from_source(&gateway_env).unwrap(),
        )
        .await
        .unwrap();
        let gateway_url = format!("http://{}", gateway.grpc_addr());
        tokio::spawn(gateway.run_until_stopped(std::future::pending()));

        let redis_prefix = format!("{prefix}redis:");
        let env = MapEnv::from_pairs([
            ("WECHAT_MODE", "simulator"),
            ("WECHAT_API_VERSION", "v3"),
            ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
            ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
            ("AMQP_URL", AMQP_URL),
            ("AMQP_PREFIX", prefix.as_str()),
            ("REDIS_URL", redis_url),
            ("REDIS_PREFIX", redis_prefix.as_str()),
            ("PAY_GATEWAY_URL", gateway_url.as_str()),
            ("PAY_GATEWAY_TOKEN", GATEWAY_TOKEN),
        ]);
        let app = notify_svc::Application::build(notify_svc::Settings::from_source(&env).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", app.http_addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Harness {
            sink,
            base,
            http: reqwest::Client::new(),
            _sim: sim,
        }
    }

    /// Posts `n` to `path`: (status, body).
    async fn post(&self, path: &str, n: &Signed) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(n.body.clone());
        for (name, value) in &n.headers {
            request = request.header(*name, value);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    async fn next(&self) -> Option<lapin::message::BasicGetMessage> {
        self.sink.next().await
    }

    /// Refused with `status` and the failure body naming `reason`, and nothing published
    /// (the answer comes after the handler is done).
    async fn assert_refused(&self, path: &str, n: &Signed, status: u16, reason: &str) {
        let (got, body) = self.post(path, n).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (got, json["code"].as_str(), json["message"].as_str()),
            (status, Some("FAIL"), Some(reason)),
            "{body}"
        );
        assert!(self.next().await.is_none(), "{reason} published");
    }

    async fn cleanup(self) {
        self.sink.cleanup().await;
    }
}

const PAY: &str = "/wechat/v3/pay/notify";
const REFUND: &str = "/wechat/v3/refund/notify";

/// A notification as sent: body and headers.
#[derive(Clone)]
struct Signed {
    body: String,
    headers: Vec<(&'static str, String)>,
}

fn wechat() -> MerchantKey {
    MerchantKey::from_pem(EXAMPLE_WECHAT_KEY_PEM, "unused").unwrap()
}

/// `body` signed by WeChat's key, naming `serial`, at `at` (Unix seconds).
fn sign(body: String, serial: &str, at: i64) -> Signed {
    let (ts, nonce) = (at.to_string(), format!("nonce{:08x}", rand_id()));
    let signature = wechat().sign(&v3::response_message(&ts, &nonce, body.as_bytes()));
    Signed {
        body,
        headers: vec![
            ("Wechatpay-Timestamp", ts),
            ("Wechatpay-Nonce", nonce),
            ("Wechatpay-Signature", signature),
            ("Wechatpay-Serial", serial.to_owned()),
            ("Wechatpay-Signature-Type", v3::AUTH_SCHEME.to_owned()),
        ],
    }
}

fn with_header(n: &Signed, name: &'static str, value: Option<&str>) -> Signed {
    let mut n = n.clone();
    n.headers.retain(|(h, _)| *h != name);
    if let Some(value) = value {
        n.headers.push((name, value.to_owned()));
    }
    n
}

fn envelope(event: &str, kind: &str, plain: &serde_json::Value, key: &str) -> String {
    let resource = Resource::seal(
        &ApiV3Key::new(key).unwrap(),
        "abcdef012345",
        kind,
        Some(kind),
        plain.to_string().as_bytes(),
    )
    .unwrap();
    serde_json::json!({
        "id": format!("EV-{:08x}", rand_id()),
        "create_time": "2026-12-02T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event,
        "summary": "x",
        "resource": resource,
    })
    .to_string()
}

fn transaction(mchid: &str, txn: &str) -> serde_json::Value {
    serde_json::json!({
        "appid": APPID, "mchid": mchid, "out_trade_no": "NOTIFYV3TEST01",
        "transaction_id": txn, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "success_time": "2026-12-02T10:00:00+08:00", "payer": {"openid": "oV3User"},
        "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"},
    })
}

fn paid(serial: &str) -> Signed {
    let body = envelope(
        "TRANSACTION.SUCCESS",
        "transaction",
        &transaction(MCH_ID, "4200000000000000000000000777"),
        EXAMPLE_API_V3_KEY,
    );
    sign(body, serial, v3::unix_now())
}

#[tokio::test]
async fn a_signed_v3_notification_is_published_once_and_every_forgery_is_refused() {
    let h = Harness::start("redis://127.0.0.1:6379").await;
    let now = v3::unix_now();

    // Refusals first: nothing may be published by any of them.
    let good = paid(EXAMPLE_WECHAT_PUBLIC_KEY_ID);
    let mut tampered = good.clone();
    tampered.body = tampered
        .body
        .replace("TRANSACTION.SUCCESS", "TRANSACTION.SUCCESs");
    h.assert_refused(PAY, &tampered, 401, "bad_signature").await;
    let old = sign(good.body.clone(), EXAMPLE_WECHAT_PUBLIC_KEY_ID, now - 301);
    h.assert_refused(PAY, &old, 401, "stale_timestamp").await;
    let future = sign(good.body.clone(), EXAMPLE_WECHAT_PUBLIC_KEY_ID, now + 301);
    h.assert_refused(PAY, &future, 401, "stale_timestamp").await;
    let unknown = sign(
        good.body.clone(),
        "PUB_KEY_ID_0110000100000000000000000099",
        now,
    );
    h.assert_refused(PAY, &unknown, 401, "unknown_serial").await;
    let unknown_cert = sign(good.body.clone(), "7A", now);
    h.assert_refused(PAY, &unknown_cert, 401, "unknown_serial")
        .await;
    let typed = with_header(
        &good,
        "Wechatpay-Signature-Type",
        Some("WECHATPAY2-SHA256-RSA1024"),
    );
    h.assert_refused(PAY, &typed, 401, "unknown_sign_type")
        .await;
    let signature = good
        .headers
        .iter()
        .find(|(n, _)| *n == "Wechatpay-Signature")
        .unwrap();
    let probe = with_header(
        &good,
        "Wechatpay-Signature",
        Some(&format!("WECHATPAY/SIGNTEST/{}", signature.1)),
    );
    h.assert_refused(PAY, &probe, 401, "bad_signature").await;
    let unsigned = with_header(&good, "Wechatpay-Signature", None);
    h.assert_refused(PAY, &unsigned, 401, "missing_header")
        .await;
    // Validly signed, but: a damaged ciphertext, another APIv3 key, another merchant.
    let mut damaged: serde_json::Value = serde_json::from_str(&good.body).unwrap();
    damaged["resource"]["ciphertext"] = serde_json::json!("AAAA".repeat(40));
    let damaged = sign(damaged.to_string(), EXAMPLE_WECHAT_PUBLIC_KEY_ID, now);
    h.assert_refused(PAY, &damaged, 400, "undecryptable").await;
    let foreign_key = envelope(
        "TRANSACTION.SUCCESS",
        "transaction",
        &transaction(MCH_ID, "4200000000000000000000000778"),
        "AnotherApiV3Key0123456789abcdefg",
    );
    let foreign_key = sign(foreign_key, EXAMPLE_WECHAT_PUBLIC_KEY_ID, now);
    h.assert_refused(PAY, &foreign_key, 400, "undecryptable")
        .await;
    let other_merchant = envelope(
        "TRANSACTION.SUCCESS",
        "transaction",
        &transaction("1900000109", "4200000000000000000000000779"),
        EXAMPLE_API_V3_KEY,
    );
    let other_merchant = sign(other_merchant, EXAMPLE_WECHAT_PUBLIC_KEY_ID, now);
    h.assert_refused(PAY, &other_merchant, 400, "wrong_merchant")
        .await;
    // A payment sent to the refund callback.
    let elsewhere = paid(EXAMPLE_WECHAT_PUBLIC_KEY_ID);
    h.assert_refused(REFUND, &elsewhere, 400, "unexpected_event")
        .await;

    // Accepted: 204 after the broker confirmed the event.
    let (status, body) = h.post(PAY, &good).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let delivery = h
        .next()
        .await
        .expect("the event was confirmed before the ack");
    assert_eq!(delivery.delivery.routing_key.as_str(), PAYMENT_SUCCEEDED);
    let event = PaymentSucceeded::decode(delivery.delivery.data.as_slice()).unwrap();
    assert_eq!(event.event_id, "wxpay:4200000000000000000000000777");
    assert_eq!((event.amount_fen, event.openid.as_str()), (1999, "oV3User"));
    assert_eq!(event.paid_at_unix, 1_796_176_800);
    // The same signed request again: a replay, refused though its signature verifies.
    h.assert_refused(PAY, &good, 401, "replay").await;
    // WeChat's own retry is signed anew, and accepted (order-svc drops the duplicate event).
    let retry = sign(
        good.body.clone(),
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        v3::unix_now(),
    );
    assert_eq!(h.post(PAY, &retry).await.0, 204);
    assert!(h.next().await.is_some());

    // Signed with the platform certificate, named without its leading zero: the certificate
    // comes from pay-gateway-svc.
    let by_certificate = paid("B2F3E1D5A6C7B8E9F0A1B2C3D4E5F6071829304");
    assert_eq!(h.post(PAY, &by_certificate).await.0, 204);
    assert!(h.next().await.is_some());
    let by_full_serial = paid(EXAMPLE_PLATFORM_CERT_SERIAL);
    assert_eq!(h.post(PAY, &by_full_serial).await.0, 204);
    assert!(h.next().await.is_some());

    // A refund's outcome, with its state named as v2 names it.
    let refund = serde_json::json!({
        "mchid": MCH_ID, "out_trade_no": "NOTIFYV3TEST01",
        "transaction_id": "4200000000000000000000000777", "out_refund_no": "RNOTIFYV3TEST01",
        "refund_id": "50300000000000000000000000001", "refund_status": "CLOSED",
        "success_time": null, "user_received_account": "x",
        "amount": {"total": 1999, "refund": 500, "payer_total": 1999, "payer_refund": 500},
    });
    let closed = sign(
        envelope("REFUND.CLOSED", "refund", &refund, EXAMPLE_API_V3_KEY),
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        v3::unix_now(),
    );
    assert_eq!(h.post(REFUND, &closed).await.0, 204);
    let delivery = h.next().await.unwrap();
    assert_eq!(delivery.delivery.routing_key.as_str(), REFUND_SETTLED);
    let event = RefundSettled::decode(delivery.delivery.data.as_slice()).unwrap();
    assert_eq!(
        (
            event.status.as_str(),
            event.refund_fen,
            event.event_id.as_str()
        ),
        (
            "REFUNDCLOSE",
            500,
            "wxrefund:50300000000000000000000000001:REFUNDCLOSE"
        )
    );
    let mut over = refund.clone();
    over["amount"]["refund"] = serde_json::json!(2000);
    let over = sign(
        envelope("REFUND.SUCCESS", "refund", &over, EXAMPLE_API_V3_KEY),
        EXAMPLE_WECHAT_PUBLIC_KEY_ID,
        v3::unix_now(),
    );
    h.assert_refused(REFUND, &over, 400, "invalid_amount").await;
    h.cleanup().await;
}

#[tokio::test]
async fn with_redis_unreachable_a_valid_notification_is_refused_for_a_retry() {
    // Nothing listens on port 1: whether it is a replay cannot be told, so it is refused.
    let h = Harness::start("redis://127.0.0.1:1").await;
    h.assert_refused(
        PAY,
        &paid(EXAMPLE_WECHAT_PUBLIC_KEY_ID),
        503,
        "replay_check_unavailable",
    )
    .await;
    h.cleanup().await;
}

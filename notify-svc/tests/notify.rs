//! notify-svc over HTTP against the real RabbitMQ: a signed notification becomes one confirmed
//! event; a refused one is answered with the failure ack and publishes nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use lapin::types::AMQPValue;
use messaging::{EVENT_TYPE_HEADER, PAYMENT_SUCCEEDED};
use prost::Message as _;
use proto::events::v1::PaymentSucceeded;
use service_runtime::settings::MapEnv;
use service_runtime::telemetry::TRACE_ID_HEADER;
use support::{AMQP_URL, Sink};
use wechat_pay::example::{API_KEY, APPID, MCH_ID};
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};

const TRACE_ID: &str = "notify-test-trace-0001";

fn notification(mch_id: &str, key: &str) -> String {
    let mut p: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", mch_id),
        ("nonce_str", "testNonce0123456789"),
        ("openid", "oTestUser00000000000000000000"),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("total_fee", "1999"),
        ("cash_fee", "1999"),
        ("transaction_id", "4200000000000000000000000042"),
        ("out_trade_no", "NOTIFYTEST0001"),
        ("time_end", "20261127120000"),
    ]
    .into_iter()
    .collect();
    v2::sign_params(&mut p, &ApiKey::new(key).unwrap(), SignType::Md5);
    xml::encode(&p).unwrap()
}

fn header(delivery: &lapin::message::BasicGetMessage, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// notify-svc running against the real RabbitMQ with its own exchange prefix, and an
/// exclusive queue bound to every routing key of its payments exchange.
struct Harness {
    sink: Sink,
    url: String,
    refund_url: String,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let sink = Sink::start("notify-test").await;
        let env = MapEnv::from_pairs([
            ("WECHAT_MODE", "simulator"),
            ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
            ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
            ("AMQP_URL", AMQP_URL),
            ("AMQP_PREFIX", sink.prefix.as_str()),
        ]);
        let app = notify_svc::Application::build(notify_svc::Settings::from_source(&env).unwrap())
            .await
            .unwrap();
        let url = format!("http://{}/wechat/pay/notify", app.http_addr());
        let refund_url = format!("http://{}/wechat/refund/notify", app.http_addr());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Harness {
            sink,
            url,
            refund_url,
            http: reqwest::Client::new(),
        }
    }

    /// Posts a notification body; the answer's text.
    async fn post(&self, body: impl Into<reqwest::Body>) -> String {
        self.post_to(&self.url, body).await
    }

    /// Posts a body to `url`; the answer's text.
    async fn post_to(&self, url: &str, body: impl Into<reqwest::Body>) -> String {
        self.http
            .post(url)
            .header(TRACE_ID_HEADER, TRACE_ID)
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The next published event, if any.
    async fn next(&self) -> Option<lapin::message::BasicGetMessage> {
        self.sink.next().await
    }

    /// The body is refused with the failure ack naming `reason`, and nothing is published.
    /// The answer comes after the handler is done, so an empty queue then means nothing was
    /// published.
    async fn assert_refused(&self, body: impl Into<reqwest::Body>, reason: &str) {
        self.assert_refused_at(&self.url, body, reason).await;
    }

    /// [`Harness::assert_refused`] at `url`.
    async fn assert_refused_at(&self, url: &str, body: impl Into<reqwest::Body>, reason: &str) {
        let answer = self.post_to(url, body).await;
        assert!(
            answer.contains("<return_code><![CDATA[FAIL]]></return_code>")
                && answer.contains(reason),
            "expected a FAIL ack with {reason}: {answer}"
        );
        assert!(self.next().await.is_none(), "{reason} published");
    }

    async fn cleanup(self) {
        self.sink.cleanup().await;
    }
}

/// A correctly signed notification whose `field` holds `value` as is, even a character
/// `xml::encode` refuses to write (a NUL): the body WeChat's key would sign.
fn signed_with_raw(field: &str, value: &str) -> String {
    const MARK: &str = "MARKxMARK";
    let mut p = xml::decode(notification(MCH_ID, API_KEY).as_bytes()).unwrap();
    p.remove("sign");
    p.insert(field, value);
    v2::sign_params(&mut p, &ApiKey::new(API_KEY).unwrap(), SignType::Md5);
    p.insert(field, MARK);
    xml::encode(&p).unwrap().replace(MARK, value)
}

#[tokio::test]
async fn a_verified_notification_is_published_before_the_success_ack() {
    let h = Harness::start().await;

    // Refused: another merchant, a wrong key.
    let key = "0123456789abcdef0123456789abcdef";
    h.assert_refused(notification("1900000109", API_KEY), "wrong_merchant")
        .await;
    h.assert_refused(notification(MCH_ID, key), "bad_signature")
        .await;

    let answer = h.post(notification(MCH_ID, API_KEY)).await;
    assert_eq!(answer, v2::ACK_SUCCESS);
    let delivery = h
        .next()
        .await
        .expect("the event was confirmed before the ack");
    assert_eq!(delivery.delivery.routing_key.as_str(), PAYMENT_SUCCEEDED);
    assert_eq!(
        header(&delivery, EVENT_TYPE_HEADER).as_deref(),
        Some(PAYMENT_SUCCEEDED)
    );
    assert_eq!(
        header(&delivery, TRACE_ID_HEADER).as_deref(),
        Some(TRACE_ID)
    );
    let event = PaymentSucceeded::decode(delivery.delivery.data.as_slice()).unwrap();
    assert_eq!(event.event_id, "wxpay:4200000000000000000000000042");
    assert_eq!(
        (event.amount_fen, event.trace_id.as_str()),
        (1999, TRACE_ID)
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_signed_notification_with_a_nul_in_attach_gets_the_failure_ack() {
    let h = Harness::start().await;
    h.assert_refused(signed_with_raw("attach", "gift\u{0}wrap"), "malformed_xml")
        .await;
    // Also as a character reference, and another control character.
    let referenced = signed_with_raw("attach", "MARK2").replace(
        "<attach><![CDATA[MARK2]]></attach>",
        "<attach>&#0;</attach>",
    );
    h.assert_refused(referenced, "malformed_xml").await;
    h.assert_refused(signed_with_raw("attach", "\u{1b}[2J"), "malformed_xml")
        .await;
    h.cleanup().await;
}

#[tokio::test]
async fn a_signed_notification_with_a_2_7_kb_transaction_id_gets_the_failure_ack() {
    let h = Harness::start().await;
    let long = "4".repeat(2700);
    h.assert_refused(signed_with_raw("transaction_id", &long), "invalid_field")
        .await;
    h.cleanup().await;
}

#[tokio::test]
async fn a_signed_notification_with_a_nul_in_transaction_id_gets_the_failure_ack() {
    let h = Harness::start().await;
    h.assert_refused(
        signed_with_raw("transaction_id", "42000000000000\u{0}0000000042"),
        "malformed_xml",
    )
    .await;
    h.cleanup().await;
}

/// A refund notification as WeChat sends it: the envelope for `mch_id`, the refund's fields
/// encrypted under `key`.
fn refund_notification(mch_id: &str, key: &str, refund_fee: &str) -> String {
    let info: Params = [
        ("transaction_id", "4200000000000000000000000042"),
        ("out_trade_no", "NOTIFYTEST0001"),
        ("refund_id", "50300000000000000000000000042"),
        ("out_refund_no", "RF-NOTIFYTEST-1"),
        ("total_fee", "1999"),
        ("refund_fee", refund_fee),
        ("settlement_refund_fee", refund_fee),
        ("refund_status", "SUCCESS"),
        ("success_time", "2026-11-27 12:00:00"),
        ("refund_recv_accout", "支付用户零钱"),
        ("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS"),
        ("refund_request_source", "API"),
    ]
    .into_iter()
    .collect();
    let plain = xml::encode_with_root(&info, "root").unwrap();
    let req_info = v2::encrypt_req_info(plain.as_bytes(), &ApiKey::new(key).unwrap());
    let envelope: Params = [
        ("return_code", "SUCCESS"),
        ("appid", APPID),
        ("mch_id", mch_id),
        ("nonce_str", "refundNonce0123"),
        ("req_info", req_info.as_str()),
    ]
    .into_iter()
    .collect();
    xml::encode(&envelope).unwrap()
}

#[tokio::test]
async fn a_decrypted_refund_notification_is_published_and_forged_ones_are_refused() {
    let h = Harness::start().await;
    let url = h.refund_url.clone();
    // Encrypted under another key (forged, or another merchant's), for another merchant,
    // not decryptable at all, a field that is not an amount, a payment body: all refused.
    let other_key = "0123456789abcdef0123456789abcdef";
    h.assert_refused_at(
        &url,
        refund_notification(MCH_ID, other_key, "500"),
        "undecryptable",
    )
    .await;
    h.assert_refused_at(
        &url,
        refund_notification("1900000109", API_KEY, "500"),
        "wrong_merchant",
    )
    .await;
    let garbled = refund_notification(MCH_ID, API_KEY, "500")
        .replace("<req_info><![CDATA[", "<req_info><![CDATA[AAAA");
    h.assert_refused_at(&url, garbled, "undecryptable").await;
    h.assert_refused_at(
        &url,
        refund_notification(MCH_ID, API_KEY, "5.00"),
        "invalid_field",
    )
    .await;
    h.assert_refused_at(&url, notification(MCH_ID, API_KEY), "invalid_field")
        .await;

    let answer = h
        .post_to(&url, refund_notification(MCH_ID, API_KEY, "500"))
        .await;
    assert_eq!(answer, v2::ACK_SUCCESS);
    let delivery = h
        .next()
        .await
        .expect("the event was confirmed before the ack");
    assert_eq!(
        delivery.delivery.routing_key.as_str(),
        messaging::REFUND_SETTLED
    );
    assert_eq!(
        header(&delivery, TRACE_ID_HEADER).as_deref(),
        Some(TRACE_ID)
    );
    let event =
        proto::events::v1::RefundSettled::decode(delivery.delivery.data.as_slice()).unwrap();
    assert_eq!(
        event.event_id,
        "wxrefund:50300000000000000000000000042:SUCCESS"
    );
    assert_eq!(
        (
            event.out_refund_no.as_str(),
            event.refund_fen,
            event.status.as_str()
        ),
        ("RF-NOTIFYTEST-1", 500, "SUCCESS")
    );
    assert_eq!(event.out_trade_no, "NOTIFYTEST0001");
    h.cleanup().await;
}

//! notify-svc over HTTP against the real RabbitMQ: a signed notification becomes one confirmed
//! event; a refused one is answered with the failure ack and publishes nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use messaging::{EVENT_TYPE_HEADER, PAYMENT_SUCCEEDED, Topology};
use prost::Message as _;
use proto::events::v1::PaymentSucceeded;
use service_runtime::settings::MapEnv;
use service_runtime::telemetry::TRACE_ID_HEADER;
use wechat_pay::example::{API_KEY, APPID, MCH_ID};
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
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

#[tokio::test]
async fn a_verified_notification_is_published_before_the_success_ack() {
    let prefix = format!("notify-test{}.", std::process::id());
    let conn = messaging::connect(AMQP_URL, "notify-test")
        .await
        .expect("RabbitMQ at 127.0.0.1:5672 (start it with scripts/ensure-services.sh)");
    let ch = conn.create_channel().await.unwrap();
    let topology = Topology::new(prefix.clone());
    topology.declare_payments_exchange(&ch).await.unwrap();
    let queue = format!("{prefix}sink");
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    ch.queue_declare(&queue, options, FieldTable::default())
        .await
        .unwrap();
    let exchange = topology.payments_exchange();
    ch.queue_bind(
        &queue,
        &exchange,
        "#",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let env = MapEnv::from_pairs([
        ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
        ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
        ("AMQP_URL", AMQP_URL),
        ("AMQP_PREFIX", prefix.as_str()),
    ]);
    let app = notify_svc::Application::build(notify_svc::Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/wechat/pay/notify", app.http_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let http = reqwest::Client::new();
    let post = |body: String| {
        http.post(&url)
            .header(TRACE_ID_HEADER, TRACE_ID)
            .body(body)
            .send()
    };
    let next = || ch.basic_get(&queue, BasicGetOptions { no_ack: true });

    // Refused: another merchant, a wrong key. The answer comes after the handler is done, so
    // an empty queue then means nothing was published.
    let key = "0123456789abcdef0123456789abcdef";
    for (body, reason) in [
        (notification("1900000109", API_KEY), "wrong_merchant"),
        (notification(MCH_ID, key), "bad_signature"),
    ] {
        let answer = post(body).await.unwrap().text().await.unwrap();
        assert!(
            answer.contains("FAIL") && answer.contains(reason),
            "{answer}"
        );
        assert!(next().await.unwrap().is_none(), "{reason} published");
    }

    let answer = post(notification(MCH_ID, API_KEY)).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), v2::ACK_SUCCESS);
    let delivery = next()
        .await
        .unwrap()
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

    ch.queue_delete(&queue, QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&exchange, Default::default())
        .await
        .unwrap();
}

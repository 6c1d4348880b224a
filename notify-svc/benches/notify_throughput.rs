//! notify-svc throughput, as a ratio against the raw broker measured in the same run: the
//! reference publishes the same number of persistent messages with publisher confirms
//! straight to RabbitMQ (what notify-svc must do for each notification at the least); the
//! measured path is WeChat-style signed notifications POSTed to notify-svc over HTTP (parse,
//! verify, publish, confirm, ack).
//!
//! `cargo bench -p notify-svc` (needs RabbitMQ at AMQP_URL or 127.0.0.1:5672;
//! `BENCH_NOTIFICATIONS` sets the count, default 5000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use messaging::{Publisher, Topology};
use service_runtime::settings::MapEnv;
use tokio::sync::Semaphore;
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};

const CONCURRENCY: usize = 32;

fn notification(i: usize, key: &ApiKey) -> String {
    let txn = format!("4200{i:024}");
    let number = format!("BENCH{i:010}");
    let mut p: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("nonce_str", "benchNonce0123456789"),
        ("openid", "oBenchUser000000000000000000"),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("total_fee", "1999"),
        ("cash_fee", "1999"),
        ("transaction_id", txn.as_str()),
        ("out_trade_no", number.as_str()),
        ("time_end", "20261127120000"),
    ]
    .into_iter()
    .collect();
    v2::sign_params(&mut p, key, SignType::Md5);
    xml::encode(&p).unwrap()
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("BENCH_NOTIFICATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let amqp = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = format!("bench{}.", std::process::id());
    let topology = Topology::new(prefix.clone());

    // A queue bound to the payments exchange, so every confirmed message really lands.
    let conn = messaging::connect(&amqp, "bench")
        .await
        .expect("RabbitMQ reachable (start it with scripts/ensure-services.sh)");
    let ch = conn.create_channel().await.unwrap();
    topology.declare_payments_exchange(&ch).await.unwrap();
    let queue = format!("{prefix}sink");
    // A quorum queue, as order-svc's payment queue is: the reference is what notify-svc
    // really publishes into.
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(
        &queue,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        quorum,
    )
    .await
    .unwrap();
    ch.queue_bind(
        &queue,
        &topology.payments_exchange(),
        "#",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    // Reference: confirmed persistent publishes straight to the broker.
    let declare = topology.clone();
    let publisher = Publisher::new(
        &amqp,
        "bench-reference",
        Duration::from_secs(10),
        Arc::new(move |c| {
            let t = declare.clone();
            Box::pin(async move { t.declare_payments_exchange(&c).await })
        }),
    );
    let payload = vec![7u8; 160];
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let (publisher, exchange, payload) = (
            publisher.clone(),
            topology.payments_exchange(),
            payload.clone(),
        );
        tasks.push(tokio::spawn(async move {
            publisher
                .publish(
                    &exchange,
                    messaging::PAYMENT_SUCCEEDED,
                    &payload,
                    &i.to_string(),
                    &[],
                    true,
                )
                .await
                .unwrap();
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let reference = count as f64 / started.elapsed().as_secs_f64();
    ch.queue_purge(&queue, QueuePurgeOptions::default())
        .await
        .unwrap();

    // notify-svc over HTTP.
    let env = MapEnv::from_pairs([
        ("WECHAT_MODE", "simulator"),
        ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
        ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
        ("AMQP_URL", amqp.as_str()),
        ("AMQP_PREFIX", prefix.as_str()),
    ]);
    let app = notify_svc::Application::build(notify_svc::Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/wechat/pay/notify", app.http_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap();
    let bodies: Vec<String> = (0..count).map(|i| notification(i, &key)).collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for body in bodies {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let ack = client
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            drop(permit);
            assert!(
                String::from_utf8_lossy(&ack).contains("SUCCESS"),
                "every notification acked"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let measured = count as f64 / started.elapsed().as_secs_f64();

    println!("notify-svc throughput, {count} notifications, {CONCURRENCY} concurrent, loopback");
    println!("  reference (confirmed publish straight to RabbitMQ): {reference:>8.0} msg/s");
    println!(
        "  notify-svc (HTTP + parse + verify + publish + confirm + ack): {measured:>8.0} notifications/s  ratio {:.2}",
        measured / reference
    );

    let _ = ch.queue_delete(&queue, Default::default()).await;
    topology.delete_all(&ch).await;
    let _ = conn.close(200, "done").await;
}

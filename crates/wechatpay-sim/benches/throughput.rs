//! Simulator throughput, as a ratio against a bare HTTP server measured in the same run.
//!
//! `cargo bench -p wechatpay-sim` (set `BENCH_ORDERS` to change the order count; default
//! 100000, so the run also shows the simulator holding that many orders).
//!
//! Client and servers share this machine's cores; the ratio, not the absolute number, is the
//! figure to compare across machines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::sync::Semaphore;
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};
use wechatpay_sim::{DEFAULT_API_KEY, DEFAULT_APPID, DEFAULT_MCH_ID, SimConfig};

const CONCURRENCY: usize = 32;

async fn run(client: &reqwest::Client, url: &str, bodies: Vec<String>) -> (f64, Duration) {
    let count = bodies.len();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for body in bodies {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let answer = client.post(url).body(body).send().await.expect("request");
            let bytes = answer.bytes().await.expect("body");
            drop(permit);
            bytes.len()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap() > 0);
    }
    let elapsed = started.elapsed();
    (count as f64 / elapsed.as_secs_f64(), elapsed)
}

fn signed(mut p: Params, key: &ApiKey) -> String {
    p.insert("appid", DEFAULT_APPID);
    p.insert("mch_id", DEFAULT_MCH_ID);
    p.insert("nonce_str", wechat_pay::NonceStr::generate().to_string());
    v2::sign_params(&mut p, key, SignType::Md5);
    xml::encode(&p).unwrap()
}

#[tokio::main]
async fn main() {
    let orders: usize = std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let key = ApiKey::new(DEFAULT_API_KEY).unwrap();

    // Reference: a bare axum server answering a fixed WeChat-sized XML body.
    let fixed = signed(
        Params::from_iter([("return_code", "SUCCESS"), ("prepay_id", "wx0000")]),
        &key,
    );
    let bare = Router::new().route(
        "/pay/unifiedorder",
        post(move || std::future::ready(fixed.clone())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_url = format!("http://{}/pay/unifiedorder", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, bare).await.unwrap() });

    let config = SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SimConfig::default()
    };
    let sim = wechatpay_sim::spawn(config).await.unwrap();
    let base = sim.base_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let login: serde_json::Value = serde_json::from_slice(
        &client.get(format!("{base}/sns/jscode2session?appid={DEFAULT_APPID}&secret={}&js_code=test-bench&grant_type=authorization_code", wechatpay_sim::DEFAULT_APP_SECRET)).send().await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    let openid = login["openid"].as_str().unwrap().to_owned();

    let order_bodies: Vec<String> = (0..orders)
        .map(|i| {
            let p: Params = [
                ("body", "Bench-Order".to_owned()),
                ("out_trade_no", format!("BENCH{i:010}")),
                ("total_fee", "1999".to_owned()),
                ("spbill_create_ip", "127.0.0.1".to_owned()),
                ("notify_url", "http://127.0.0.1:9/notify".to_owned()),
                ("trade_type", "JSAPI".to_owned()),
                ("openid", openid.clone()),
            ]
            .into_iter()
            .collect();
            signed(p, &key)
        })
        .collect();
    let query_bodies: Vec<String> = (0..orders)
        .map(|i| {
            signed(
                Params::from_iter([("out_trade_no", format!("BENCH{i:010}"))]),
                &key,
            )
        })
        .collect();
    let reference_bodies: Vec<String> = order_bodies.clone();

    let (bare_rps, bare_t) = run(&client, &bare_url, reference_bodies).await;
    let (uo_rps, uo_t) = run(&client, &format!("{base}/pay/unifiedorder"), order_bodies).await;
    let (q_rps, q_t) = run(&client, &format!("{base}/pay/orderquery"), query_bodies).await;
    let held = sim.sim().order_count();
    assert_eq!(held, orders, "every unified order was accepted");

    println!("wechatpay-sim throughput, {orders} calls each, {CONCURRENCY} concurrent, loopback");
    println!("  reference (bare axum, fixed body): {bare_rps:>9.0} req/s  ({bare_t:.2?})");
    println!(
        "  /pay/unifiedorder (new orders):    {uo_rps:>9.0} req/s  ({uo_t:.2?})  ratio {:.2}",
        uo_rps / bare_rps
    );
    println!(
        "  /pay/orderquery:                   {q_rps:>9.0} req/s  ({q_t:.2?})  ratio {:.2}",
        q_rps / bare_rps
    );
    println!("  orders held at the end: {held}");
}

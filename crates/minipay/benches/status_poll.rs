//! The Mini Program's status poll (`GET /api/v1/orders/{id}`, bearer token, cache hit) against
//! the real order-svc, as a ratio against a bare axum server measured in the same run with
//! the same load generator: the reference answers every GET with a fixed body of the same
//! size, which is the least any HTTP server does per request. The gap is what order-svc adds:
//! the session token's HMAC, the Redis read, the JSON, the metrics.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p minipay --bench status_poll
//! ```
//!
//! PostgreSQL, Redis and RabbitMQ as for the tests. `BENCH_SECONDS` (default 10) and
//! `BENCH_CONNECTIONS` (default 64) size the run. The load generator shares the machine's
//! cores with the server, as it does with the reference.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::{Bench, env_or};
use minipay::load::procs;
use minipay::purchase::Shop;
use serde_json::json;

/// GETs `url` with `token` from `connections` keep-alive connections for `seconds`; the
/// requests answered 200 per second.
async fn drive(url: &str, token: &str, connections: u64, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (url, token, done) = (url.to_owned(), token.to_owned(), Arc::clone(&done));
            tokio::spawn(async move {
                // One client per task: one connection each, kept alive.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                while Instant::now() < until {
                    let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(response.status(), 200, "{url}");
                    response.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    rate
}

/// A bare axum server answering every GET with `body`; its base URL.
async fn bare_server(body: Vec<u8>) -> String {
    let body = axum::body::Bytes::from(body);
    let app = axum::Router::new().fallback(axum::routing::get(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body) }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// CPU ticks (user + system) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    procs::Snapshot::of_pid(std::path::Path::new("/proc"), pid).map_or(0, |p| p.cpu_ticks)
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10) as u64;
    let connections = env_or("BENCH_CONNECTIONS", 64) as u64;
    let bench = Bench::start("poll", "info").await;
    let stack = &bench.stack;
    let shop = Shop::new(stack.order_url(), stack.sim_url());
    let token = shop.login("bench").await.unwrap();
    let order = shop
        .create_order(&token, json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]))
        .await
        .unwrap();
    let url = format!(
        "{}/api/v1/orders/{}",
        stack.order_url(),
        order["id"].as_str().unwrap()
    );
    // The body order-svc answers, for the reference to answer too (and a warm cache).
    let body = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let size = body.len();
    let reference_url = format!("{}/api/v1/orders/x", bare_server(body).await);

    let reference = drive(&reference_url, &token, connections, seconds).await;
    let pid = stack
        .pids()
        .into_iter()
        .find_map(|(name, pid)| (name == "order-svc").then_some(pid))
        .expect("order-svc runs");
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    let measured = drive(&url, &token, connections, seconds).await;
    let cores = procs::cores(cpu_before, cpu_ticks(pid), started.elapsed()).unwrap_or(0.0);
    bench.finish().await;

    println!("status poll, {connections} connections, {seconds} s each, {size}-byte body:");
    println!("  bare axum server, same body:   {reference:>9.0} req/s");
    println!(
        "  order-svc (token, Redis, JSON): {measured:>9.0} req/s   order-svc at {cores:.2} cores, {:.1} µs CPU per poll",
        cores * 1e6 / measured
    );
    println!("  ratio: {:.2}", measured / reference);
}

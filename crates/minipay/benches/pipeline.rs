//! The payment pipeline end to end, against the real processes: WeChat-style signed
//! notifications POSTed to notify-svc (verify, publish with confirm, ack), RabbitMQ, order-svc's
//! consumer (lock, guarded update, outbox row, commit, ack), then the outbox relay
//! publishing `order.paid`. Measured as PAID commits per second, against the reference
//! measured in the same run: pgbench's one-row UPDATE transactions with as many clients, the
//! least a PAID commit costs the database. The relay is measured against the PAID rate
//! (events published per second, and each event's lag from its commit to its publish).
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p minipay --bench pipeline
//! ```
//!
//! PostgreSQL (with pgbench), Redis and RabbitMQ as for the tests. `BENCH_PAYMENTS` (default
//! 5000) and `BENCH_CONNECTIONS` (default 32) size the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::time::{Duration, Instant};

use futures_util::StreamExt;
mod common;

use common::{Bench, env_or};
use minipay::purchase::Shop;
use serde_json::json;
use wechat_pay::v2::{self, ApiKey, Params, SignType, xml};

/// WeChat's notification that order `number` was paid `amount` fen, signed with the
/// simulator's merchant key (what notify-svc verifies in simulator mode).
fn notification(i: usize, number: &str, amount: i64) -> String {
    let txn = format!("4200{i:024}");
    let amount = amount.to_string();
    let mut p: Params = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", wechat_pay::example::APPID),
        ("mch_id", wechat_pay::example::MCH_ID),
        ("nonce_str", "benchNonce0123456789"),
        ("openid", "oBenchUser000000000000000000"),
        ("trade_type", "JSAPI"),
        ("bank_type", "OTHERS"),
        ("total_fee", amount.as_str()),
        ("cash_fee", amount.as_str()),
        ("fee_type", "CNY"),
        ("transaction_id", txn.as_str()),
        ("out_trade_no", number),
        ("time_end", "20261127120000"),
    ]
    .into_iter()
    .collect();
    v2::sign_params(
        &mut p,
        &ApiKey::new(wechat_pay::example::API_KEY).unwrap(),
        SignType::Md5,
    );
    xml::encode(&p).unwrap()
}

/// pgbench's transactions per second for one-row UPDATEs with `clients` clients, `seconds`
/// long, on a table of `rows` rows in `database`.
async fn pgbench(database: &str, rows: usize, clients: usize, seconds: u64) -> f64 {
    let pool = sqlx::PgPool::connect(database).await.unwrap();
    sqlx::query("DROP TABLE IF EXISTS bench_rows")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_rows (id int PRIMARY KEY, n int NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bench_rows SELECT g, 0 FROM generate_series(1, $1) g")
        .bind(i32::try_from(rows).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    // The measured run's dirty pages are flushed first, so the reference does not pay for
    // them (a checkpoint during pgbench halved its rate here).
    if let Err(e) = sqlx::query("CHECKPOINT").execute(&pool).await {
        println!("  (no CHECKPOINT before pgbench: {e}; the reference may be low)");
    }
    let script = std::env::temp_dir().join(format!("minipay-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        format!("\\set id random(1, {rows})\nUPDATE bench_rows SET n = n + 1 WHERE id = :id;\n"),
    )
    .unwrap();
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-j", "2", "-c", &clients.to_string()])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(database)
        .output()
        .await
        .expect("pgbench (Debian's postgresql-contrib / postgresql-client) is installed");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {text}");
    sqlx::query("DROP TABLE bench_rows")
        .execute(&pool)
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("pgbench printed its tps")
}

#[tokio::main]
async fn main() {
    let payments = env_or("BENCH_PAYMENTS", 5000);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    // Services at WARN: the run is about the pipeline, not about writing log lines.
    let bench = Bench::start("pipeline", "warn").await;
    let (stack, database) = (&bench.stack, bench.database.clone());
    // The orders, placed through the API by a few buyers (logins are rate-limited).
    let shop = Shop::new(stack.order_url(), stack.sim_url());
    let mut tokens = Vec::new();
    for b in 0..16 {
        tokens.push(shop.login(&format!("bench{b}")).await.unwrap());
    }
    let orders: Vec<(String, i64)> = futures_util::stream::iter(0..payments)
        .map(|i| {
            let (shop, token) = (&shop, &tokens[i % tokens.len()]);
            async move {
                let order = shop
                    .create_order(token, json!([{ "sku": "TEA-JASMINE", "quantity": 1 }]))
                    .await
                    .unwrap();
                (
                    order["out_trade_no"].as_str().unwrap().to_owned(),
                    order["amount_fen"].as_i64().unwrap(),
                )
            }
        })
        .buffer_unordered(connections)
        .collect()
        .await;
    let bodies: Vec<String> = orders
        .iter()
        .enumerate()
        .map(|(i, (number, amount))| notification(i, number, *amount))
        .collect();

    // The measured run: every notification POSTed, `connections` at a time; PAID counted in
    // the database until all are.
    let db = sqlx::PgPool::connect(&database).await.unwrap();
    let notify = format!("{}/wechat/pay/notify", stack.notify_url());
    let http = reqwest::Client::new();
    let started = Instant::now();
    let poster = {
        let (http, notify) = (http.clone(), notify.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(bodies)
                .for_each_concurrent(connections, |body| {
                    let (http, notify) = (&http, &notify);
                    async move {
                        let answer = http.post(notify).body(body).send().await.unwrap();
                        let text = answer.text().await.unwrap();
                        assert!(text.contains("SUCCESS"), "notify-svc refused: {text}");
                    }
                })
                .await;
            started.elapsed()
        })
    };
    let deadline = started + Duration::from_secs(300);
    let paid_after = loop {
        let (paid,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE status = 'PAID'")
            .fetch_one(&db)
            .await
            .unwrap();
        if paid == i64::try_from(payments).unwrap() {
            break started.elapsed();
        }
        assert!(Instant::now() < deadline, "only {paid} of {payments} PAID");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let acked_after = poster.await.unwrap();
    let relayed_after = loop {
        let (left,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&db)
                .await
                .unwrap();
        if left == 0 {
            break started.elapsed();
        }
        assert!(Instant::now() < deadline, "{left} events not published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (lag_p50, lag_p99, lag_max): (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag)
         FROM (SELECT EXTRACT(EPOCH FROM published_at - created_at)::float8 * 1000 AS lag
               FROM outbox) l",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    db.close().await;
    // The reference runs alone, on a scratch database of the same server, as long as the
    // measured run took.
    let admin = bench.finish().await;
    let scratch = format!("minipay_bench_pgbench_{}", std::process::id());
    let scratch_url = minipay::stack::ensure_database(&admin, &scratch)
        .await
        .expect("PostgreSQL");
    let seconds = paid_after.as_secs().max(5);
    let reference = pgbench(&scratch_url, payments, connections, seconds).await;
    common::drop_database(&admin, &scratch).await;

    #[allow(clippy::cast_precision_loss)]
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let paid_rate = rate(payments, paid_after);
    println!("payment pipeline, {payments} signed notifications, {connections} connections:");
    println!(
        "  notify-svc acked all:       {:>8.0} notifications/s ({acked_after:.1?})",
        rate(payments, acked_after)
    );
    println!("  PAID committed:             {paid_rate:>8.0} PAID/s ({paid_after:.1?})");
    println!(
        "  pgbench one-row UPDATEs:    {reference:>8.0} tps ({connections} clients, {seconds} s)"
    );
    println!("  ratio PAID/s : pgbench tps: {:.2}", paid_rate / reference);
    println!(
        "  outbox relay: all {payments} order.paid published after {relayed_after:.1?} ({:.0}/s); lag commit -> publish p50 {lag_p50:.0} ms, p99 {lag_p99:.0} ms, max {lag_max:.0} ms",
        rate(payments, relayed_after)
    );
    println!(
        "  ratio relay rate : PAID rate: {:.2}",
        rate(payments, relayed_after) / paid_rate
    );
}

//! The `order-svc` and `pay-gateway-svc` binaries as processes: settings from the
//! environment (a missing variable is named), health over HTTP, exit 0 on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

const ORDER_SVC: &str = env!("CARGO_BIN_EXE_order-svc");

fn free_port() -> u16 {
    support::dead_addr().port()
}

/// Waits for `url` to answer 200; an error if the process exits first (e.g. its port was
/// taken between picking and binding it).
async fn wait_healthy(url: &str, child: &mut std::process::Child) -> Result<(), String> {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("process exited early with {status}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became healthy");
}

async fn stop(child: &mut std::process::Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("did not stop within 10 s of SIGTERM");
}

#[tokio::test]
async fn order_svc_names_a_missing_variable() {
    let out = Command::new(ORDER_SVC)
        .env_clear()
        .env("SESSION_SECRET", "x".repeat(40))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn order_svc_serves_and_stops_on_sigterm() {
    let db = support::fresh_database().await;
    for attempt in 1..=3 {
        let (http, grpc, ops) = (free_port(), free_port(), free_port());
        let mut child = Command::new(ORDER_SVC)
            .env("DATABASE_URL", &db)
            .env("SESSION_SECRET", support::SESSION_SECRET)
            .env("ORDER_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("ORDER_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("ORDER_OPS_ADDR", format!("127.0.0.1:{ops}"))
            .env("GRPC_TOKEN", support::ORDER_GRPC_TOKEN)
            .env("PAY_GATEWAY_TOKEN", support::GATEWAY_GRPC_TOKEN)
            .env("REDIS_URL", support::redis_url())
            .env(support::SIMULATOR_MODE.0, support::SIMULATOR_MODE.1)
            .env("WORKERS", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Err(e) = wait_healthy(&format!("http://127.0.0.1:{ops}/healthz"), &mut child).await {
            assert!(attempt < 3, "order-svc did not start: {e}");
            continue;
        }
        let products = reqwest::get(format!("http://127.0.0.1:{http}/api/v1/products"))
            .await
            .unwrap();
        assert_eq!(products.status(), 200);
        stop(&mut child).await;
        return;
    }
}

/// An operator's token (its hash is in `ADMIN_TOKENS`), and one that is nobody's.
const ADMIN_SECRET: &str = "binary-test-admin-token-0123456789";
const WRONG_ADMIN_SECRET: &str = "binary-test-wrong-admin-token-98765";

/// Everything the process wrote, once it has exited.
fn output_of(child: &mut std::process::Child) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).unwrap();
    }
    text
}

#[tokio::test]
async fn order_svc_stops_on_sigterm_without_a_warning_or_error() {
    support::require_redis().await;
    let db = support::fresh_database().await;
    let prefix = format!("t{}.", support::unique_id());
    let cleanup = support::AmqpCleanup::new(prefix.clone());
    let http = free_port();
    let mut child = Command::new(ORDER_SVC)
        .env("DATABASE_URL", &db)
        .env("SESSION_SECRET", support::SESSION_SECRET)
        .env("ORDER_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("ORDER_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("ORDER_OPS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env(support::SIMULATOR_MODE.0, support::SIMULATOR_MODE.1)
        .env("REDIS_URL", support::redis_url())
        .env("AMQP_URL", support::amqp_url())
        .env("AMQP_PREFIX", &prefix)
        .env(
            "ADMIN_TOKENS",
            order_svc::operators::AdminTokens::entry("ops", ADMIN_SECRET),
        )
        .env("WORKERS", "on")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The consumer is attached (and the outbox publisher, started before it, connected):
    // both connections are open when the signal comes.
    let queue = cleanup.topology.order_payments_queue();
    support::wait_until(
        Duration::from_secs(15),
        "order-svc consumes its queue",
        || async { support::queue_state(&queue).await.map(|q| q.consumers) == Some(1) },
    )
    .await;
    // Admin calls with the right token and a wrong one: neither token reaches the log.
    let client = reqwest::Client::new();
    for token in [ADMIN_SECRET, WRONG_ADMIN_SECRET] {
        let answer = client
            .get(format!("http://127.0.0.1:{http}/admin/v1/dead-letters"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let expected = if token == ADMIN_SECRET { 200 } else { 401 };
        assert_eq!(answer.status(), expected);
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = support::wait_until(Duration::from_secs(10), "order-svc exits", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    let output = output_of(&mut child);
    assert!(status.success(), "exit status {status}: {output}");
    assert!(output.contains("order-svc stopped"), "{output}");
    // What the stop logged: from the signal on. (Before it, RabbitMQ 3.10 may refuse the very
    // first consume on a quorum queue it has just declared — `{badmatch,{error,noproc}}` in
    // rabbit_quorum_queue:consume/3, a broker-side race seen once in CI — and the consumer
    // reconnects with a warning; that is the broker's start, not our stop.)
    let signal = output
        .find("shutdown signal received")
        .unwrap_or_else(|| panic!("no \"shutdown signal received\" line: {output}"));
    let line_start = output[..signal].rfind('\n').map_or(0, |i| i + 1);
    let alarming = test_support::alarming_lines(&output[line_start..]);
    assert!(alarming.is_empty(), "a clean stop logged: {alarming:#?}");
    assert!(
        !output.contains(ADMIN_SECRET) && !output.contains(WRONG_ADMIN_SECRET),
        "an admin token was logged"
    );
}

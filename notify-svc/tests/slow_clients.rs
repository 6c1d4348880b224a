//! notify-svc against slow and stalled clients: headers that never end, bodies that stop
//! coming, requests that take too long, too many connections, and a shutdown while such
//! connections are open. (The public port is WeChat's; the timeouts come from `HTTP_*`.)

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Duration;

use service_runtime::settings::MapEnv;
use service_runtime::shutdown::Shutdown;
use test_support::slow_client::{Verdict, post_head, stalled_request, verdict};
use test_support::{amqp_url, require_rabbitmq, wait_until};
use tokio::task::JoinHandle;

const NOTIFY: &str = "/wechat/pay/notify";

/// Far above every timeout these tests set, far below "held open for good".
const WITHIN: Duration = Duration::from_secs(5);

struct Running {
    addr: SocketAddr,
    ops: SocketAddr,
    stop: Shutdown,
    task: JoinHandle<()>,
}

/// notify-svc with these `HTTP_*` settings (and long defaults for the rest).
async fn notify_svc(http: &[(&str, &str)]) -> Running {
    let _ = require_rabbitmq().await.close(200, "checked").await;
    let prefix = format!("slow{}.", test_support::unique_id());
    let amqp = amqp_url();
    let mut env = MapEnv::from_pairs([
        ("NOTIFY_HTTP_ADDR", "127.0.0.1:0"),
        ("NOTIFY_OPS_ADDR", "127.0.0.1:0"),
        ("WECHAT_MODE", "simulator"),
        ("AMQP_URL", amqp.as_str()),
        ("AMQP_PREFIX", prefix.as_str()),
        ("HTTP_HEADER_TIMEOUT", "30s"),
        ("HTTP_BODY_TIMEOUT", "30s"),
        ("HTTP_REQUEST_TIMEOUT", "30s"),
    ]);
    for (k, v) in http {
        env.0.insert((*k).to_owned(), (*v).to_owned());
    }
    let app = notify_svc::Application::build(notify_svc::Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let (addr, ops) = (app.http_addr(), app.ops_addr());
    let stop = Shutdown::new();
    let task = tokio::spawn({
        let stop = stop.wait();
        async move { app.run_until_stopped(stop).await.unwrap() }
    });
    Running {
        addr,
        ops,
        stop,
        task,
    }
}

/// A notification answered at all (with the failure ack, it is not one): the server serves.
async fn answers(addr: SocketAddr) -> bool {
    reqwest::Client::new()
        .post(format!("http://{addr}{NOTIFY}"))
        .body("<xml></xml>")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn a_body_that_stops_coming_is_answered_408_within_the_body_timeout() {
    let n = notify_svc(&[("HTTP_BODY_TIMEOUT", "300ms")]).await;
    let mut slow = stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml><app").await;
    let (verdict, after) = verdict(&mut slow, WITHIN).await;
    eprintln!("stalled body: {verdict:?} after {after:?}");
    assert_eq!(verdict, Verdict::Answered(408));
    assert!(answers(n.addr).await, "normal requests still work");
}

#[tokio::test]
async fn headers_that_never_end_are_dropped_within_the_header_timeout() {
    let n = notify_svc(&[("HTTP_HEADER_TIMEOUT", "300ms")]).await;
    let mut slow =
        stalled_request(n.addr, "POST /wechat/pay/notify HTTP/1.1\r\nHost: t", b"").await;
    let (verdict, after) = verdict(&mut slow, WITHIN).await;
    eprintln!("stalled headers: {verdict:?} after {after:?}");
    assert!(
        matches!(verdict, Verdict::Dropped | Verdict::Answered(408)),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_request_over_the_request_timeout_is_answered_408() {
    // The body keeps its pace for the body timeout (30s) but not for the whole request.
    let n = notify_svc(&[("HTTP_REQUEST_TIMEOUT", "300ms")]).await;
    let mut slow = stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml><app").await;
    let (verdict, after) = verdict(&mut slow, WITHIN).await;
    eprintln!("slow request: {verdict:?} after {after:?}");
    assert_eq!(verdict, Verdict::Answered(408));
}

#[tokio::test]
async fn a_connection_over_the_limit_is_closed_and_its_slot_comes_back() {
    let n = notify_svc(&[("HTTP_MAX_CONNECTIONS", "2")]).await;
    let held = [
        stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml>").await,
        stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml>").await,
    ];
    let mut third = stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml>").await;
    let (verdict, after) = verdict(&mut third, WITHIN).await;
    eprintln!("third connection of two allowed: {verdict:?} after {after:?}");
    assert_eq!(verdict, Verdict::Dropped);
    let health = reqwest::get(format!("http://{}/healthz", n.ops))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the ops port has its own limit");
    drop(held);
    wait_until(WITHIN, "a freed slot serves a request", || answers(n.addr)).await;
}

#[tokio::test]
async fn stalled_and_idle_connections_do_not_hold_shutdown_past_its_grace() {
    let n = notify_svc(&[("HTTP_SHUTDOWN_GRACE", "300ms")]).await;
    // One request in flight whose body never comes, one idle keep-alive connection.
    let mut stalled = stalled_request(n.addr, &post_head(NOTIFY, 4096), b"<xml>").await;
    let idle = reqwest::Client::new();
    let first = idle
        .post(format!("http://{}{NOTIFY}", n.addr))
        .body("<xml></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    n.stop.trigger();
    let started = tokio::time::Instant::now();
    tokio::time::timeout(WITHIN, n.task)
        .await
        .expect("notify-svc stops within its grace, open connections or not")
        .unwrap();
    eprintln!("stopped {:?} after the signal", started.elapsed());
    let (verdict, _) = verdict(&mut stalled, WITHIN).await;
    assert_eq!(
        verdict,
        Verdict::Dropped,
        "the stalled connection was dropped"
    );
}

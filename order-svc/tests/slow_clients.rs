//! order-svc's public port against slow clients: a body that stops coming is answered 408,
//! headers that never end are dropped, and a stalled connection does not hold a shutdown past
//! its grace. (The timeouts are `HTTP_*` settings, short here.)

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use test_support::slow_client::{Verdict, post_head, stalled_request, verdict};

/// Far above every timeout these tests set, far below "held open for good".
const WITHIN: Duration = Duration::from_secs(5);

const SESSIONS: &str = "/api/v1/sessions";

async fn stack_with_http(http: &[(&'static str, &'static str)]) -> Stack {
    let mut order_env = vec![
        ("HTTP_HEADER_TIMEOUT", "30s"),
        ("HTTP_BODY_TIMEOUT", "30s"),
        ("HTTP_REQUEST_TIMEOUT", "30s"),
    ];
    order_env.extend_from_slice(http);
    stack_with(Options {
        order_env,
        workers: false,
        ..Options::default()
    })
    .await
}

fn public_addr(s: &Stack) -> SocketAddr {
    s.api.base.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test]
async fn a_body_that_stops_coming_is_answered_408_within_the_body_timeout() {
    let s = stack_with_http(&[("HTTP_BODY_TIMEOUT", "300ms")]).await;
    let mut slow =
        stalled_request(public_addr(&s), &post_head(SESSIONS, 4096), b"{\"code\":").await;
    let (verdict, after) = verdict(&mut slow, WITHIN).await;
    eprintln!("stalled body: {verdict:?} after {after:?}");
    assert_eq!(verdict, Verdict::Answered(408));
    // Normal requests still work.
    let token = s.api.login("quick").await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn headers_that_never_end_are_dropped_within_the_header_timeout() {
    let s = stack_with_http(&[("HTTP_HEADER_TIMEOUT", "300ms")]).await;
    let mut slow =
        stalled_request(public_addr(&s), "GET /api/v1/products HTTP/1.1\r\nHo", b"").await;
    let (verdict, after) = verdict(&mut slow, WITHIN).await;
    eprintln!("stalled headers: {verdict:?} after {after:?}");
    assert!(
        matches!(verdict, Verdict::Dropped | Verdict::Answered(408)),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_stalled_connection_does_not_hold_shutdown_past_its_grace() {
    let mut s = stack_with_http(&[("HTTP_SHUTDOWN_GRACE", "300ms")]).await;
    let mut stalled =
        stalled_request(public_addr(&s), &post_head(SESSIONS, 4096), b"{\"code\":").await;
    // Other requests are served meanwhile.
    let products = s
        .api
        .call(reqwest::Method::GET, "/api/v1/products", None, None, &[])
        .await;
    assert_eq!(products.status, reqwest::StatusCode::OK);
    let started = tokio::time::Instant::now();
    tokio::time::timeout(WITHIN, s.stop_order_svc())
        .await
        .expect("order-svc stops within its grace, stalled connection or not");
    eprintln!("stopped {:?} after the signal", started.elapsed());
    let (verdict, _) = verdict(&mut stalled, WITHIN).await;
    assert_eq!(verdict, Verdict::Dropped);
}

//! The API gateway for real (see `support`): everything below goes through it over HTTPS,
//! WeChat's notifications included.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use minipay::purchase::Shop;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Edge, PATIENCE, request_id};
use test_support::wait_until;

#[tokio::test]
async fn a_purchase_and_wechats_notification_go_through_the_gateway_over_https() {
    let e = Edge::start().await;
    let receipt = e.shop().purchase("gwana", &|_, _| {}).await.unwrap();
    assert_eq!(receipt.transaction_id.len(), 28);

    // WeChat's notification reached notify-svc through the gateway (the simulator was given
    // the gateway's https URL and its CA), and notify-svc acknowledged it.
    let notified = e
        .access_log_where("the notification", |v| v["path"] == "/wechat/pay/notify")
        .await;
    assert_eq!(notified["method"], "POST");
    assert_eq!(notified["status"], 200);
    assert_eq!(notified["upstream"], "notify-svc");
    let at_wechat = e.shop().at_wechat(&receipt.out_trade_no).await.unwrap();
    assert_eq!(at_wechat["state"], "SUCCESS");

    // The request id the gateway made is the trace id of order-svc's log line for it; a
    // client's own x-request-id is replaced and its x-trace-id dropped, neither trusted.
    // (A login: every write is logged at INFO; successful reads only at DEBUG.)
    let response = e
        .http
        .post(format!("{}/api/v1/sessions", e.url))
        .header("x-request-id", "client-chosen-id-0001")
        .header("x-trace-id", "client-chosen-trace-0001")
        .header("content-type", "application/json")
        .body(json!({ "code": "test-gwtrace" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = request_id(&response);
    assert_ne!(id, "client-chosen-id-0001");
    assert_eq!(
        response.headers()["x-trace-id"],
        id.as_str(),
        "order-svc used the gateway's id"
    );
    let line = wait_until(PATIENCE, "order-svc logged the request's id", || async {
        e.sink
            .tail("order-svc", usize::MAX)
            .into_iter()
            .find(|l| l.contains(&format!("\"trace_id\":\"{id}\"")))
    })
    .await;
    assert!(line.contains("/api/v1/sessions"), "{line}");
    let logged = e.access_log(&id).await;
    assert_eq!(logged["upstream"], "order-svc");
    assert_eq!(logged["status"], 201);
    e.stop().await;
}

#[tokio::test]
async fn the_gateway_exposes_only_the_public_routes_and_limits_each_client() {
    let e = Edge::start().await;
    let get = |path: &str| e.http.get(format!("{}{path}", e.url)).send();

    // Ops, metrics, internal and unknown paths stop at the edge.
    for path in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/sim/v1/health",
        "/stats/prometheus",
        "/ready",
        "/",
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let logged = e.access_log(&request_id(&response)).await;
        assert_eq!(logged["details"], "direct_response", "{path}: {logged}");
    }
    let unknown = get("/nowhere").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&unknown.bytes().await.unwrap()).unwrap();
    assert_eq!(body["code"], "not_found", "the API's error shape: {body}");
    // gRPC to order-svc's service name is not routed either: the gateway answers it itself,
    // the gRPC way (grpc-status 12, UNIMPLEMENTED, for its 404).
    let grpc = e
        .http
        .post(format!("{}/minipay.order.v1.OrderService/GetOrder", e.url))
        .header("content-type", "application/grpc")
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(grpc.headers()["grpc-status"], "12");
    let logged = e.access_log(&request_id(&grpc)).await;
    assert_eq!(logged["details"], "direct_response", "{logged}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/products",
            e.url.replace("https", "http")
        ))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // Oversized bodies are refused by the gateway itself (order-svc would answer JSON).
    for (path, size) in [
        ("/api/v1/orders", 16 * 1024 + 1),
        ("/wechat/pay/notify", 64 * 1024 + 1),
    ] {
        let response = e
            .http
            .post(format!("{}{path}", e.url))
            .header("content-type", "application/json")
            .body(vec![b' '; size])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let id = request_id(&response);
        assert_eq!(response.text().await.unwrap(), "Payload Too Large");
        let logged = e.access_log(&id).await;
        assert_eq!(logged["details"], "request_payload_too_large", "{logged}");
    }

    // Logins: a burst of 10 per client address, then 429 from the gateway.
    let login = |n: u32| {
        e.http
            .post(format!("{}/api/v1/sessions", e.url))
            .header("content-type", "application/json")
            .body(json!({ "code": format!("test-gwrl.{n}") }).to_string())
            .send()
    };
    burst_is_limited(&e, "login", 10, StatusCode::CREATED, login).await;

    // Order creation: a burst of 30 per client address, then 429; other calls go on.
    let token = login_token_directly(&e).await;
    let create = |_: u32| {
        e.http
            .post(format!("{}/api/v1/orders", e.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json!({ "items": [{ "sku": "TEA-JASMINE", "quantity": 1 }] }).to_string())
            .send()
    };
    burst_is_limited(&e, "create_order", 30, StatusCode::CREATED, create).await;
    let list = e
        .http
        .get(format!("{}/api/v1/orders", e.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    e.stop().await;
}

/// A session token straight from order-svc (this client's logins are used up at the edge).
async fn login_token_directly(e: &Edge) -> String {
    let shop = Shop::new(e.stack().order_url(), e.stack().sim_url());
    shop.login("gwbuyer").await.unwrap()
}

/// Sends `burst + 10` requests at once: the burst passes (`passed`), the rest are refused with
/// 429 by the gateway's per-client limit of that `scope`. Envoy refills its buckets
/// continuously (`burst` per minute), so a slow machine may let a token or two more through:
/// allowed, as long as the gateway refused some and the refusals are its own.
async fn burst_is_limited<F, Fut>(e: &Edge, scope: &str, burst: u32, passed: StatusCode, send: F)
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = reqwest::Result<reqwest::Response>>,
{
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..burst + 10).map(&send)).await;
    let refill = started.elapsed().as_secs_f64() * f64::from(burst) / 60.0;
    let (mut ok, mut limited) = (0u32, Vec::new());
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status() {
            s if s == passed => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(answer),
            other => panic!("{scope}: unexpected {other}"),
        }
    }
    assert!(
        ok >= burst,
        "{scope}: the burst of {burst} passes, only {ok} did"
    );
    assert!(
        f64::from(ok) <= f64::from(burst) + refill.ceil() + 1.0,
        "{scope}: {ok} passed, the burst is {burst} (+{refill:.1} refilled)"
    );
    assert!(!limited.is_empty(), "{scope}: nothing was refused");
    for answer in &limited {
        assert_eq!(answer.headers()["x-ratelimit-scope"], scope);
    }
    let logged = e.access_log(&request_id(&limited[0])).await;
    assert_eq!(logged["details"], "local_rate_limited", "{logged}");
}

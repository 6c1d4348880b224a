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
    let notified = wait_until(PATIENCE, "the gateway logged the notification", || async {
        e.sink
            .tail("gateway", usize::MAX)
            .iter()
            .filter_map(|l| l.strip_prefix("[gateway] "))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["path"] == "/wechat/pay/notify")
    })
    .await;
    assert_eq!(notified["method"], "POST");
    assert_eq!(notified["status"], 200);
    assert_eq!(notified["upstream"], "notify-svc");
    let at_wechat = e.shop().at_wechat(&receipt.out_trade_no).await.unwrap();
    assert_eq!(at_wechat["state"], "SUCCESS");

    // The request id the gateway made is the trace id of order-svc's log line for it; a
    // client's own x-request-id is replaced, not trusted.
    let response = e
        .http
        .get(format!("{}/api/v1/products", e.url))
        .header("x-request-id", "client-chosen-id-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = request_id(&response);
    assert_ne!(id, "client-chosen-id-0001");
    let line = wait_until(PATIENCE, "order-svc logged the request's id", || async {
        e.sink
            .tail("order-svc", usize::MAX)
            .into_iter()
            .find(|l| l.contains(&format!("\"trace_id\":\"{id}\"")))
    })
    .await;
    assert!(line.contains("/api/v1/products"), "{line}");
    let logged = e.access_log(&id).await;
    assert_eq!(logged["upstream"], "order-svc");
    assert_eq!(logged["status"], 200);
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
    for n in 0..10 {
        assert_eq!(
            login(n).await.unwrap().status(),
            StatusCode::CREATED,
            "login {n}"
        );
    }
    let limited = login(10).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "login");
    let logged = e.access_log(&request_id(&limited)).await;
    assert_eq!(logged["details"], "local_rate_limited", "{logged}");

    // Order creation: a burst of 30 per client address, then 429; other calls go on.
    let token = login_token_directly(&e).await;
    let create = || {
        e.http
            .post(format!("{}/api/v1/orders", e.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json!({ "items": [{ "sku": "TEA-JASMINE", "quantity": 1 }] }).to_string())
            .send()
    };
    for n in 0..30 {
        assert_eq!(
            create().await.unwrap().status(),
            StatusCode::CREATED,
            "order {n}"
        );
    }
    let limited = create().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "create_order");
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

//! order-svc's HTTP API end to end, in-process: the simulator, pay-gateway-svc and
//! order-svc, against the real PostgreSQL and Redis.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use support::*;
use wechat_pay::v2::{ApiKey, RequestPayment};

const TEA: &str =
    r#"{"items":[{"sku":"TEA-JASMINE","quantity":2},{"sku":"SNACK-SESAME","quantity":1}]}"#;
const TEA_TOTAL: i64 = 2 * 1999 + 650;

#[tokio::test]
async fn two_users_order_from_the_price_list_and_see_only_their_own() {
    let s = stack().await;
    let products = s
        .api
        .call(Method::GET, "/api/v1/products", None, None, &[])
        .await;
    assert_eq!(products.status, StatusCode::OK);
    let list = products.body["products"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|p| p["sku"] == "TEA-JASMINE" && p["price_fen"] == 1999),
        "{}",
        products.body
    );

    let (alice, bob) = (s.api.login("alice").await, s.api.login("bob").await);
    let a1 = s.api.create(&alice, TEA).await;
    assert_eq!(a1.status, StatusCode::CREATED, "{}", a1.body);
    assert_eq!(a1.body["amount_fen"], TEA_TOTAL);
    assert_eq!(a1.body["status"], "PENDING");
    assert_eq!(a1.body["items"][0]["unit_price_fen"], 1999);
    assert!(a1.body["paid_at"].is_null() && a1.body["transaction_id"].is_null());
    let out_trade_no = a1.body["out_trade_no"].as_str().unwrap();
    assert!(wechat_pay::OutTradeNo::parse(out_trade_no).is_ok());
    let a2 = s
        .api
        .create(&alice, r#"{"items":[{"sku":"CUP-CELADON","quantity":1}]}"#)
        .await;
    assert_eq!(a2.body["amount_fen"], 4500);
    let b1 = s
        .api
        .create(&bob, r#"{"items":[{"sku":"TEA-OOLONG","quantity":3}]}"#)
        .await;
    assert_eq!(b1.body["amount_fen"], 3 * 2999);

    let mine = s
        .api
        .call(Method::GET, "/api/v1/orders", Some(&alice), None, &[])
        .await;
    let ids: Vec<&str> = mine.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            a2.body["id"].as_str().unwrap(),
            a1.body["id"].as_str().unwrap()
        ],
        "newest first, only alice's"
    );
    assert!(mine.body["next_cursor"].is_null());

    // 404, never 403, for another user's order, and no way to pay it.
    let a1_id = a1.body["id"].as_str().unwrap();
    assert_eq!(s.api.get(&bob, a1_id).await.code(), "order_not_found");
    let stolen = s.api.pay(&bob, a1_id).await;
    assert_eq!(
        (stolen.status, stolen.code()),
        (StatusCode::NOT_FOUND, "order_not_found")
    );
    assert_eq!(s.api.get(&alice, a1_id).await.body["id"], a1_id);
}

#[tokio::test]
async fn amounts_in_the_body_are_refused() {
    let s = stack().await;
    let t = s.api.login("carol").await;
    for body in [
        r#"{"items":[{"sku":"TEA-JASMINE","quantity":1}],"amount_fen":1}"#,
        r#"{"items":[{"sku":"TEA-JASMINE","quantity":1,"price_fen":1}]}"#,
        r#"{"items":[{"sku":"TEA-JASMINE","quantity":1}],"total_fee":1}"#,
    ] {
        let a = s.api.create(&t, body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "amount_not_accepted"),
            "{body}"
        );
    }
    let none = s
        .api
        .call(Method::GET, "/api/v1/orders", Some(&t), None, &[])
        .await;
    assert_eq!(
        none.body["orders"].as_array().unwrap().len(),
        0,
        "refusals change nothing"
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_same_order_and_refuses_another_body() {
    let s = stack().await;
    let t = s.api.login("dan").await;
    let key = [("Idempotency-Key", "checkout-42")];
    let first = s
        .api
        .call(Method::POST, "/api/v1/orders", Some(&t), Some(TEA), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = s
        .api
        .call(Method::POST, "/api/v1/orders", Some(&t), Some(TEA), &key)
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = s
        .api
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&t),
            Some(r#"{"items":[{"sku":"PIN-1FEN","quantity":1}]}"#),
            &key,
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    // Another user's identical key is independent.
    let u = s.api.login("erin").await;
    let theirs = s
        .api
        .call(Method::POST, "/api/v1/orders", Some(&u), Some(TEA), &key)
        .await;
    assert_ne!(theirs.body["id"], first.body["id"]);
    let list = s
        .api
        .call(Method::GET, "/api/v1/orders", Some(&t), None, &[])
        .await;
    assert_eq!(list.body["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn payment_object_verifies_and_the_prepay_is_reused() {
    let s = stack().await;
    let t = s.api.login("fay").await;
    let order = s.api.create(&t, TEA).await;
    let id = order.body["id"].as_str().unwrap();
    let first = s.api.pay(&t, id).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let payment: RequestPayment = serde_json::from_value(first.body.clone()).unwrap();
    assert_eq!(
        payment.verify(&ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap()),
        Ok(())
    );
    assert_eq!(payment.app_id, wechatpay_sim::DEFAULT_APPID);
    assert!(payment.package.starts_with("prepay_id=wx"));
    let second = s.api.pay(&t, id).await;
    assert_eq!(
        second.body["package"], first.body["package"],
        "the same prepay_id while it is valid"
    );
    // The simulator saw one order with our amount.
    let out_trade_no = order.body["out_trade_no"].as_str().unwrap();
    let key = s.sim.sim().find(out_trade_no, None).unwrap();
    let view = s.sim.sim().view(&key).unwrap();
    assert_eq!(view.total_fee.as_i64(), TEA_TOTAL);
    assert_eq!(format!("prepay_id={}", view.prepay_id), payment.package);
}

#[tokio::test]
async fn systemerror_twice_then_success_still_yields_a_prepay() {
    let s = stack().await;
    let t = s.api.login("gus").await;
    let order = s.api.create(&t, TEA).await;
    s.sim
        .sim()
        .set_faults(wechatpay_sim::Faults {
            system_error_next: 2,
            ..Default::default()
        })
        .unwrap();
    let paid = s.api.pay(&t, order.body["id"].as_str().unwrap()).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(s.sim.sim().faults().system_error_next, 0);
}

#[tokio::test]
async fn a_down_pay_gateway_gives_a_clear_503() {
    let s = stack_with(Options {
        pay_gateway_url: Some(format!("http://{}", dead_addr())),
        ..Options::default()
    })
    .await;
    let login = s
        .api
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(r#"{"code":"test-hal"}"#),
            &[],
        )
        .await;
    assert_eq!(
        (login.status, login.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "payment_unavailable")
    );
    assert!(login.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_down_pay_gateway_fails_payment_with_503_not_a_hang() {
    // Log in through a working stack, then point a second order-svc (same database) at a
    // dead gateway: the session token is valid there too.
    let s = stack().await;
    let t = s.api.login("ida").await;
    let order = s.api.create(&t, TEA).await;
    let env = service_runtime::settings::MapEnv::from_pairs([
        ("ORDER_HTTP_ADDR", "127.0.0.1:0"),
        ("ORDER_GRPC_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", s.database_url.as_str()),
        ("SESSION_SECRET", SESSION_SECRET),
        ("PAY_GATEWAY_URL", &format!("http://{}", dead_addr())),
        ("PAY_GATEWAY_TIMEOUT", "2s"),
        ("WORKERS", "off"),
    ]);
    let app = order_svc::Application::build(order_svc::Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", app.http_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::Client::new()
            .post(format!(
                "{base}/api/v1/orders/{}/payment",
                order.body["id"].as_str().unwrap()
            ))
            .bearer_auth(&t)
            .send(),
    )
    .await
    .expect("answers instead of hanging")
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["code"], "payment_unavailable");
}

#[tokio::test]
async fn an_orders_status_is_cached_in_redis_with_a_ttl() {
    let s = stack().await;
    let t = s.api.login("jay").await;
    let order = s.api.create(&t, TEA).await;
    let id = order.body["id"].as_str().unwrap();
    let mut redis = require_redis().await;
    let cached: Option<String> = redis
        .get(format!("{}order:{id}", s.redis_prefix))
        .await
        .unwrap();
    assert!(cached.unwrap().contains("PENDING"), "written on create");
    let ttl: i64 = redis
        .ttl(format!("{}order:{id}", s.redis_prefix))
        .await
        .unwrap();
    assert!(ttl > 0, "with a TTL");
}

async fn without_redis() -> Stack {
    stack_with(Options {
        redis_url: Some(format!("redis://{}", dead_addr())),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn orders_are_served_from_postgres_when_redis_is_down() {
    let down = without_redis().await;
    let t = down.api.login("kim").await;
    let created = down.api.create(&t, TEA).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap();
    // Read more than once: a miss must not leave anything behind that breaks the next read.
    for _ in 0..3 {
        let got = down.api.get(&t, id).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.body);
        assert_eq!(got.body["status"], "PENDING");
    }
}

#[tokio::test]
async fn readiness_needs_postgres_not_redis() {
    let down = without_redis().await;
    let ready = down.api.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "PostgreSQL is what readiness needs"
    );
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_its_code() {
    let s = stack().await;
    let t = s.api.login("lee").await;
    let cases: &[(&str, StatusCode, &str)] = &[
        ("{not json", StatusCode::BAD_REQUEST, "invalid_json"),
        (
            r#"{"items":[{"sku":"NOPE","quantity":1}]}"#,
            StatusCode::BAD_REQUEST,
            "unknown_sku",
        ),
        (
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":0}]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":100000}]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":-1}]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            r#"{"items":[]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            r#"{"items":"TEA"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let a = s.api.create(&t, body).await;
        assert_eq!((a.status, a.code()), (*status, *code), "{body}: {}", a.body);
        assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let huge = format!(
        r#"{{"items":[{{"sku":"{}","quantity":1}}]}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(
        s.api.create(&t, &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let expired = order_svc::session::Sessions::new(SecretString::from(SESSION_SECRET.to_owned()))
        .issue(&wechat_pay::OpenId::parse("oSomeone").unwrap(), 1);
    let forged = order_svc::session::Sessions::new(SecretString::from(
        "another-secret-0123456789abcdefghij".to_owned(),
    ))
    .issue(&wechat_pay::OpenId::parse("oSomeone").unwrap(), i64::MAX);
    for (token, label) in [
        (None, "missing"),
        (Some(expired.as_str()), "expired"),
        (Some(forged.as_str()), "forged"),
        (Some("garbage"), "garbage"),
    ] {
        let a = s
            .api
            .call(Method::GET, "/api/v1/orders", token, None, &[])
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{label}"
        );
        let a = s
            .api
            .call(Method::POST, "/api/v1/orders", token, Some(TEA), &[])
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{label}");
    }
    let bad_code = s
        .api
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(r#"{"code":"nonsense"}"#),
            &[],
        )
        .await;
    assert_eq!(
        (bad_code.status, bad_code.code()),
        (StatusCode::UNAUTHORIZED, "login_failed")
    );
    let no_code = s
        .api
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(r#"{"js":"x"}"#),
            &[],
        )
        .await;
    assert_eq!(
        (no_code.status, no_code.code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "well-formed JSON of the wrong shape is invalid_request on every endpoint"
    );
    let not_json = s
        .api
        .call(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some("{\"code\":"),
            &[],
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    assert_eq!(s.api.get(&t, "not-a-uuid").await.code(), "order_not_found");
    assert_eq!(
        s.api
            .get(&t, "0190b0f0-0000-7000-8000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.api
            .call(
                Method::GET,
                "/api/v1/orders?limit=1000",
                Some(&t),
                None,
                &[]
            )
            .await
            .code(),
        "invalid_request"
    );
    assert_eq!(
        s.api
            .call(
                Method::GET,
                "/api/v1/orders?cursor=%%%",
                Some(&t),
                None,
                &[]
            )
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.api
            .call(Method::GET, "/api/v1/nope", None, None, &[])
            .await
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn pagination_walks_every_order_once() {
    let s = stack().await;
    let t = s.api.login("max").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            s.api.create(&t, TEA).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=2&cursor={c}"),
            None => "/api/v1/orders?limit=2".to_owned(),
        };
        let page = s.api.call(Method::GET, &path, Some(&t), None, &[]).await;
        seen.extend(
            page.body["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn ops_endpoints_and_trace_ids() {
    let s = stack().await;
    assert_eq!(
        s.api
            .call(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.api
            .call(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let traced = s
        .api
        .call(
            Method::GET,
            "/api/v1/products",
            None,
            None,
            &[("x-trace-id", "trace-0123456789")],
        )
        .await;
    assert_eq!(
        traced.headers.get("x-trace-id").unwrap(),
        "trace-0123456789"
    );
    let fresh = s
        .api
        .call(Method::GET, "/api/v1/products", None, None, &[])
        .await;
    assert_eq!(fresh.headers.get("x-trace-id").unwrap().len(), 32);
    let metrics = s
        .api
        .http
        .get(format!("{}/metrics", s.api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("http_requests_total") && metrics.contains("route=\"/api/v1/products\""),
        "{metrics}"
    );
    let spec = s
        .api
        .call(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(spec.body["openapi"], "3.1.0");
    assert!(
        spec.body["paths"]["/api/v1/orders/{id}/cancel"]["post"].is_object(),
        "the generated document has every route"
    );
}

#[tokio::test]
async fn grpc_order_service_reads_orders() {
    use proto::order::v1::order_service_client::OrderServiceClient;
    use proto::order::v1::{GetOrderRequest, ListOrdersRequest, OrderStatus};
    let s = stack().await;
    let t = s.api.login("ned").await;
    let order = s.api.create(&t, TEA).await;
    let mut client = OrderServiceClient::connect(format!("http://{}", s.grpc))
        .await
        .unwrap();
    let by_id = client
        .get_order(GetOrderRequest {
            order_id: order.body["id"].as_str().unwrap().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.amount_fen, TEA_TOTAL);
    assert_eq!(by_id.status(), OrderStatus::Pending);
    assert_eq!(by_id.items.len(), 2);
    let by_number = client
        .get_order(GetOrderRequest {
            out_trade_no: order.body["out_trade_no"].as_str().unwrap().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_number.id, by_id.id);
    let missing = client
        .get_order(GetOrderRequest {
            order_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let list = client
        .list_orders(ListOrdersRequest {
            openid: by_id.openid.clone(),
            limit: 10,
            cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.orders.len(), 1);
}

//! order-svc's HTTP API end to end, in-process: the simulator, pay-gateway-svc and
//! order-svc, against the real PostgreSQL and Redis.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use support::*;
use test_support::Answer;
use wechat_pay::v2::{ApiKey, RequestPayment};

const TEA: &str =
    r#"{"items":[{"sku":"TEA-JASMINE","quantity":2},{"sku":"SNACK-SESAME","quantity":1}]}"#;
const TEA_TOTAL: i64 = 2 * 1999 + 650;

/// A stack and one logged-in user.
async fn stack_and_user(name: &str) -> (Stack, String) {
    let s = stack().await;
    let token = s.api.login(name).await;
    (s, token)
}

/// The ids of a list answer's orders, in order.
fn order_ids(list: &Answer) -> Vec<&str> {
    list.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_price_list_gives_each_sku_its_price() {
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
}

#[tokio::test]
async fn a_new_order_is_pending_and_priced_from_the_price_list() {
    let (s, alice) = stack_and_user("alice").await;
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
    let a3 = s
        .api
        .create(&alice, r#"{"items":[{"sku":"TEA-OOLONG","quantity":3}]}"#)
        .await;
    assert_eq!(a3.body["amount_fen"], 3 * 2999);
}

#[tokio::test]
async fn a_users_list_holds_only_their_orders_newest_first() {
    let (s, alice) = stack_and_user("alice").await;
    let bob = s.api.login("bob").await;
    let a1 = s.api.create(&alice, TEA).await;
    let a2 = s
        .api
        .create(&alice, r#"{"items":[{"sku":"CUP-CELADON","quantity":1}]}"#)
        .await;
    let b1 = s
        .api
        .create(&bob, r#"{"items":[{"sku":"TEA-OOLONG","quantity":3}]}"#)
        .await;
    assert_eq!(b1.status, StatusCode::CREATED, "{}", b1.body);

    let mine = s
        .api
        .call(Method::GET, "/api/v1/orders", Some(&alice), None, &[])
        .await;
    assert_eq!(
        order_ids(&mine),
        [
            a2.body["id"].as_str().unwrap(),
            a1.body["id"].as_str().unwrap()
        ],
        "newest first, only alice's"
    );
    assert!(mine.body["next_cursor"].is_null());
}

#[tokio::test]
async fn another_users_order_is_not_found_and_cannot_be_paid() {
    let (s, alice) = stack_and_user("alice").await;
    let bob = s.api.login("bob").await;
    let a1 = s.api.create(&alice, TEA).await;
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

const CHECKOUT_KEY: [(&str, &str); 1] = [("Idempotency-Key", "checkout-42")];

/// `token`'s order with [`CHECKOUT_KEY`].
async fn create_with_key(s: &Stack, token: &str, body: &str) -> Answer {
    s.api
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(token),
            Some(body),
            &CHECKOUT_KEY,
        )
        .await
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_same_order() {
    let (s, t) = stack_and_user("dan").await;
    let first = create_with_key(&s, &t, TEA).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = create_with_key(&s, &t, TEA).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let list = s.api.list(&t).await;
    assert_eq!(list.body["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_refused() {
    let (s, t) = stack_and_user("dan").await;
    let first = create_with_key(&s, &t, TEA).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = create_with_key(&s, &t, r#"{"items":[{"sku":"PIN-1FEN","quantity":1}]}"#).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    let list = s.api.list(&t).await;
    assert_eq!(list.body["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn another_users_identical_idempotency_key_is_independent() {
    let (s, t) = stack_and_user("dan").await;
    let first = create_with_key(&s, &t, TEA).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let u = s.api.login("erin").await;
    let theirs = create_with_key(&s, &u, TEA).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.body["id"], first.body["id"]);
    let list = s.api.list(&t).await;
    assert_eq!(list.body["orders"].as_array().unwrap().len(), 1);
}

/// A new order of [`TEA`] and its first payment object: (order, payment answer).
async fn order_with_payment(s: &Stack, token: &str) -> (Answer, Answer) {
    let order = s.api.create(token, TEA).await;
    let first = s.api.pay(token, order.body["id"].as_str().unwrap()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    (order, first)
}

#[tokio::test]
async fn the_payment_object_is_signed_with_the_merchant_key_for_the_app() {
    let (s, t) = stack_and_user("fay").await;
    let (_, first) = order_with_payment(&s, &t).await;
    let payment: RequestPayment = serde_json::from_value(first.body.clone()).unwrap();
    assert_eq!(
        payment.verify(&ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap()),
        Ok(())
    );
    assert_eq!(payment.app_id, wechatpay_sim::DEFAULT_APPID);
    assert!(payment.package.starts_with("prepay_id=wx"));
}

#[tokio::test]
async fn a_second_payment_request_reuses_the_prepay() {
    let (s, t) = stack_and_user("fay").await;
    let (order, first) = order_with_payment(&s, &t).await;
    let second = s.api.pay(&t, order.body["id"].as_str().unwrap()).await;
    assert_eq!(
        second.body["package"], first.body["package"],
        "the same prepay_id while it is valid"
    );
}

#[tokio::test]
async fn wechat_holds_the_order_with_our_amount_and_prepay_id() {
    let (s, t) = stack_and_user("fay").await;
    let (order, first) = order_with_payment(&s, &t).await;
    let payment: RequestPayment = serde_json::from_value(first.body).unwrap();
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
        SIMULATOR_MODE,
        ("ORDER_HTTP_ADDR", "127.0.0.1:0"),
        ("ORDER_GRPC_ADDR", "127.0.0.1:0"),
        ("ORDER_OPS_ADDR", "127.0.0.1:0"),
        ("GRPC_TOKEN", ORDER_GRPC_TOKEN),
        ("PAY_GATEWAY_TOKEN", GATEWAY_GRPC_TOKEN),
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
    let ready = down.ops.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "PostgreSQL is what readiness needs"
    );
}

/// Each body is refused by order creation with `status` and `code`, and a message.
async fn order_bodies_are_refused(bodies: &[&str], status: StatusCode, code: &str) {
    let (s, t) = stack_and_user("lee").await;
    for body in bodies {
        let a = s.api.create(&t, body).await;
        assert_eq!((a.status, a.code()), (status, code), "{body}: {}", a.body);
        assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// A login with this request body.
async fn login_with(s: &Stack, body: &str) -> Answer {
    s.api
        .call(Method::POST, "/api/v1/sessions", None, Some(body), &[])
        .await
}

#[tokio::test]
async fn an_order_body_that_is_not_json_gets_invalid_json() {
    order_bodies_are_refused(&["{not json"], StatusCode::BAD_REQUEST, "invalid_json").await;
}

#[tokio::test]
async fn a_login_body_that_is_not_json_gets_invalid_json() {
    let s = stack().await;
    let not_json = login_with(&s, "{\"code\":").await;
    assert_eq!(
        (not_json.status, not_json.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
}

#[tokio::test]
async fn an_unknown_sku_gets_unknown_sku() {
    order_bodies_are_refused(
        &[r#"{"items":[{"sku":"NOPE","quantity":1}]}"#],
        StatusCode::BAD_REQUEST,
        "unknown_sku",
    )
    .await;
}

#[tokio::test]
async fn a_quantity_out_of_range_is_invalid_request() {
    order_bodies_are_refused(
        &[
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":0}]}"#,
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":100000}]}"#,
            r#"{"items":[{"sku":"TEA-JASMINE","quantity":-1}]}"#,
        ],
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn an_order_without_items_is_invalid_request() {
    order_bodies_are_refused(
        &[r#"{"items":[]}"#],
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn an_order_body_of_the_wrong_shape_is_invalid_request() {
    order_bodies_are_refused(
        &[r#"{"items":"TEA"}"#],
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn a_login_body_of_the_wrong_shape_is_invalid_request() {
    let s = stack().await;
    let no_code = login_with(&s, r#"{"js":"x"}"#).await;
    assert_eq!(
        (no_code.status, no_code.code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "well-formed JSON of the wrong shape is invalid_request on every endpoint"
    );
}

#[tokio::test]
async fn an_oversized_order_body_gets_413() {
    let (s, t) = stack_and_user("lee").await;
    let huge = format!(
        r#"{{"items":[{{"sku":"{}","quantity":1}}]}}"#,
        "x".repeat(20_000)
    );
    assert_eq!(
        s.api.create(&t, &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn a_missing_expired_forged_or_garbage_token_gets_401() {
    let s = stack().await;
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
}

#[tokio::test]
async fn a_login_code_wechat_refuses_gets_login_failed() {
    let s = stack().await;
    let bad_code = login_with(&s, r#"{"code":"nonsense"}"#).await;
    assert_eq!(
        (bad_code.status, bad_code.code()),
        (StatusCode::UNAUTHORIZED, "login_failed")
    );
}

#[tokio::test]
async fn an_order_id_that_is_malformed_or_unknown_is_not_found() {
    let (s, t) = stack_and_user("lee").await;
    assert_eq!(s.api.get(&t, "not-a-uuid").await.code(), "order_not_found");
    assert_eq!(
        s.api
            .get(&t, "0190b0f0-0000-7000-8000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_page_limit_above_the_maximum_is_invalid_request() {
    let (s, t) = stack_and_user("lee").await;
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
}

#[tokio::test]
async fn a_malformed_page_cursor_gets_400() {
    let (s, t) = stack_and_user("lee").await;
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
}

#[tokio::test]
async fn an_unknown_path_gets_not_found() {
    let s = stack().await;
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
async fn health_and_readiness_answer_200_on_the_ops_port() {
    let s = stack().await;
    assert_eq!(
        s.ops
            .call(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.ops
            .call(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_public_port_serves_no_ops_endpoints() {
    let s = stack().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = s.api.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn readiness_names_a_lost_database_without_its_error() {
    let s = stack().await;
    // The database goes away under the running service.
    let name = s.database_url.rsplit('/').next().unwrap().to_owned();
    let admin = format!("{}/postgres", s.database_url.rsplit_once('/').unwrap().0);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    let ready = wait_until(PATIENCE, "order-svc reports not ready", || async {
        let ready = s.ops.call(Method::GET, "/readyz", None, None, &[]).await;
        if ready.status == StatusCode::SERVICE_UNAVAILABLE {
            Ok(ready)
        } else {
            Err(ready.status)
        }
    })
    .await;
    assert_eq!(
        ready.body,
        serde_json::json!({
            "status": "not_ready",
            "dependency": "PostgreSQL",
            "reason": "unreachable",
        }),
        "which dependency, in fixed words: never the raw error, the database or its address"
    );
}

#[tokio::test]
async fn a_callers_trace_id_is_answered_back() {
    let s = stack().await;
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
}

#[tokio::test]
async fn a_request_without_a_trace_id_gets_a_fresh_one() {
    let s = stack().await;
    let fresh = s
        .api
        .call(Method::GET, "/api/v1/products", None, None, &[])
        .await;
    assert_eq!(fresh.headers.get("x-trace-id").unwrap().len(), 32);
}

#[tokio::test]
async fn metrics_count_http_requests_by_route() {
    let s = stack().await;
    let products = s
        .api
        .call(Method::GET, "/api/v1/products", None, None, &[])
        .await;
    assert_eq!(products.status, StatusCode::OK);
    let metrics = s
        .api
        .http
        .get(format!("{}/metrics", s.ops.base))
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
}

#[tokio::test]
async fn the_openapi_document_has_every_route() {
    let s = stack().await;
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

mod grpc {
    //! order-svc's gRPC `OrderService`, read side.

    use proto::order::v1::order_service_client::OrderServiceClient;
    use proto::order::v1::{GetOrderRequest, ListOrdersRequest, Order, OrderStatus};
    use service_runtime::grpc_auth::{ClientAuth, GrpcToken};
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::Channel;

    use super::*;

    type Client = OrderServiceClient<InterceptedService<Channel, ClientAuth>>;

    /// A client of order-svc's gRPC API sending `token`.
    async fn client(s: &Stack, token: Option<&str>) -> Client {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let token = token.map(|t| GrpcToken::new(t).unwrap());
        OrderServiceClient::with_interceptor(channel, ClientAuth::new(token.as_ref()))
    }

    /// A stack with one order of [`TEA`], a gRPC client, and that order as gRPC gives it by id.
    async fn one_order() -> (Stack, Answer, Client, Order) {
        let (s, t) = stack_and_user("ned").await;
        let order = s.api.create(&t, TEA).await;
        let mut client = client(&s, Some(ORDER_GRPC_TOKEN)).await;
        let by_id = client
            .get_order(GetOrderRequest {
                order_id: order.body["id"].as_str().unwrap().into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (s, order, client, by_id)
    }

    #[tokio::test]
    async fn get_order_by_id_gives_its_amount_status_and_items() {
        let (_s, _, _, by_id) = one_order().await;
        assert_eq!(by_id.amount_fen, TEA_TOTAL);
        assert_eq!(by_id.status(), OrderStatus::Pending);
        assert_eq!(by_id.items.len(), 2);
    }

    #[tokio::test]
    async fn get_order_by_out_trade_no_finds_the_same_order() {
        let (_s, order, mut client, by_id) = one_order().await;
        let by_number = client
            .get_order(GetOrderRequest {
                out_trade_no: order.body["out_trade_no"].as_str().unwrap().into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_number.id, by_id.id);
    }

    #[tokio::test]
    async fn get_order_of_an_unknown_id_is_not_found() {
        let (_s, _, mut client, _) = one_order().await;
        let missing = client
            .get_order(GetOrderRequest {
                order_id: "nope".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn list_orders_gives_the_users_orders() {
        let (_s, _, mut client, by_id) = one_order().await;
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

    #[tokio::test]
    async fn list_orders_without_an_openid_is_refused() {
        let (_s, _, mut client, _) = one_order().await;
        let refused = client
            .list_orders(ListOrdersRequest {
                openid: String::new(),
                limit: 10,
                cursor: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_call_without_a_token_is_unauthenticated() {
        let (s, _, _, by_id) = one_order().await;
        let refused = client(&s, None)
            .await
            .list_orders(ListOrdersRequest {
                openid: by_id.openid,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn a_call_with_a_wrong_token_is_unauthenticated() {
        let (s, _, _, by_id) = one_order().await;
        let refused = client(&s, Some(GATEWAY_GRPC_TOKEN))
            .await
            .get_order(GetOrderRequest {
                order_id: by_id.id,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn reflection_is_off_by_default() {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        let s = stack().await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let refused = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unimplemented);
    }
}

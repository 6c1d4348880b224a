//! pay-gateway-svc over real gRPC, against the WeChat Pay simulator over HTTP.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use pay_gateway_svc::{Application, Settings};
use proto::paygateway::v1 as pb;
use service_runtime::settings::MapEnv;
use service_runtime::telemetry::TRACE_ID_HEADER;
use support::{Client, TOKEN, channel, client, login, prepay_request, reason};
use tonic::Code;
use wechat_pay::v2::{ApiKey, RequestPayment};
use wechatpay_sim::RunningSim;

struct Stack {
    sim: RunningSim,
    client: Client,
    ops: std::net::SocketAddr,
    grpc: std::net::SocketAddr,
}

async fn stack() -> Stack {
    stack_with(&[]).await
}

/// The simulator and pay-gateway-svc, with `extra` settings.
async fn stack_with(extra: &[(&str, &str)]) -> Stack {
    let running = support::start(0.001, extra).await;
    Stack {
        client: client(running.grpc, Some(TOKEN)).await,
        sim: running.sim,
        ops: running.ops,
        grpc: running.grpc,
    }
}

#[tokio::test]
async fn login_prepay_query_close() {
    let Stack {
        sim, mut client, ..
    } = stack().await;
    let openid = login(&mut client, "alice").await;
    assert_eq!(
        openid,
        wechatpay_sim::openid_for(wechatpay_sim::DEFAULT_APPID, "alice")
    );
    let used = client
        .code2_session(pb::Code2SessionRequest {
            js_code: "test-alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (used.code(), reason(&used).as_str()),
        (Code::InvalidArgument, "CODE_USED")
    );

    let prepay = client
        .create_prepay(prepay_request("GW0000000001", &openid, 1999))
        .await
        .unwrap()
        .into_inner();
    let p = prepay.payment.unwrap();
    let payment = RequestPayment {
        app_id: p.app_id,
        time_stamp: p.time_stamp,
        nonce_str: p.nonce_str,
        package: p.package,
        sign_type: p.sign_type,
        pay_sign: p.pay_sign,
    };
    let key = ApiKey::new(wechatpay_sim::DEFAULT_API_KEY).unwrap();
    assert_eq!(payment.verify(&key), Ok(()));
    assert_eq!(payment.package, format!("prepay_id={}", prepay.prepay_id));
    assert!(prepay.prepay_expires_at_unix > 0);

    let mut reuse = prepay_request("GW0000000001", &openid, 1999);
    reuse.reuse_prepay_id = prepay.prepay_id.clone();
    let again = client.create_prepay(reuse).await.unwrap().into_inner();
    assert_eq!(again.prepay_id, prepay.prepay_id);

    let q = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GW0000000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.state(), pb::TradeState::Notpay);
    sim.sim()
        .pay(
            &sim.sim().find("GW0000000001", None).unwrap(),
            wechatpay_sim::PayResult::Success,
        )
        .unwrap();
    let q = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GW0000000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.state(), pb::TradeState::Success);
    assert_eq!(q.amount_fen, 1999);
    assert_eq!(q.transaction_id.len(), 28);

    let paid = client
        .close_payment(pb::ClosePaymentRequest {
            out_trade_no: "GW0000000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (paid.code(), reason(&paid).as_str()),
        (Code::FailedPrecondition, "ORDER_PAID")
    );
    let again = client
        .create_prepay(prepay_request("GW0000000001", &openid, 1999))
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "ORDER_PAID");

    client
        .create_prepay(prepay_request("GW0000000002", &openid, 5))
        .await
        .unwrap();
    let closed = client
        .close_payment(pb::ClosePaymentRequest {
            out_trade_no: "GW0000000002".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!closed.already_closed);
    let closed = client
        .close_payment(pb::ClosePaymentRequest {
            out_trade_no: "GW0000000002".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(closed.already_closed);
    let changed = client
        .create_prepay(prepay_request("GW0000000003", &openid, 5))
        .await;
    assert!(changed.is_ok());
    let changed = client
        .create_prepay(prepay_request("GW0000000003", &openid, 6))
        .await
        .unwrap_err();
    assert_eq!(
        (changed.code(), reason(&changed).as_str()),
        (Code::AlreadyExists, "OUT_TRADE_NO_USED")
    );
}

#[tokio::test]
async fn systemerror_twice_then_success_still_yields_a_prepay() {
    let Stack {
        sim, mut client, ..
    } = stack().await;
    let openid = login(&mut client, "bob").await;
    sim.sim()
        .set_faults(wechatpay_sim::Faults {
            system_error_next: 2,
            ..Default::default()
        })
        .unwrap();
    let prepay = client
        .create_prepay(prepay_request("GW0000000010", &openid, 100))
        .await
        .unwrap()
        .into_inner();
    assert!(!prepay.prepay_id.is_empty());
    sim.sim()
        .set_faults(wechatpay_sim::Faults {
            system_error_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let busy = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GW0000000010".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (busy.code(), reason(&busy).as_str()),
        (Code::Unavailable, "SYSTEMERROR")
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_before_wechat() {
    let Stack {
        mut client,
        sim: _sim,
        ..
    } = stack().await;
    for (n, amount, openid) in [
        ("bad no", 1, "o1"),
        ("GW0000000020", 0, "o1"),
        ("GW0000000021", -5, "o1"),
        ("GW0000000022", 1, ""),
    ] {
        let err = client
            .create_prepay(prepay_request(n, openid, amount))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::InvalidArgument, "INVALID_ARGUMENT"),
            "{n} {amount} {openid:?}"
        );
    }
    let stranger = client
        .create_prepay(prepay_request(
            "GW0000000023",
            "oNotIssuedByTheSimulator0000",
            1,
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn health_readiness_and_metrics_are_on_the_ops_port() {
    let Stack {
        mut client,
        ops,
        sim,
        ..
    } = stack().await;
    let get = |path: &str| reqwest::get(format!("http://{ops}{path}"));
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key(TRACE_ID_HEADER));
    login(&mut client, "metrics").await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("wechat_calls_total") && metrics.contains("endpoint=\"jscode2session\""),
        "{metrics}"
    );
    assert!(metrics.contains("grpc_requests_total"), "{metrics}");
    drop(sim);
}

#[tokio::test]
async fn grpc_health_answers_without_a_token() {
    let Stack { sim, grpc, .. } = stack().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(grpc).await);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "minipay.paygateway.v1.PayGateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    drop(sim);
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let Stack { sim, grpc, .. } = stack().await;
    let mut anonymous = client(grpc, None).await;
    let refused = anonymous
        .close_payment(pb::ClosePaymentRequest {
            out_trade_no: "GW0000000040".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    drop(sim);
}

#[tokio::test]
async fn a_call_with_a_wrong_token_is_unauthenticated() {
    let Stack { sim, grpc, .. } = stack().await;
    let wrong = "not-the-pay-gateway-token-0123456789abcdef";
    let mut impostor = client(grpc, Some(wrong)).await;
    let refused = impostor
        .code2_session(pb::Code2SessionRequest {
            js_code: "test-impostor".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(!refused.message().contains(TOKEN) && !refused.message().contains(wrong));
    drop(sim);
}

/// The services gRPC reflection lists at `grpc`, or its status.
async fn reflected_services(grpc: std::net::SocketAddr) -> Result<Vec<String>, tonic::Status> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel(grpc).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await?
        .into_inner();
    let first = stream.message().await?.unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list")
    };
    Ok(list.service.into_iter().map(|s| s.name).collect())
}

#[tokio::test]
async fn reflection_is_off_by_default() {
    let Stack { sim, grpc, .. } = stack().await;
    let refused = reflected_services(grpc).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    drop(sim);
}

#[tokio::test]
async fn reflection_lists_the_service_when_enabled() {
    let Stack { sim, grpc, .. } = stack_with(&[("GRPC_REFLECTION", "on")]).await;
    let services = reflected_services(grpc).await.unwrap();
    assert!(
        services
            .iter()
            .any(|s| s == "minipay.paygateway.v1.PayGateway"),
        "{services:?}"
    );
    drop(sim);
}

#[tokio::test]
async fn readiness_fails_when_wechat_is_unreachable() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let env = MapEnv::from_pairs([
        ("WECHAT_MODE", "simulator"),
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_OPS_ADDR", "127.0.0.1:0"),
        ("WECHAT_PAY_BASE_URL", dead.as_str()),
        ("GRPC_TOKEN", TOKEN),
    ]);
    let app = Application::build(Settings::from_source(&env).unwrap())
        .await
        .unwrap();
    let (ops, grpc) = (app.ops_addr(), app.grpc_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let ready = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = serde_json::from_slice(&ready.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "status": "not_ready",
            "dependency": "WeChat Pay",
            "reason": "unreachable",
        }),
        "which dependency, in fixed words: never the raw error or the address"
    );
    let mut client = client(grpc, Some(TOKEN)).await;
    let err = client
        .query_payment(pb::QueryPaymentRequest {
            out_trade_no: "GW0000000030".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Unavailable, "WECHAT_UNAVAILABLE")
    );
}

//! What pay-gateway-svc's test files share: the token, a gRPC client, a status's reason, the
//! service started in process against a simulator of its own.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use proto::paygateway::v1::pay_gateway_client::PayGatewayClient;
use service_runtime::grpc_auth::{ClientAuth, GrpcToken};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// pay-gateway-svc's token in these tests.
pub const TOKEN: &str = "pay-gateway-test-token-0123456789abcdef";

/// A client sending a token.
pub type Client = PayGatewayClient<InterceptedService<Channel, ClientAuth>>;

/// A client of the service at `grpc`, sending `token` (none when `None`).
pub async fn client(grpc: std::net::SocketAddr, token: Option<&str>) -> Client {
    let token = token.map(|t| GrpcToken::new(t).unwrap());
    PayGatewayClient::with_interceptor(channel(grpc).await, ClientAuth::new(token.as_ref()))
}

/// A plain channel to `addr`.
pub async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Logs user `name` in (a simulator code `test-<name>`): the openid.
pub async fn login(client: &mut Client, name: &str) -> String {
    client
        .code2_session(proto::paygateway::v1::Code2SessionRequest {
            js_code: format!("test-{name}"),
        })
        .await
        .unwrap()
        .into_inner()
        .openid
}

/// A new order's `CreatePrepay` request.
pub fn prepay_request(
    n: &str,
    openid: &str,
    amount: i64,
) -> proto::paygateway::v1::CreatePrepayRequest {
    proto::paygateway::v1::CreatePrepayRequest {
        out_trade_no: n.into(),
        amount_fen: amount,
        description: "Minipay-Tea".into(),
        openid: openid.into(),
        client_ip: "127.0.0.1".into(),
        ..Default::default()
    }
}

/// The `ErrorInfo` reason a status carries.
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// pay-gateway-svc running in process against a simulator of its own.
pub struct Running {
    pub sim: wechatpay_sim::RunningSim,
    pub grpc: std::net::SocketAddr,
    pub ops: std::net::SocketAddr,
}

/// The simulator (WeChat's clock scaled by `time_scale`) and pay-gateway-svc, with `extra`
/// settings.
pub async fn start(time_scale: f64, extra: &[(&str, &str)]) -> Running {
    let sim = wechatpay_sim::spawn(wechatpay_sim::SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        time_scale,
        ..wechatpay_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let base = sim.base_url();
    let mut env = service_runtime::settings::MapEnv::from_pairs([
        ("WECHAT_MODE", "simulator"),
        ("PAY_GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("PAY_GATEWAY_OPS_ADDR", "127.0.0.1:0"),
        ("WECHAT_PAY_BASE_URL", base.as_str()),
        ("WECHAT_NOTIFY_URL", "http://127.0.0.1:9/wechat/pay/notify"),
        ("GRPC_TOKEN", TOKEN),
    ]);
    for (k, v) in extra {
        env.0.insert((*k).to_owned(), (*v).to_owned());
    }
    let app =
        pay_gateway_svc::Application::build(pay_gateway_svc::Settings::from_source(&env).unwrap())
            .await
            .unwrap();
    let (grpc, ops) = (app.grpc_addr(), app.ops_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Running { sim, grpc, ops }
}

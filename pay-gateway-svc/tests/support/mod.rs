//! What pay-gateway-svc's test files share: the token, a gRPC client, a status's reason.

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

/// The `ErrorInfo` reason a status carries.
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

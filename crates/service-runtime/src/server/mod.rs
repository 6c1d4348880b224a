//! Binding and serving, the same for every service: an HTTP server with the request layer
//! (trace id, access log, metrics), timeouts and a connection limit ([`http`]), and a gRPC
//! server whose own service checks the caller's token, with the standard health service and,
//! where enabled, reflection next to it.

use std::net::SocketAddr;

use std::convert::Infallible;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

pub use self::http::{HttpSettings, serve_http};
use crate::grpc_auth::{GrpcSettings, TokenCheck};

mod http;

/// A port that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A server that failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service could not be built from the descriptor set.
    #[error("gRPC reflection could not be built")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// The bound address, or the requested one if the socket cannot tell.
pub fn local_addr(listener: &TcpListener, requested: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(requested)
}

/// Serves `service` (its calls checked for the token of `grpc`), the standard gRPC health
/// service (unauthenticated, for probes) and, when `grpc.reflection` is on, reflection over
/// `descriptor`, until `shutdown`.
pub async fn serve_grpc<S>(
    listener: TcpListener,
    service_name: &'static str,
    service: S,
    grpc: &GrpcSettings,
    descriptor: &'static [u8],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(S::NAME, tonic_health::ServingStatus::Serving)
        .await;
    let check = TokenCheck::new(service_name, grpc.token.as_ref());
    let mut routes = Routes::new(InterceptedService::new(service, check)).add_service(health);
    if grpc.reflection {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor)
            .build_v1()
            .map_err(ServeError::Reflection)?;
        routes = routes.add_service(reflection);
    }
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .map_err(ServeError::Grpc)
}

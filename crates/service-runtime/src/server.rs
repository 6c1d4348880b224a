//! Binding and serving, the same for every service: an HTTP server with the request layer
//! (trace id, access log, metrics), and a gRPC server with the standard health service and
//! reflection next to the service's own.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::telemetry::http_layer;

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
    /// The HTTP server's listener failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
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

/// Serves `router` (with the request layer) until `shutdown`, finishing in-flight requests.
pub async fn serve_http(
    service: &'static str,
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router.layer(axum::middleware::from_fn_with_state(service, http_layer));
    // With connect info: handlers may read the peer's address (`ConnectInfo<SocketAddr>`).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(ServeError::Http)
}

/// Serves `routes` (the service's own gRPC service, named `name` for the health service)
/// plus gRPC health and reflection over `descriptor`, until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    name: &'static str,
    descriptor: &'static [u8],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(name, tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptor)
        .build_v1()
        .map_err(ServeError::Reflection)?;
    tonic::transport::Server::builder()
        .add_routes(routes.add_service(health).add_service(reflection))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .map_err(ServeError::Grpc)
}

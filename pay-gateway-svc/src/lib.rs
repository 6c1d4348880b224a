//! pay-gateway-svc: the only Minipay service that holds merchant credentials and calls
//! WeChat. It serves the `PayGateway` gRPC API (plus gRPC health and reflection) and an HTTP
//! port for `/healthz`, `/readyz` and `/metrics`.
//!
//! `main` only loads [`Settings`], builds the [`Application`] and runs it until SIGTERM;
//! tests build settings as values with port 0 and read the real ports back.

mod error;
mod gateway;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::paygateway::v1::pay_gateway_server::PayGatewayServer;
use service_runtime::ops::{self, ReadinessCheck};
use service_runtime::shutdown::Shutdown;
use service_runtime::telemetry::http_layer;
use tokio::net::TcpListener;
use url::Url;

pub use self::error::{ERROR_DOMAIN, GatewayError};
pub use self::gateway::Gateway;
pub use self::settings::{SIMULATOR_BASE_URL, Settings, WeChatSettings};

/// The service's name in logs and metrics.
pub const SERVICE: &str = "pay-gateway-svc";

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The WeChat clients could not be built.
    #[error("cannot build the WeChat clients: {0}")]
    Gateway(#[from] GatewayError),
    /// gRPC reflection could not be set up.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    /// A server failed while running.
    #[error("server error: {0}")]
    Serve(String),
}

/// The bound, ready-to-run service.
#[derive(Debug)]
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    gateway: Gateway,
    settings: Settings,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl Application {
    /// Binds both ports and builds the WeChat clients.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        if settings.wechat.simulator {
            tracing::warn!(base_url = %settings.wechat.pay_base_url, "no merchant configured (WECHAT_MCH_ID unset): using the WeChat Pay simulator's default merchant");
        }
        let gateway = Gateway::new(settings.wechat.clone())?;
        let grpc = bind(settings.grpc_addr).await?;
        let http = bind(settings.http_addr).await?;
        Ok(Application {
            grpc,
            http,
            gateway,
            settings,
        })
    }

    /// The gRPC address actually bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or(self.settings.grpc_addr)
    }

    /// The HTTP (health and metrics) address actually bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.settings.http_addr)
    }

    /// Serves until `shutdown` completes, then stops taking calls and finishes in-flight ones.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let stop = Shutdown::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.trigger();
        });

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<PayGatewayServer<Gateway>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| StartError::Reflection(e.to_string()))?;
        tracing::info!(grpc = %self.grpc_addr(), http = %self.http_addr(), "pay-gateway-svc listening");
        let grpc = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection)
            .add_service(PayGatewayServer::new(self.gateway))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(self.grpc),
                stop.wait(),
            );

        let ready = readiness(self.settings.wechat.pay_base_url.clone());
        let app =
            ops::router(ready).layer(axum::middleware::from_fn_with_state(SERVICE, http_layer));
        let http = axum::serve(self.http, app).with_graceful_shutdown(stop.wait());

        let (grpc, http) = tokio::join!(grpc, async { http.await });
        grpc.map_err(|e| StartError::Serve(e.to_string()))?;
        http.map_err(|e| StartError::Serve(e.to_string()))?;
        tracing::info!("pay-gateway-svc stopped");
        Ok(())
    }
}

/// Ready when WeChat's (or the simulator's) host accepts a TCP connection.
fn readiness(base: Url) -> ReadinessCheck {
    Arc::new(move || {
        let base = base.clone();
        Box::pin(async move {
            let host = base.host_str().unwrap_or("localhost").to_owned();
            let port = base.port_or_known_default().unwrap_or(443);
            match tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                _ => Err(format!("WeChat Pay at {host}:{port} is unreachable")),
            }
        })
    })
}

service_runtime::impl_service!(Application, Settings, StartError, SERVICE);

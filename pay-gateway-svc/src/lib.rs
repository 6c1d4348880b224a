//! pay-gateway-svc: the only Minipay service that holds merchant credentials and calls
//! WeChat. It serves the `PayGateway` gRPC API to callers holding its token (plus gRPC health,
//! and reflection where enabled) and an ops port for `/healthz`, `/readyz` and `/metrics`.
//!
//! `main` only loads [`Settings`], builds the [`Application`] and runs it until SIGTERM;
//! tests build settings as values with port 0 and read the real ports back.

mod cert;
mod convert;
mod error;
mod gateway;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::paygateway::v1::pay_gateway_server::PayGatewayServer;
use service_runtime::ops::{self, NotReady, ReadinessCheck};
use service_runtime::server::{BindError, ServeError, bind, local_addr, serve_grpc, serve_http};
use service_runtime::shutdown::Shutdown;
use tokio::net::TcpListener;
use url::Url;
use wechat_pay::login::LoginError;

pub use self::cert::MerchantCert;
use self::gateway::Gateway;
pub use self::settings::{Settings, V3Settings, WeChatSettings};

/// The service's name in logs and metrics.
const SERVICE: &str = "pay-gateway-svc";

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The merchant API client could not be built.
    #[error("cannot build the WeChat Pay client")]
    PayClient(#[source] wechat_pay::v2::Error),
    /// The v3 merchant API client could not be built.
    #[error("cannot build the WeChat Pay v3 client")]
    PayClientV3(#[source] wechat_pay::v3::Error),
    /// The login client could not be built.
    #[error("cannot build the WeChat login client")]
    LoginClient(#[source] LoginError),
    /// A server failed while running.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The bound, ready-to-run service.
#[derive(Debug)]
pub struct Application {
    grpc: TcpListener,
    ops: TcpListener,
    gateway: Gateway,
    settings: Settings,
}

impl Application {
    /// Binds both ports and builds the WeChat clients.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        if settings.wechat.simulator {
            tracing::warn!(base_url = %settings.wechat.pay_base_url, "simulator mode (WECHAT_MODE=simulator): not for real payments");
        }
        if settings.wechat.merchant_cert.is_some() {
            tracing::info!("refunds on: the merchant API certificate is loaded");
        } else {
            tracing::info!(
                "refunds off: no merchant API certificate (WECHAT_CERT_FILE, WECHAT_KEY_FILE)"
            );
        }
        match &settings.wechat.v3 {
            Some(v3) => tracing::info!(
                public_key = v3.public_key.as_ref().map(|(id, _)| id.as_str()),
                platform_certificates = v3.platform_certificates,
                "WeChat Pay API v3"
            ),
            None => tracing::info!("WeChat Pay API v2"),
        }
        let gateway = Gateway::new(settings.wechat.clone())?;
        gateway.prepare().await;
        let grpc = bind(settings.grpc_addr).await?;
        let ops = bind(settings.ops_addr).await?;
        Ok(Application {
            grpc,
            ops,
            gateway,
            settings,
        })
    }

    /// The gRPC address actually bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc, self.settings.grpc_addr)
    }

    /// The ops (health and metrics) address actually bound.
    pub fn ops_addr(&self) -> SocketAddr {
        local_addr(&self.ops, self.settings.ops_addr)
    }

    /// Serves until `shutdown` completes, then stops taking calls and finishes in-flight ones.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let stop = Shutdown::after(shutdown);

        tracing::info!(grpc = %self.grpc_addr(), ops = %self.ops_addr(), "{SERVICE} listening");
        let grpc = serve_grpc(
            self.grpc,
            SERVICE,
            PayGatewayServer::new(self.gateway),
            &self.settings.grpc,
            proto::FILE_DESCRIPTOR_SET,
            stop.wait(),
        );
        let ready = readiness(self.settings.wechat.pay_base_url.clone());
        let http = serve_http(
            SERVICE,
            self.ops,
            ops::router(ready),
            &self.settings.http,
            stop.wait(),
        );

        let (grpc, http) = tokio::join!(grpc, http);
        grpc?;
        http?;
        tracing::info!("{SERVICE} stopped");
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
                Ok(Err(e)) => Err(NotReady::new("WeChat Pay", "unreachable", e)),
                Err(elapsed) => Err(NotReady::new("WeChat Pay", "unreachable", elapsed)),
            }
        })
    })
}

service_runtime::impl_service!(Application, Settings, StartError, SERVICE);

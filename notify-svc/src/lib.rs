//! notify-svc: takes WeChat Pay's payment and refund callbacks (v2, and v3 under
//! `WECHAT_API_VERSION=v3`), authenticates them, and turns them into durable RabbitMQ events.
//! It never touches the order database; the success ack goes out only after the broker
//! confirmed the event.

mod convert;
mod notify;
mod settings;
mod v3;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use messaging::{Publisher, Topology};
use service_runtime::ops::{self, NotReady, ReadinessCheck};
use service_runtime::server::{BindError, ServeError, bind, local_addr, serve_http};
use service_runtime::shutdown::Shutdown;
use tokio::net::TcpListener;

use self::notify::NotifyState;
pub use self::settings::{GatewayLink, Settings, V3Settings};
use self::v3::V3Receiver;

/// The service's name in logs and metrics.
const SERVICE: &str = "notify-svc";

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The server failed while running.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// pay-gateway-svc's URL is unusable.
    #[error("PAY_GATEWAY_URL is not a usable URL")]
    GatewayUrl(#[source] tonic::transport::Error),
}

/// The bound, ready-to-run service.
#[derive(Debug)]
pub struct Application {
    http: TcpListener,
    ops: TcpListener,
    state: NotifyState,
}

impl Application {
    /// Binds the port and prepares the publisher (which connects, declares the payments
    /// exchange, and keeps reconnecting on its own).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let http = bind(settings.http_addr).await?;
        let ops = bind(settings.ops_addr).await?;
        let topology = Topology::new(settings.amqp_prefix.clone());
        let declare_topology = topology.clone();
        let publisher = Publisher::new(
            secrecy::ExposeSecret::expose_secret(&settings.amqp_url),
            SERVICE,
            settings.confirm_timeout,
            Arc::new(move |channel| {
                let topology = declare_topology.clone();
                Box::pin(async move { topology.declare_payments_exchange(&channel).await })
            }),
        );
        // Declare the exchange now if the broker is there; if not, the keepalive retries.
        if !publisher.ensure_connected().await {
            tracing::warn!(
                "RabbitMQ unreachable at start: answering notifications with the failure ack until it is back"
            );
        }
        let v3 = match &settings.v3 {
            Some(v3_settings) => {
                tracing::info!(
                    public_key = v3_settings.public_key.as_ref().map(|(id, _)| id.as_str()),
                    platform_certificates = v3_settings.certificates.is_some(),
                    "API v3 notifications on /wechat/v3/pay/notify and /wechat/v3/refund/notify"
                );
                Some(Arc::new(
                    V3Receiver::new(v3_settings).map_err(StartError::GatewayUrl)?,
                ))
            }
            None => None,
        };
        Ok(Application {
            http,
            ops,
            state: NotifyState {
                settings: Arc::new(settings),
                publisher,
                topology,
                v3,
            },
        })
    }

    /// The address actually bound.
    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The ops address (`/healthz`, `/readyz`, `/metrics`) actually bound.
    pub fn ops_addr(&self) -> SocketAddr {
        local_addr(&self.ops, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes; in-flight notifications finish (and are acked or
    /// refused) before it returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let stop = Shutdown::after(shutdown);
        tracing::info!(http = %self.http_addr(), ops = %self.ops_addr(), "{SERVICE} listening");
        let publisher = self.state.publisher.clone();
        publisher.spawn_keepalive(stop.wait());
        let ready = readiness(self.state.publisher.clone());
        let http_settings = self.state.settings.http;
        let mut app = Router::new()
            .route("/wechat/pay/notify", post(notify::pay_notify))
            .route("/wechat/refund/notify", post(notify::refund_notify));
        if self.state.v3.is_some() {
            app = app
                .route("/wechat/v3/pay/notify", post(notify::v3_pay_notify))
                .route("/wechat/v3/refund/notify", post(notify::v3_refund_notify));
        }
        let app = app
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(self.state);
        let served = serve_http(SERVICE, self.http, app, &http_settings, stop.wait());
        let ops = serve_http(
            SERVICE,
            self.ops,
            ops::router(ready),
            &http_settings,
            stop.wait(),
        );
        let (served, ops) = tokio::join!(served, ops);
        // Only after every in-flight notification was answered.
        publisher.close().await;
        served?;
        ops?;
        tracing::info!("{SERVICE} stopped");
        Ok(())
    }
}

/// Ready while a confirming channel to RabbitMQ is open.
fn readiness(publisher: Publisher) -> ReadinessCheck {
    Arc::new(move || {
        let publisher = publisher.clone();
        Box::pin(async move {
            if publisher.is_connected().await {
                Ok(())
            } else {
                Err(NotReady {
                    dependency: "RabbitMQ",
                    reason: "no confirming channel to publish on",
                    source: None,
                })
            }
        })
    })
}

service_runtime::impl_service!(Application, Settings, StartError, SERVICE);

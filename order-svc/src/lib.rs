//! order-svc: the Mini Program's HTTP API, the orders in PostgreSQL, their status cached in
//! Redis, and `OrderService` over gRPC for internal callers (token-checked); `/healthz`,
//! `/readyz` and `/metrics` on an ops port of their own.
//!
//! `main` only loads [`Settings`], builds the [`Application`] and runs it until SIGTERM;
//! tests build settings as values with port 0 and read the real ports back.

pub mod cache;
pub mod checkout;
pub mod convert;
pub mod dead_letters;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod operators;
pub mod orders;
pub mod payments;
pub mod reconcile;
pub mod refunds;
pub mod reviews;
pub mod session;
pub mod settings;
pub mod store;
pub mod transitions;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::ExposeSecret;

use proto::order::v1::order_service_server::OrderServiceServer;
use service_runtime::grpc_auth::GrpcSettings;
use service_runtime::ops::{self, NotReady, ReadinessCheck};
use service_runtime::server::{
    BindError, HttpSettings, ServeError, bind, local_addr, serve_grpc, serve_http,
};
use service_runtime::shutdown::Shutdown;
use tokio::net::TcpListener;

pub use self::settings::Settings;

/// The service's name in logs and metrics.
pub const SERVICE: &str = "order-svc";

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// PostgreSQL could not be reached or migrated.
    #[error(transparent)]
    Database(#[from] store::ConnectError),
    /// `PAY_GATEWAY_URL` is not usable.
    #[error(transparent)]
    PayGatewayUrl(#[from] payments::InvalidGatewayUrl),
    /// A server failed while running.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The bound, ready-to-run service.
#[derive(Debug)]
pub struct Application {
    http: TcpListener,
    grpc: TcpListener,
    ops: TcpListener,
    http_settings: HttpSettings,
    grpc_settings: GrpcSettings,
    state: http::AppState,
    store: store::Store,
    cache: cache::OrderCache,
    workers: workers::Workers,
    run_workers: bool,
}

impl Application {
    /// Connects PostgreSQL (applying migrations), prepares Redis and pay-gateway-svc
    /// (connected lazily), and binds both ports.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let pool =
            store::connect(settings.database_url(), settings.database_max_connections).await?;
        let store = store::Store::new(pool);
        let cache = cache::OrderCache::new(
            &settings.redis_url,
            settings.redis_key_prefix.clone(),
            settings.status_cache_ttl,
            settings.redis_timeout,
        );
        let payments = payments::Payments::new(
            &settings.pay_gateway_url,
            settings.pay_gateway_token.as_ref(),
            settings.pay_gateway_timeout,
        )?;
        let orders = Arc::new(orders::Orders::new(
            store.clone(),
            cache.clone(),
            payments.clone(),
            session::Sessions::new(settings.session_secret.clone()),
            settings.session_ttl,
            settings.order_ttl,
        ));
        let payments_for_refunds = payments.clone();
        let payments_for_reviews = payments.clone();
        let payments_for_reconciler = payments.clone();
        let checkout = Arc::new(checkout::Checkout::new(
            store.clone(),
            cache.clone(),
            payments,
            checkout::CheckoutSettings {
                description: settings.payment_description.clone(),
                merchant: domain::ExpectedMerchant {
                    appid: settings.wechat_appid.clone(),
                    mch_id: settings.wechat_mch_id.clone(),
                },
                query_after: settings.payment_query_after,
                query_max_interval: settings.payment_query_max_interval,
            },
        ));
        let refunds = Arc::new(refunds::Refunds::new(
            store.clone(),
            cache.clone(),
            payments_for_refunds,
            refunds::RefundSettings {
                query_after: settings.refund_query_after,
                query_max_interval: settings.refund_query_max_interval,
            },
        ));
        if settings.admin_tokens.is_empty() {
            tracing::info!("ADMIN_TOKENS is not set: the admin API is closed to everyone");
        }
        let reviews = Arc::new(reviews::Reviews::new(
            store.clone(),
            cache.clone(),
            payments_for_reviews,
            Arc::clone(&refunds),
        ));
        let dead_letters = Arc::new(dead_letters::DeadLetters::new(
            store.clone(),
            settings.amqp_url.expose_secret(),
            messaging::Topology::new(settings.amqp_prefix.clone()),
        ));
        let reconciler = Arc::new(reconcile::Reconciler::new(
            store.clone(),
            payments_for_reconciler,
            Arc::clone(&checkout),
            Arc::clone(&refunds),
            reconcile::ReconcileSettings {
                after: settings.reconcile_after,
                daily: settings.reconcile_daily,
            },
        ));
        let workers = workers::Workers::new(
            Arc::clone(&reconciler),
            Arc::clone(&checkout),
            Arc::clone(&refunds),
            Arc::clone(&dead_letters),
            store.clone(),
            &settings,
        );
        let http = bind(settings.http_addr).await?;
        let grpc = bind(settings.grpc_addr).await?;
        let ops = bind(settings.ops_addr).await?;
        Ok(Application {
            http,
            grpc,
            ops,
            http_settings: settings.http,
            grpc_settings: settings.grpc.clone(),
            state: http::AppState {
                orders,
                checkout,
                refunds,
                reviews,
                dead_letters,
                admin_tokens: Arc::new(settings.admin_tokens.clone()),
                reconciler,
                login_limits: Arc::new(http::LoginLimits::new(
                    settings.login_rate_per_minute,
                    settings.trusted_proxy,
                )),
            },
            store,
            cache,
            workers,
            run_workers: settings.workers,
        })
    }

    /// The HTTP address actually bound.
    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The gRPC address actually bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The ops address (`/healthz`, `/readyz`, `/metrics`) actually bound.
    pub fn ops_addr(&self) -> SocketAddr {
        local_addr(&self.ops, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The background workers (tests drive their single steps).
    pub fn workers(&self) -> workers::Workers {
        self.workers.clone()
    }

    /// Serves until `shutdown` completes, then stops taking requests and finishes in-flight
    /// ones.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let stop = Shutdown::after(shutdown);
        tracing::info!(http = %self.http_addr(), grpc = %self.grpc_addr(), ops = %self.ops_addr(), "order-svc listening");
        let orders_grpc =
            OrderServiceServer::new(grpc::OrderGrpc::new(Arc::clone(&self.state.orders)));
        let grpc = serve_grpc(
            self.grpc,
            SERVICE,
            orders_grpc,
            &self.grpc_settings,
            proto::FILE_DESCRIPTOR_SET,
            stop.wait(),
        );

        let workers_for_ready = self.run_workers.then(|| self.workers.clone());
        let ready = readiness(self.store.clone(), self.cache.clone(), workers_for_ready);
        let api = http::router(self.state.clone());
        let http = serve_http(SERVICE, self.http, api, &self.http_settings, stop.wait());
        let ops = serve_http(
            SERVICE,
            self.ops,
            ops::router(ready),
            &self.http_settings,
            stop.wait(),
        );
        let mut tasks = if self.run_workers {
            self.workers.spawn(&stop)
        } else {
            Vec::new()
        };
        // Stale cache entries whose invalidation failed are removed once Redis is back.
        tasks.push(self.cache.spawn_repairs(stop.wait()));
        let (grpc, http, ops) = tokio::join!(grpc, http, ops);
        // The servers stop after the shutdown signal; the workers finish what they hold.
        for task in tasks {
            let _ = task.await;
        }
        self.workers.close().await;
        grpc?;
        http?;
        ops?;
        tracing::info!("order-svc stopped");
        Ok(())
    }
}

/// Ready when PostgreSQL answers and (with the workers on) the payment queue has been
/// declared. Redis is reported but not required: reads fall back to PostgreSQL while it is
/// away.
fn readiness(
    store: store::Store,
    cache: cache::OrderCache,
    workers: Option<workers::Workers>,
) -> ReadinessCheck {
    Arc::new(move || {
        let (store, cache, workers) = (store.clone(), cache.clone(), workers.clone());
        Box::pin(async move {
            store
                .ping()
                .await
                .map_err(|e| NotReady::new("PostgreSQL", "unreachable", e))?;
            // Until the payment queue exists, notify-svc's events would have nowhere to go.
            // Once declared it stays (durable), so a later broker outage does not take the
            // HTTP API out of service.
            if workers.is_some_and(|w| !w.topology_declared()) {
                return Err(NotReady {
                    dependency: "RabbitMQ",
                    reason: "the payment queue is not declared yet",
                    source: None,
                });
            }
            if !cache.ping().await {
                tracing::warn!("Redis unreachable: serving order status from PostgreSQL");
            }
            Ok(())
        })
    })
}

service_runtime::impl_service!(Application, Settings, StartError, SERVICE);

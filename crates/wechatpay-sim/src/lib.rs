//! A WeChat Pay v2 and v3 merchant API and Mini Program login simulator.
//!
//! It serves WeChat's real paths (`/pay/unifiedorder`, `/pay/orderquery`, `/pay/closeorder`,
//! the same under `/sandboxnew/`, `/sandboxnew/pay/getsignkey`, `/sns/jscode2session`, and
//! v3's `/v3/pay/transactions/...`, `/v3/refund/domestic/refunds`, `/v3/certificates`), so
//! any v2 or v3 SDK pointed at its base URL works unchanged; validates and signs like WeChat; keeps
//! every order's state; delivers signed notifications on WeChat's retry schedule (scaled by
//! a time factor); injects faults on request; and has a JSON control API under `/sim/v1/`.
//!
//! Tests start it in-process on port 0:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mut config = wechatpay_sim::SimConfig::default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! config.time_scale = 0.001;
//! let sim = wechatpay_sim::spawn(config).await?;
//! println!("simulator at {}", sim.base_url());
//! # Ok(()) }
//! ```

mod bill;
mod config;
mod control;
mod faults;
mod login;
mod merchant_api;
mod notify;
mod sim;
mod store;
mod tls;
mod v3_api;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{any, get, post};
use wechat_pay::v2::Endpoint;

pub use self::bill::{Action as BillAction, Adjustment as BillAdjustment};
pub use self::config::{
    DEFAULT_API_KEY, DEFAULT_APP_SECRET, DEFAULT_APPID, DEFAULT_MCH_ID, NotifySigner, SimConfig,
    SimMerchant, SimV3, parse_args,
};
pub use self::faults::Faults;
pub use self::login::{CODE_TTL, LOGINS_PER_MINUTE, openid_for};
pub use self::notify::RETRY_GAPS_SECS;
pub use self::sim::{ControlError, OrderView, PayResult, RefundView, Sim};
pub use self::store::{Attempt, NotificationLog};
pub use self::tls::SimTls;

/// Largest request body the simulator reads (WeChat's are a few KB).
const MAX_BODY: usize = 64 * 1024;

fn merchant_route(endpoint: Endpoint, sandbox: bool) -> axum::routing::MethodRouter<Arc<Sim>> {
    any(
        move |sim: State<Arc<Sim>>,
              client_cert: Option<axum::Extension<tls::ClientCert>>,
              method: Method,
              body: Bytes| {
            let presented = client_cert.is_some_and(|axum::Extension(c)| c.0);
            merchant_api::handle(sim, endpoint, sandbox, presented, method, body)
        },
    )
}

/// The simulator's routes.
fn router(sim: Arc<Sim>) -> Router {
    let mut router = Router::new();
    for endpoint in [
        Endpoint::UnifiedOrder,
        Endpoint::OrderQuery,
        Endpoint::CloseOrder,
        Endpoint::Refund,
        Endpoint::RefundQuery,
    ] {
        router = router
            .route(endpoint.path(), merchant_route(endpoint, false))
            .route(
                &format!("/sandboxnew{}", endpoint.path()),
                merchant_route(endpoint, true),
            );
    }
    router
        .route(
            Endpoint::SandboxSignKey.path(),
            merchant_route(Endpoint::SandboxSignKey, false),
        )
        .route(
            Endpoint::DownloadBill.path(),
            merchant_route(Endpoint::DownloadBill, false),
        )
        .route(
            "/sim/v1/bill-adjustments",
            post(bill::add_adjustment)
                .get(bill::list_adjustments)
                .delete(bill::clear_adjustments),
        )
        .route("/sns/jscode2session", get(login::jscode2session))
        .route("/sim/v1/orders/{out_trade_no}", get(control::get_order))
        .route("/sim/v1/orders/{out_trade_no}/pay", post(control::pay))
        .route(
            "/sim/v1/orders/{out_trade_no}/portal-refunds",
            post(control::portal_refund),
        )
        .route("/sim/v1/refunds/{out_refund_no}", get(control::get_refund))
        .route(
            "/sim/v1/refunds/{out_refund_no}/settle",
            post(control::settle_refund),
        )
        .route(
            "/sim/v1/faults",
            get(control::get_faults).put(control::put_faults),
        )
        .route("/v3/{*path}", any(v3_api::handle))
        .route(
            "/sim/v1/merchants/{mch_id}/v3-notify-signer",
            get(control::get_notify_signer).put(control::put_notify_signer),
        )
        .route("/sim/v1/login-codes", post(control::login_code))
        .route("/sim/v1/health", get(control::health))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(sim)
}

/// A running simulator.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// `http://<addr>`, or `https://` when serving TLS: the base URL for the merchant API,
    /// login and control API.
    pub fn base_url(&self) -> String {
        let scheme = if self.sim.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The simulator itself (for tests that inspect or drive it directly).
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `config.listen` and serves in the background until the returned handle is dropped.
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    let served = Arc::clone(&sim);
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, served, std::future::pending()).await {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    Ok(RunningSim { addr, sim, task })
}

/// Serves on `listener` until `shutdown` completes (the binary's entry point).
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match sim.config.tls.clone() {
        Some(tls) => tls::serve(listener, router(sim), tls, shutdown).await,
        None => {
            axum::serve(listener, router(sim))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

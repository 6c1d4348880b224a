//! The operations endpoints every service serves over HTTP: `/healthz` (alive), `/readyz`
//! (its own dependencies reachable), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::telemetry::{error_chain, metrics_handle};

/// A dependency that does not answer. `/readyz` shows its name and the fixed `reason`; the
/// underlying error (which may carry addresses or credentials) is only logged.
#[derive(Debug, thiserror::Error)]
#[error("{dependency}: {reason}")]
pub struct NotReady {
    /// Which dependency, e.g. `PostgreSQL`.
    pub dependency: &'static str,
    /// What is wrong with it, in words safe to show (e.g. `unreachable`).
    pub reason: &'static str,
    /// The error that showed it, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NotReady {
    /// `dependency` is `reason`, shown by `source`.
    pub fn new(
        dependency: &'static str,
        reason: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        NotReady {
            dependency,
            reason,
            source: Some(source.into()),
        }
    }
}

/// A readiness check: `Ok` when every dependency answers, else the first that does not.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), NotReady>> + Send + Sync>;

/// The three routes, with `ready` deciding `/readyz`.
pub fn router(ready: ReadinessCheck) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(move || {
                let ready = Arc::clone(&ready);
                async move {
                    match ready().await {
                        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" })))
                            .into_response(),
                        Err(not_ready) => {
                            tracing::warn!(error = %error_chain(&not_ready), "not ready");
                            let body = json!({
                                "status": "not_ready",
                                "dependency": not_ready.dependency,
                                "reason": not_ready.reason,
                            });
                            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
                        }
                    }
                }
            }),
        )
        .route("/metrics", get(metrics))
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
        .into_response()
}

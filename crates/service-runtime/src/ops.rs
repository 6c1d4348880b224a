//! The operations endpoints every service serves over HTTP: `/healthz` (alive), `/readyz`
//! (its own dependencies reachable), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::telemetry::metrics_handle;

/// A readiness check: `Ok` when every dependency answers, else the name of what does not.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

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
                        Err(reason) => {
                            tracing::warn!(%reason, "not ready");
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(json!({ "status": "not_ready", "reason": reason })),
                            )
                                .into_response()
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

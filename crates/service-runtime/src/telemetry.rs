//! JSON logs, the trace id that crosses HTTP and gRPC, and Prometheus metrics.
//!
//! A request's trace id comes from its `x-trace-id` header (HTTP) or metadata (gRPC), else
//! from the `x-request-id` header the API gateway generates for every request (so a gateway
//! access log line and the services' log lines share one id), or is made fresh; it is kept
//! in a task-local while the request is handled, stamped on every log
//! line through the request's span, echoed in the HTTP response, and added to outgoing gRPC
//! calls by [`inject_trace_id`].

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rand::Rng;
use tracing::Instrument;

/// The header (HTTP) and metadata key (gRPC) carrying the trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// The request id an HTTP proxy (the API gateway) adds; the trace id when there is no
/// [`TRACE_ID_HEADER`].
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static TRACE_ID: String;
}

/// The one log format: JSON lines with the current span (`span`) and every span it is in
/// (`spans`, outermost first: the request's span with its `trace_id`, then the use case's
/// with `order_id`, `out_trade_no`), filtered by `RUST_LOG` (default `info`).
fn json_logs() -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    tracing_subscriber::EnvFilter,
> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter(filter)
}

/// Sets up JSON logs for `service`. Safe to call more than once (later calls do nothing).
pub fn init_logs(service: &'static str) {
    if json_logs().try_init().is_ok() {
        tracing::info!(service, "logging initialised");
    }
}

/// Logs for tests: the same JSON lines, written through the test harness's capture, so they
/// show only for a failing test.
pub fn init_test_logs() {
    let _ = json_logs().with_test_writer().try_init();
}

/// An error and its sources, `outer: inner: innermost`: the one way an error is written to a
/// log line, so a cause is never dropped.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and `{0}` wrappers repeat their source: say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A fresh trace id: 32 lowercase hex digits.
pub fn new_trace_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Accepts a caller's trace id only if it is 8 to 64 characters of `[0-9A-Za-z-]`.
fn valid_trace_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The trace id of the request being handled, if any.
pub fn current_trace_id() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `trace_id` as the current trace id.
pub async fn with_trace_id<F: Future>(trace_id: String, fut: F) -> F::Output {
    TRACE_ID.scope(trace_id, fut).await
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test binary starting several
        // services); this handle then renders nothing, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// axum middleware: trace id, span, access log line, request metrics by route and outcome.
/// Use with `axum::middleware::from_fn_with_state(service_name, http_layer)`.
pub async fn http_layer(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let _ = metrics_handle();
    let trace_id = http_trace_id(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!("http", service, trace_id = %trace_id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = with_trace_id(trace_id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let outcome = outcome_of(status);
    let quiet = quiet(&method, status);
    let labels = [
        ("service", service.to_owned()),
        ("route", route),
        ("method", method),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
    // A successful read (the Mini Program's status poll, thousands a second on a sale day) is
    // logged at DEBUG: its JSON line cost a fifth of the poll's CPU. Every write, every
    // refusal and every failure stays at INFO, with its trace id.
    if quiet {
        span.in_scope(|| {
            tracing::debug!(status, elapsed_ms = elapsed * 1000.0, "request finished")
        });
    } else {
        span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed * 1000.0, "request finished"));
    }
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    response
}

/// The trace id an HTTP request carries (`x-trace-id`, else the gateway's `x-request-id`),
/// or a fresh one; an invalid value is ignored.
fn http_trace_id(headers: &axum::http::HeaderMap) -> String {
    [TRACE_ID_HEADER, REQUEST_ID_HEADER]
        .into_iter()
        .find_map(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| valid_trace_id(v))
        })
        .map_or_else(new_trace_id, str::to_owned)
}

/// Whether a finished request is logged at DEBUG only: a successful GET or HEAD.
fn quiet(method: &str, status: u16) -> bool {
    matches!(method, "GET" | "HEAD") && (200..400).contains(&status)
}

fn outcome_of(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        400..=499 => "client_error",
        _ => "server_error",
    }
}

/// The trace id a gRPC request carries, or a fresh one.
fn grpc_trace_id<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get(TRACE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_trace_id(v))
        .map_or_else(new_trace_id, str::to_owned)
}

/// Runs a gRPC handler body with the request's trace id, a span, a log line and metrics
/// (`grpc_requests_total` and `grpc_request_duration_seconds` by method and code).
pub async fn grpc_call<T, R, F>(
    service: &'static str,
    method: &'static str,
    request: &tonic::Request<T>,
    body: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    F: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let _ = metrics_handle();
    let trace_id = grpc_trace_id(request);
    let span = tracing::info_span!("grpc", service, method, trace_id = %trace_id);
    let started = Instant::now();
    let result = with_trace_id(trace_id, body).instrument(span.clone()).await;
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let labels = [
        ("service", service.to_owned()),
        ("method", method.to_owned()),
        ("code", format!("{code:?}")),
    ];
    metrics::counter!("grpc_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_request_duration_seconds", &labels).record(elapsed);
    span.in_scope(
        || tracing::info!(code = ?code, elapsed_ms = elapsed * 1000.0, "grpc call finished"),
    );
    result
}

/// gRPC client interceptor: adds the current trace id (if any) to the call's metadata.
pub fn inject_trace_id(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    if let Some(id) = current_trace_id()
        && let Ok(value) = id.parse()
    {
        request.metadata_mut().insert(TRACE_ID_HEADER, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_reads_are_logged_quietly() {
        assert!(quiet("GET", 200));
        assert!(quiet("HEAD", 304));
        assert!(!quiet("GET", 404));
        assert!(!quiet("GET", 503));
        assert!(!quiet("POST", 201));
        assert!(!quiet("DELETE", 200));
    }

    #[test]
    fn http_trace_id_prefers_x_trace_id_then_the_gateways_request_id() {
        use axum::http::HeaderMap;
        let gateway_id = "5f0c6f5e-2d4b-4f7a-9a57-0b1d2c3e4f50";
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static(gateway_id));
        assert_eq!(http_trace_id(&headers), gateway_id);
        headers.insert(
            TRACE_ID_HEADER,
            HeaderValue::from_static("0123456789abcdef"),
        );
        assert_eq!(http_trace_id(&headers), "0123456789abcdef");
        // An invalid id is ignored, not trusted: the next source, else a fresh id.
        headers.insert(TRACE_ID_HEADER, HeaderValue::from_static("bad id"));
        assert_eq!(http_trace_id(&headers), gateway_id);
        let mut bad = HeaderMap::new();
        bad.insert(REQUEST_ID_HEADER, HeaderValue::from_static("x"));
        let fresh = http_trace_id(&bad);
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, http_trace_id(&bad));
    }

    #[tokio::test]
    async fn trace_id_is_task_local_and_injected_into_grpc_metadata() {
        assert_eq!(current_trace_id(), None);
        let id = new_trace_id();
        assert_eq!(id.len(), 32);
        let seen = with_trace_id(id.clone(), async {
            let req = inject_trace_id(tonic::Request::new(())).unwrap();
            req.metadata()
                .get(TRACE_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .await;
        assert_eq!(seen, Some(id));
        assert!(!valid_trace_id("short"));
        assert!(!valid_trace_id("has space in it"));
        assert!(valid_trace_id("0123456789abcdef"));
    }

    #[test]
    fn error_chains_name_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}

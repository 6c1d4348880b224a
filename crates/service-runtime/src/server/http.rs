//! The HTTP server every service runs (its public port and its ops port): hyper's HTTP/1
//! connection with a header-read timeout, a body-read timeout and a whole-request timeout
//! (`tower-http`), a connection limit, and a shutdown that closes idle connections at once and
//! drops stalled ones after a grace period. `axum::serve` has none of these knobs, so the
//! accept loop is ours (the same few lines as axum's, plus the limit and the grace).

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{AddExtension, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower_http::timeout::{TimeoutBody, TimeoutError, TimeoutLayer};
use tower_layer::Layer;

use super::ServeError;
use crate::settings::{SettingsError, Source};
use crate::shutdown::Shutdown;
use crate::telemetry::http_layer;

/// How long a client may take, and how many may be connected at once (the same variables for
/// every service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// From the first byte of a request (or the end of the previous one) to the end of its
    /// headers (`HTTP_HEADER_TIMEOUT`, default 5s); a client slower than that, or a
    /// keep-alive connection idle that long, is disconnected.
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body (`HTTP_BODY_TIMEOUT`, default 5s);
    /// answered 408.
    pub body_timeout: Duration,
    /// Longest time from the end of the headers to the answer (`HTTP_REQUEST_TIMEOUT`,
    /// default 15s, above order-svc's default `PAY_GATEWAY_TIMEOUT`); answered 408.
    pub request_timeout: Duration,
    /// Connections served at once (`HTTP_MAX_CONNECTIONS`, default 1024); one more is
    /// closed as soon as it is accepted.
    pub max_connections: usize,
    /// On shutdown, how long in-flight requests may take before their connections are dropped
    /// (`HTTP_SHUTDOWN_GRACE`, default 5s). Idle connections are closed at once.
    pub shutdown_grace: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl HttpSettings {
    /// Reads the `HTTP_*` variables; a zero duration or limit is refused by name.
    pub fn from_source(env: &impl Source) -> Result<Self, SettingsError> {
        let d = HttpSettings::default();
        let positive = |name: &str, default: Duration| {
            let value = env.duration_or(name, default)?;
            if value.is_zero() {
                return Err(SettingsError::Invalid {
                    name: name.to_owned(),
                    reason: "must be above zero".into(),
                });
            }
            Ok(value)
        };
        let max_connections: usize = env.or("HTTP_MAX_CONNECTIONS", d.max_connections)?;
        if max_connections == 0 {
            return Err(SettingsError::Invalid {
                name: "HTTP_MAX_CONNECTIONS".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(HttpSettings {
            header_timeout: positive("HTTP_HEADER_TIMEOUT", d.header_timeout)?,
            body_timeout: positive("HTTP_BODY_TIMEOUT", d.body_timeout)?,
            request_timeout: positive("HTTP_REQUEST_TIMEOUT", d.request_timeout)?,
            max_connections,
            shutdown_grace: env.duration_or("HTTP_SHUTDOWN_GRACE", d.shutdown_grace)?,
        })
    }
}

/// Serves `router` (with the request layer and the timeouts) until `shutdown`; then stops
/// accepting, closes idle connections, lets in-flight requests finish within the grace period
/// and drops what is left.
pub async fn serve_http(
    service: &'static str,
    listener: TcpListener,
    router: axum::Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router
        .layer(axum::middleware::from_fn_with_state(
            settings.body_timeout,
            body_timeout,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(service, http_layer));
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let stop = Shutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total", "service" => service).increment(1);
            tracing::debug!("connection limit reached: connection closed");
            continue;
        };
        // Handlers may read the peer's address (`ConnectInfo<SocketAddr>`), as with axum's own
        // server's connect info: one extension around the router, which is not rebuilt.
        let app = Layer::layer(&axum::Extension(ConnectInfo(peer)), app.clone());
        let connection =
            http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        connections.spawn(serve_connection(
            connection,
            stop.wait(),
            settings.shutdown_grace,
            slot,
        ));
    }
    drop(listener);
    stop.trigger();
    while connections.join_next().await.is_some() {}
    Ok(())
}

type Connection = hyper::server::conn::http1::Connection<
    TokioIo<TcpStream>,
    TowerToHyperService<AddExtension<axum::Router, ConnectInfo<SocketAddr>>>,
>;

/// One connection until it ends, or until `stop` plus `grace`. `_slot` frees its place in the
/// connection limit when the connection is gone.
async fn serve_connection(
    connection: Connection,
    stop: impl Future<Output = ()>,
    grace: Duration,
    _slot: OwnedSemaphorePermit,
) {
    let mut connection = pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                // Timeouts and clients that went away: theirs, not ours.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = stop => {
            // Closes it now if idle, else after the response in flight.
            connection.as_mut().graceful_shutdown();
            if tokio::time::timeout(grace, connection).await.is_err() {
                tracing::info!(grace_ms = grace.as_millis() as u64, "connection still busy after the shutdown grace: dropped");
            }
        }
    }
}

/// An accept error never ends the server (a per-connection network error such as EPROTO or
/// ENETUNREACH is reported by `accept` too, and the man page says to retry): the client's
/// errors are passed over; anything else (out of file descriptors, ENOBUFS, ENOMEM) is logged
/// and accepting pauses a second, as axum's own server does.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// axum middleware: the body must keep coming (`tower-http`'s `TimeoutBody`, the wait for each
/// piece at most `limit`); when it stalls, whatever the handler made of the broken body is
/// replaced by 408.
async fn body_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&timed_out);
    let (parts, body) = request.into_parts();
    let body = TimeoutBody::new(limit, body).map_err(move |e| {
        if e.is::<TimeoutError>() {
            seen.store(true, Ordering::Relaxed);
        }
        e
    });
    let response = next.run(Request::from_parts(parts, Body::new(body))).await;
    if timed_out.load(Ordering::Relaxed) {
        return request_timeout("the request body stopped arriving");
    }
    response
}

fn request_timeout(message: &'static str) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, "close")],
        axum::Json(json!({ "code": "request_timeout", "message": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::settings::MapEnv;

    use super::*;

    #[test]
    fn settings_have_defaults_and_refuse_zero() {
        assert_eq!(
            HttpSettings::from_source(&MapEnv::default()),
            Ok(HttpSettings::default())
        );
        let short = MapEnv::from_pairs([("HTTP_HEADER_TIMEOUT", "200ms")]);
        assert_eq!(
            HttpSettings::from_source(&short).map(|s| s.header_timeout),
            Ok(Duration::from_millis(200))
        );
        for name in [
            "HTTP_HEADER_TIMEOUT",
            "HTTP_BODY_TIMEOUT",
            "HTTP_REQUEST_TIMEOUT",
            "HTTP_MAX_CONNECTIONS",
        ] {
            let zero = if name == "HTTP_MAX_CONNECTIONS" {
                "0"
            } else {
                "0s"
            };
            let err = HttpSettings::from_source(&MapEnv::from_pairs([(name, zero)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}

//! Errors of order-svc and their single mapping to each protocol: one `IntoResponse` for
//! HTTP (`{"code", "message"}` with a stable code) and one `From` for gRPC statuses. Each
//! mapping is where a failure is logged, once, with its whole cause chain; callers see only
//! the message, never an internal detail.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use service_runtime::telemetry::error_chain;

use crate::store::StoreError;

/// What can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is well-formed but asks for something invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is not JSON at all (a syntax error or a truncated document).
    #[error("{0}")]
    InvalidJson(String),
    /// The body is larger than the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No route matches.
    #[error("no such endpoint")]
    NoSuchEndpoint,
    /// The client sent an amount; amounts come from the price list only.
    #[error("amounts are computed by the server; remove `{0}` from the request")]
    AmountNotAccepted(String),
    /// A sku is not on the price list.
    #[error("unknown sku {0:?}")]
    UnknownSku(String),
    /// No valid session token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The login code was refused by WeChat.
    #[error("{0}")]
    LoginFailed(String),
    /// Too many requests.
    #[error("{0}")]
    RateLimited(String),
    /// Too many logins from this client address or with this code prefix.
    #[error("too many logins; try again in {retry_after_secs} s")]
    TooManyLogins {
        /// Seconds until the limit's window ends.
        retry_after_secs: u64,
    },
    /// No such order for this caller (also for another user's order).
    #[error("order not found")]
    OrderNotFound,
    /// The same Idempotency-Key was used with a different body.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The order cannot be paid or cancelled in its state.
    #[error("{0}")]
    OrderNotPayable(String),
    /// A refund larger than what is left of the payment.
    #[error("{0}")]
    RefundExceedsPaid(String),
    /// The order cannot be refunded (or resolved that way) in its state.
    #[error("{0}")]
    OrderNotRefundable(String),
    /// A review resolution that does not apply (the order is not in REVIEW, or WeChat's
    /// answer rules it out).
    #[error("{0}")]
    ResolutionNotAllowed(String),
    /// No dead letter with that id.
    #[error("dead letter not found")]
    DeadLetterNotFound,
    /// The day was never reconciled.
    #[error("no reconciliation of that day")]
    ReconciliationNotFound,
    /// Another replica is reconciling the day right now.
    #[error("the day is being reconciled right now; try again shortly")]
    ReconciliationRunning,
    /// RabbitMQ did not confirm a publish.
    #[error("the message broker is unavailable; try again shortly")]
    BrokerUnavailable(#[source] Box<messaging::PublishError>),
    /// pay-gateway-svc (or WeChat behind it) is unavailable.
    #[error("the payment service is unavailable; try again shortly")]
    PaymentUnavailable(#[source] Box<tonic::Status>),
    /// WeChat refused in a way the client cannot fix.
    #[error("the payment provider refused the request")]
    PaymentRefused(#[source] Box<tonic::Status>),
    /// The database failed.
    #[error("internal error")]
    Store(#[from] StoreError),
    /// Something else on our side failed.
    #[error("internal error")]
    Internal {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Store(StoreError::Query(e))
    }
}

impl AppError {
    /// An internal failure while doing `context`.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        AppError::Internal {
            context,
            source: source.into(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidRequest(_) => "invalid_request",
            AppError::InvalidJson(_) => "invalid_json",
            AppError::BodyTooLarge(_) => "body_too_large",
            AppError::NoSuchEndpoint => "not_found",
            AppError::AmountNotAccepted(_) => "amount_not_accepted",
            AppError::UnknownSku(_) => "unknown_sku",
            AppError::Unauthenticated(_) => "unauthenticated",
            AppError::LoginFailed(_) => "login_failed",
            AppError::RateLimited(_) | AppError::TooManyLogins { .. } => "rate_limited",
            AppError::OrderNotFound => "order_not_found",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::OrderNotPayable(_) => "order_not_payable",
            AppError::RefundExceedsPaid(_) => "refund_exceeds_paid",
            AppError::OrderNotRefundable(_) => "order_not_refundable",
            AppError::ResolutionNotAllowed(_) => "resolution_not_allowed",
            AppError::DeadLetterNotFound => "dead_letter_not_found",
            AppError::ReconciliationNotFound => "reconciliation_not_found",
            AppError::ReconciliationRunning => "reconciliation_running",
            AppError::BrokerUnavailable(_) => "broker_unavailable",
            AppError::PaymentUnavailable(_) => "payment_unavailable",
            AppError::PaymentRefused(_) => "payment_refused",
            AppError::Store(_) | AppError::Internal { .. } => "internal",
        }
    }

    /// The HTTP status of this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            AppError::InvalidRequest(_)
            | AppError::InvalidJson(_)
            | AppError::AmountNotAccepted(_)
            | AppError::UnknownSku(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated(_) | AppError::LoginFailed(_) => StatusCode::UNAUTHORIZED,
            AppError::RateLimited(_) | AppError::TooManyLogins { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::OrderNotFound
            | AppError::NoSuchEndpoint
            | AppError::DeadLetterNotFound
            | AppError::ReconciliationNotFound => StatusCode::NOT_FOUND,
            AppError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::IdempotencyKeyReused | AppError::ReconciliationRunning => {
                StatusCode::CONFLICT
            }
            AppError::OrderNotPayable(_)
            | AppError::RefundExceedsPaid(_)
            | AppError::OrderNotRefundable(_)
            | AppError::ResolutionNotAllowed(_) => StatusCode::CONFLICT,
            AppError::PaymentUnavailable(_) | AppError::BrokerUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::PaymentRefused(_) => StatusCode::BAD_GATEWAY,
            AppError::Store(_) | AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            AppError::InvalidRequest(_)
            | AppError::InvalidJson(_)
            | AppError::AmountNotAccepted(_)
            | AppError::UnknownSku(_)
            | AppError::BodyTooLarge(_) => Code::InvalidArgument,
            AppError::Unauthenticated(_) | AppError::LoginFailed(_) => Code::Unauthenticated,
            AppError::RateLimited(_) | AppError::TooManyLogins { .. } => Code::ResourceExhausted,
            AppError::OrderNotFound
            | AppError::NoSuchEndpoint
            | AppError::DeadLetterNotFound
            | AppError::ReconciliationNotFound => Code::NotFound,
            AppError::IdempotencyKeyReused => Code::AlreadyExists,
            AppError::ReconciliationRunning => Code::Aborted,
            AppError::OrderNotPayable(_)
            | AppError::RefundExceedsPaid(_)
            | AppError::OrderNotRefundable(_)
            | AppError::ResolutionNotAllowed(_) => Code::FailedPrecondition,
            AppError::PaymentUnavailable(_) | AppError::BrokerUnavailable(_) => Code::Unavailable,
            AppError::PaymentRefused(_) | AppError::Store(_) | AppError::Internal { .. } => {
                Code::Internal
            }
        }
    }

    /// Logs a failure that is ours (not the caller's), once, with its causes.
    pub fn log(&self) {
        match self {
            AppError::Store(_) | AppError::Internal { .. } | AppError::PaymentRefused(_) => {
                tracing::error!(code = self.code(), error = %error_chain(self), "request failed");
            }
            AppError::PaymentUnavailable(_) | AppError::BrokerUnavailable(_) => {
                tracing::warn!(code = self.code(), error = %error_chain(self), "request failed");
            }
            _ => {}
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.http_status();
        let body = Json(json!({ "code": self.code(), "message": self.to_string() }));
        let mut response = (status, body).into_response();
        match self {
            AppError::PaymentUnavailable(_) | AppError::BrokerUnavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            AppError::TooManyLogins { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<AppError> for tonic::Status {
    fn from(e: AppError) -> Self {
        e.log();
        tonic::Status::new(e.grpc_code(), format!("{}: {e}", e.code()))
    }
}

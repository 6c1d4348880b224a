//! Errors of order-svc and their single mapping to each protocol: one `IntoResponse` for
//! HTTP (`{"code", "message"}` with a stable code) and one `From` for gRPC statuses.
//! Internal details are logged with their cause, never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is larger than the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No route matches.
    #[error("no such endpoint")]
    NoSuchEndpoint,
    /// The body is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
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
    /// No such order for this caller (also for another user's order).
    #[error("order not found")]
    OrderNotFound,
    /// The same Idempotency-Key was used with a different body.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The order cannot be paid in its state.
    #[error("{0}")]
    OrderNotPayable(String),
    /// pay-gateway-svc (or WeChat behind it) is unavailable.
    #[error("the payment service is unavailable; try again shortly")]
    PaymentUnavailable,
    /// WeChat refused in a way the client cannot fix.
    #[error("the payment provider refused the request")]
    PaymentRefused,
    /// Something on our side failed.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
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
            AppError::RateLimited(_) => "rate_limited",
            AppError::OrderNotFound => "order_not_found",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::OrderNotPayable(_) => "order_not_payable",
            AppError::PaymentUnavailable => "payment_unavailable",
            AppError::PaymentRefused => "payment_refused",
            AppError::Internal(_) => "internal",
        }
    }

    fn http_status(&self) -> StatusCode {
        match self {
            AppError::InvalidRequest(_)
            | AppError::InvalidJson(_)
            | AppError::AmountNotAccepted(_)
            | AppError::UnknownSku(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated(_) | AppError::LoginFailed(_) => StatusCode::UNAUTHORIZED,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::OrderNotFound | AppError::NoSuchEndpoint => StatusCode::NOT_FOUND,
            AppError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::OrderNotPayable(_) => StatusCode::CONFLICT,
            AppError::PaymentUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::PaymentRefused => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal error, logged here with its cause.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(context, error = %cause, "internal error");
        AppError::Internal(context.to_owned())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal("database", e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), %status, "request failed");
        }
        let body = Json(json!({ "code": self.code(), "message": self.to_string() }));
        let mut response = (status, body).into_response();
        if matches!(self, AppError::PaymentUnavailable) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        response
    }
}

impl From<AppError> for tonic::Status {
    fn from(e: AppError) -> Self {
        use tonic::Code;
        let code = match &e {
            AppError::InvalidRequest(_)
            | AppError::InvalidJson(_)
            | AppError::AmountNotAccepted(_)
            | AppError::UnknownSku(_) => Code::InvalidArgument,
            AppError::Unauthenticated(_) | AppError::LoginFailed(_) => Code::Unauthenticated,
            AppError::RateLimited(_) => Code::ResourceExhausted,
            AppError::OrderNotFound | AppError::NoSuchEndpoint => Code::NotFound,
            AppError::BodyTooLarge(_) => Code::InvalidArgument,
            AppError::IdempotencyKeyReused => Code::AlreadyExists,
            AppError::OrderNotPayable(_) => Code::FailedPrecondition,
            AppError::PaymentUnavailable => Code::Unavailable,
            AppError::PaymentRefused | AppError::Internal(_) => Code::Internal,
        };
        tonic::Status::new(code, format!("{}: {e}", e.code()))
    }
}

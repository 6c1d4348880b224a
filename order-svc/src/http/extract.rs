//! How a request becomes typed values, the same for every endpoint: the JSON body (a
//! syntax error is `invalid_json`, a wrong shape `invalid_request`), the bearer token, the
//! order id in the path, the Idempotency-Key header.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use wechat_pay::OpenId;

use super::AppState;
use crate::domain::{IdempotencyKey, OrderId};
use crate::error::AppError;

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// The header that makes a create idempotent.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body as a JSON value: `invalid_json` unless it parses as JSON at all.
pub(crate) struct JsonValue(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = AppError;
    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::BodyTooLarge(MAX_BODY)
                } else {
                    AppError::InvalidRequest(format!("unreadable body: {}", e.body_text()))
                }
            })?;
        super::bodies::json_value(&body).map(JsonValue)
    }
}

/// The body as `T`: `invalid_json` for a body that is not JSON, `invalid_request` for JSON
/// of the wrong shape.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;
    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let JsonValue(value) = JsonValue::from_request(request, state).await?;
        super::bodies::shape(value).map(JsonBody)
    }
}

/// The authenticated caller.
pub(crate) struct Caller(pub(crate) OpenId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(Caller(state.orders.authenticate(bearer(parts)?)?))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(AppError::Unauthenticated(
            "missing Authorization: Bearer <token>",
        ))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(AppError::Unauthenticated(
            "Authorization must be `Bearer <token>`",
        ))
}

/// The operator calling the admin API, known by their token (`ADMIN_TOKENS`). A wrong or
/// missing token is refused the same way, and the token is never logged.
pub(crate) struct Operator(pub(crate) String);

impl FromRequestParts<AppState> for Operator {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(parts)?;
        state
            .admin_tokens
            .operator(token)
            .map(|name| Operator(name.to_owned()))
            .ok_or(AppError::Unauthenticated("not an operator's token"))
    }
}

/// Query parameters of type `T`; ones that do not parse are `invalid_request`.
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let axum::extract::Query(params) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e| AppError::InvalidRequest(e.body_text()))?;
        Ok(QueryParams(params))
    }
}

/// A page's size and where it starts, from a listing's `limit` and `cursor` parameters.
pub(crate) fn page(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(crate::domain::PageSize, Option<crate::domain::Cursor>), AppError> {
    let size = crate::domain::PageSize::new(limit)?;
    let cursor = cursor
        .map(str::parse::<crate::domain::Cursor>)
        .transpose()?;
    Ok((size, cursor))
}

/// The order id in the path; one that is not an id is simply not found.
pub(crate) struct PathOrderId(pub(crate) OrderId);

impl<S: Send + Sync> FromRequestParts<S> for PathOrderId {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::OrderNotFound)?;
        id.parse()
            .map(PathOrderId)
            .map_err(|_| AppError::OrderNotFound)
    }
}

/// The Idempotency-Key header, if sent.
pub(crate) struct Idempotency(pub(crate) Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Idempotency(None));
        };
        let key = value.to_str().map_err(|_| {
            AppError::InvalidRequest("Idempotency-Key must be visible ASCII".into())
        })?;
        IdempotencyKey::parse(key).map(|k| Idempotency(Some(k)))
    }
}

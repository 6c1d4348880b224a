//! The Mini Program's HTTP API (`/api/v1/...`), JSON in and out, errors as
//! `{"code", "message"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::domain::OrderView;
use crate::error::AppError;
use crate::orders::Orders;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// The API routes.
pub fn router(orders: Arc<Orders>) -> Router {
    Router::new()
        .route("/api/v1/sessions", post(login))
        .route("/api/v1/products", get(products))
        .route("/api/v1/orders", post(create_order).get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/payment", post(pay_order))
        .route("/api/v1/orders/{id}/cancel", post(cancel_order))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(|| async { AppError::NoSuchEndpoint })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(orders)
}

/// The raw body, with a JSON error when it is too large or unreadable.
struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;
    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::BodyTooLarge(MAX_BODY)
                } else {
                    AppError::InvalidRequest(format!("unreadable body: {}", e.body_text()))
                }
            })
    }
}

/// The authenticated caller.
struct Caller {
    openid: String,
}

impl FromRequestParts<Arc<Orders>> for Caller {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut Parts,
        orders: &Arc<Orders>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(AppError::Unauthenticated(
                "missing Authorization: Bearer <token>",
            ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthenticated(
                "Authorization must be `Bearer <token>`",
            ))?;
        Ok(Caller {
            openid: orders.authenticate(token.trim())?,
        })
    }
}

#[derive(Deserialize)]
struct LoginBody {
    code: String,
}

async fn login(State(orders): State<Arc<Orders>>, Body(body): Body) -> Result<Response, AppError> {
    let request: LoginBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::InvalidJson(format!("expected {{\"code\": \"...\"}}: {e}")))?;
    let (token, expires_in) = orders.login(&request.code).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "expires_in": expires_in })),
    )
        .into_response())
}

async fn products(State(orders): State<Arc<Orders>>) -> Result<Response, AppError> {
    let products = orders.products().await?;
    Ok(Json(json!({ "products": products })).into_response())
}

async fn create_order(
    State(orders): State<Arc<Orders>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, AppError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            AppError::InvalidRequest("Idempotency-Key must be visible ASCII".into())
        })?),
    };
    let (order, replayed) = orders.create(&caller.openid, &body, key).await?;
    let mut response = (StatusCode::CREATED, Json(OrderView::from(&order))).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn get_order(
    State(orders): State<Arc<Orders>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, AppError> {
    let order = orders.get(&caller.openid, &id).await?;
    Ok(Json(OrderView::from(&order)))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_orders(
    State(orders): State<Arc<Orders>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::InvalidRequest(e.body_text()))?;
    let limit = query
        .limit
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| AppError::InvalidRequest("limit must be between 1 and 100".into()))
        })
        .transpose()?;
    let page = orders
        .list(Some(&caller.openid), limit, query.cursor.as_deref())
        .await?;
    let views: Vec<OrderView> = page.orders.iter().map(OrderView::from).collect();
    Ok(Json(json!({ "orders": views, "next_cursor": page.next_cursor })).into_response())
}

async fn pay_order(
    State(orders): State<Arc<Orders>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let params = orders.pay(&caller.openid, &id).await?;
    Ok(Json(params).into_response())
}

async fn cancel_order(
    State(orders): State<Arc<Orders>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, AppError> {
    let order = orders.cancel(&caller.openid, &id).await?;
    Ok(Json(OrderView::from(&order)))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

//! The Mini Program's HTTP API (`/api/v1/...`): JSON in and out, errors as
//! `{"code", "message"}`. Handlers only turn wire shapes (`shapes`) into domain requests
//! (`extract`; every JSON body's steps in [`bodies`]), call one use case, and shape the
//! answer. The OpenAPI document served at `/api/v1/openapi.json` is generated from these
//! handlers and shapes (`openapi`).

mod admin;
pub mod bodies;
mod extract;
mod limit;
mod openapi;
mod shapes;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use self::extract::{Caller, Idempotency, JsonBody, JsonValue, MAX_BODY, PathOrderId, QueryParams};
use self::limit::ClientAddr;
use self::shapes::{
    CreateOrderBody, ErrorBody, ListQuery, LoginBody, OrderView, OrdersPage, PaymentView,
    ProductsView, SessionView,
};
use crate::checkout::Checkout;
use crate::domain::{LoginCode, OrderRequest};
use crate::error::AppError;
use crate::orders::Orders;
use crate::store::Owner;

pub use self::admin::document as admin_document;
pub use self::limit::LoginLimits;
pub use self::openapi::document;

/// The header that says a create answered an earlier request's order.
pub(super) const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Browsing and creating.
    pub orders: Arc<Orders>,
    /// Paying and cancelling.
    pub checkout: Arc<Checkout>,
    /// Logins per client address and per code prefix.
    pub login_limits: Arc<LoginLimits>,
    /// Operators' refunds.
    pub refunds: Arc<crate::refunds::Refunds>,
    /// The review queue.
    pub reviews: Arc<crate::reviews::Reviews>,
    /// Dead letters, for operators.
    pub dead_letters: Arc<crate::dead_letters::DeadLetters>,
    /// Who may use the admin API.
    pub admin_tokens: Arc<crate::operators::AdminTokens>,
    /// Daily reconciliation, run on request.
    pub reconciler: Arc<crate::reconcile::Reconciler>,
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/sessions", post(login))
        .route("/api/v1/products", get(products))
        .route("/api/v1/orders", post(create_order).get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/payment", post(pay_order))
        .route("/api/v1/orders/{id}/cancel", post(cancel_order))
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(admin::routes())
        .fallback(|| async { AppError::NoSuchEndpoint })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Log in with a `wx.login` code.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", operation_id = "login",
    request_body = LoginBody,
    responses(
        (status = 201, description = "A session token", body = SessionView),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`login_failed`: WeChat refused the code", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many logins from this client address or with codes that begin alike (`LOGIN_RATE_PER_MINUTE` each), or WeChat's own limit; try again after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before logging in again (with our own limit)"))),
        (status = 502, description = "`payment_refused`", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: WeChat is unreachable", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, AppError> {
    let code = LoginCode::try_from(body)?;
    // Before the outbound call: a refused login costs WeChat nothing.
    state.login_limits.check(client, &code)?;
    let session = state.orders.login(&code).await?;
    Ok((StatusCode::CREATED, Json(SessionView::from(session))).into_response())
}

/// The price list.
#[utoipa::path(get, path = "/api/v1/products", tag = "orders", operation_id = "list_products",
    responses((status = 200, description = "Every product on sale", body = ProductsView)))]
async fn products(State(state): State<AppState>) -> Result<Json<ProductsView>, AppError> {
    Ok(Json(ProductsView::from(state.orders.products().await?)))
}

/// Create an order, priced by the server.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", operation_id = "create_order",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 64, pattern = "^[!-~]+$",
        description = "The same key with the same request returns the same order")),
    request_body = CreateOrderBody,
    responses(
        (status = 201, description = "The order (`Idempotent-Replayed: true` when it was created before under this key)", body = OrderView),
        (status = 400, description = "`invalid_json`, `invalid_request`, `amount_not_accepted`, `unknown_sku`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`: the key was used with another request", body = ErrorBody),
    ))]
async fn create_order(
    State(state): State<AppState>,
    Caller(openid): Caller,
    Idempotency(key): Idempotency,
    JsonValue(body): JsonValue,
) -> Result<Response, AppError> {
    let request = OrderRequest::try_from(CreateOrderBody::from_value(body)?)?;
    let created = state.orders.create(&openid, &request, key).await?;
    let mut response = (StatusCode::CREATED, Json(OrderView::from(&created.order))).into_response();
    if created.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// One of the caller's orders (the status the Mini Program polls).
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", operation_id = "get_order",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 404, description = "`order_not_found` (also for another user's order)", body = ErrorBody),
    ))]
async fn get_order(
    State(state): State<AppState>,
    Caller(openid): Caller,
    PathOrderId(id): PathOrderId,
) -> Result<Json<OrderView>, AppError> {
    let order = state.orders.get(&openid, id).await?;
    Ok(Json(OrderView::from(&order)))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", operation_id = "list_orders",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrdersPage),
        (status = 400, description = "`invalid_request`: a bad limit or cursor", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
    ))]
async fn list_orders(
    State(state): State<AppState>,
    Caller(openid): Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<OrdersPage>, AppError> {
    let (size, cursor) = extract::page(query.limit, query.cursor.as_deref())?;
    let page = state
        .orders
        .list(&Owner::User(openid), size, cursor)
        .await?;
    Ok(Json(OrdersPage::from(page)))
}

/// The `wx.requestPayment` object for one of the caller's orders.
#[utoipa::path(post, path = "/api/v1/orders/{id}/payment", tag = "orders", operation_id = "pay_order",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "Pass it to wx.requestPayment as is", body = PaymentView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`order_not_payable`: paid, closed or about to expire", body = ErrorBody),
        (status = 502, description = "`payment_refused`", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: try again (see Retry-After)", body = ErrorBody),
    ))]
async fn pay_order(
    State(state): State<AppState>,
    Caller(openid): Caller,
    PathOrderId(id): PathOrderId,
) -> Result<Json<PaymentView>, AppError> {
    let payment = state.checkout.pay(&openid, id).await?;
    Ok(Json(PaymentView::from(payment)))
}

/// Cancel one of the caller's unpaid orders (closed at WeChat and here).
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The closed order", body = OrderView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`order_not_payable`: it was paid", body = ErrorBody),
        (status = 502, description = "`payment_refused`", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: try again (see Retry-After)", body = ErrorBody),
    ))]
async fn cancel_order(
    State(state): State<AppState>,
    Caller(openid): Caller,
    PathOrderId(id): PathOrderId,
) -> Result<Json<OrderView>, AppError> {
    let order = state.checkout.cancel(&openid, id).await?;
    Ok(Json(OrderView::from(&order)))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    // Without the price list (database away) the document is still served, less precise.
    let skus = match state.orders.products().await {
        Ok(products) => Some(products.into_iter().map(|p| p.sku).collect::<Vec<_>>()),
        Err(e) => {
            e.log();
            None
        }
    };
    Json(document(skus.as_deref())).into_response()
}

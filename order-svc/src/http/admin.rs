//! The operators' API (`/admin/v1/...`): its own credential (an operator's bearer token from
//! `ADMIN_TOKENS`), the same JSON errors as the Mini Program's API, every action written to
//! the audit log (`admin_actions`) with who, what, why and what came of it. Documented at
//! `/admin/v1/openapi.json`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};

use super::extract::{Idempotency, JsonBody, Operator, PathOrderId, QueryParams};
use super::shapes::{ErrorBody, OrderView, OrdersPage};
use super::{AppState, IDEMPOTENT_REPLAYED};
use crate::domain::{Order, OrderStatus, Refund, RefundRequest, RefundStatus};
use crate::error::AppError;
use crate::orders::OrderRef;
use crate::store::OrderFilter;
use crate::store::audit::LoggedAction;
use crate::store::dead_letters::DeadLetter;
use crate::store::history::Step;

/// The admin routes (merged into the service's router).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/orders", get(search_orders))
        .route("/admin/v1/orders/{id}", get(get_order))
        .route("/admin/v1/orders/{id}/refunds", post(create_refund))
        .route("/admin/v1/reviews", get(list_reviews))
        .route("/admin/v1/orders/{id}/resolve", post(resolve_order))
        .route("/admin/v1/dead-letters", get(list_dead_letters))
        .route(
            "/admin/v1/dead-letters/{id}/replay",
            post(replay_dead_letter),
        )
        .route(
            "/admin/v1/reconciliations",
            post(run_reconciliation).get(get_reconciliation),
        )
        .route("/admin/v1/openapi.json", get(openapi_json))
}

/// A refund to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundBody {
    /// How much, in fen: above zero, at most what is left of the payment.
    #[schema(minimum = 1)]
    amount_fen: i64,
    /// Why (shown to the payer): 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    reason: String,
}

impl TryFrom<RefundBody> for RefundRequest {
    type Error = AppError;
    fn try_from(body: RefundBody) -> Result<Self, AppError> {
        RefundRequest::new(body.amount_fen, &body.reason)
    }
}

/// A refund.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefundView {
    /// Our id.
    #[schema(value_type = uuid::Uuid)]
    id: String,
    /// Our number for it at WeChat.
    out_refund_no: String,
    /// How much, in fen.
    #[schema(minimum = 1)]
    amount_fen: u64,
    /// `REQUESTED` (not yet accepted by WeChat; sent again until it is), `PROCESSING`,
    /// `SUCCESS`, `CHANGE` (WeChat could not pay it back: act at the merchant platform),
    /// `REFUNDCLOSE`, or `FAILED` (WeChat refused it; see `failure`).
    status: RefundStatus,
    /// Why it was made.
    reason: String,
    /// The operator who asked.
    requested_by: String,
    /// WeChat's number, once accepted.
    refund_id: Option<String>,
    /// Why WeChat refused it.
    failure: Option<String>,
    /// When it was asked (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// When it reached its final state (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    settled_at: Option<OffsetDateTime>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            id: r.id.to_string(),
            out_refund_no: r.out_refund_no.to_string(),
            amount_fen: r.amount.get(),
            status: r.status,
            reason: r.reason.clone(),
            requested_by: r.requested_by.clone(),
            refund_id: r.refund_id.clone(),
            failure: r.failure.clone(),
            created_at: r.created_at,
            settled_at: r.settled_at,
        }
    }
}

/// One step of an order's history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineEntry {
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    /// `created`, `prepay`, `prepay_reused`, `notification` and `query` (each with its
    /// outcome), `anomaly`, `paid`, `closed`, `refund_requested`, `refund_settled`,
    /// `admin_action`.
    kind: String,
    /// What happened, in words.
    detail: String,
}

/// An order as operators see it: the buyer, the refunds, the history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminOrderView {
    /// The order as the Mini Program sees it.
    #[serde(flatten)]
    order: OrderView,
    /// The buyer.
    openid: String,
    /// Reserved for refunds WeChat has not finished, in fen.
    refunding_fen: u64,
    /// Its refunds, oldest first.
    refunds: Vec<RefundView>,
    /// Everything that happened to it, in time order.
    timeline: Vec<TimelineEntry>,
}

fn timeline(
    order: &Order,
    history: &[Step],
    refunds: &[Refund],
    actions: &[LoggedAction],
) -> Vec<TimelineEntry> {
    let mut steps = vec![TimelineEntry {
        at: order.created_at,
        kind: "created".into(),
        detail: format!("order of {} fen created", order.amount),
    }];
    if let (Some(at), Some(txn)) = (order.paid_at, &order.transaction_id) {
        steps.push(TimelineEntry {
            at,
            kind: "paid".into(),
            detail: format!("paid at WeChat, transaction {txn}"),
        });
    }
    for step in history {
        steps.push(TimelineEntry {
            at: step.at,
            kind: step.kind.clone(),
            detail: step.detail.clone(),
        });
    }
    for r in refunds {
        steps.push(TimelineEntry {
            at: r.created_at,
            kind: "refund_requested".into(),
            detail: format!(
                "refund {} of {} fen requested by {}: {}",
                r.out_refund_no, r.amount, r.requested_by, r.reason
            ),
        });
        if let Some(at) = r.settled_at {
            let why = r
                .failure
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            steps.push(TimelineEntry {
                at,
                kind: "refund_settled".into(),
                detail: format!("refund {} {}{why}", r.out_refund_no, r.status),
            });
        }
    }
    for a in actions {
        steps.push(TimelineEntry {
            at: a.at,
            kind: "admin_action".into(),
            detail: format!(
                "{} by {}{}: {} ({})",
                a.action,
                a.operator,
                a.target
                    .as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default(),
                a.outcome,
                a.reason
            ),
        });
    }
    steps.sort_by_key(|s| s.at);
    steps
}

/// The operators' search: every parameter given must match.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// In this status (`PENDING`, `PAID`, `CLOSED`, `REFUNDING`, `PARTIALLY_REFUNDED`,
    /// `REFUNDED`, `REVIEW`).
    status: Option<String>,
    /// With this merchant order number.
    out_trade_no: Option<String>,
    /// Paid by this WeChat transaction.
    transaction_id: Option<String>,
    /// This buyer's.
    openid: Option<String>,
    /// Created at or after (RFC 3339).
    from: Option<String>,
    /// Created before (RFC 3339).
    to: Option<String>,
    /// Orders per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn invalid<E>(name: &'static str) -> impl FnOnce(E) -> AppError {
    move |_| AppError::InvalidRequest(format!("invalid {name}"))
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, AppError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| AppError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

impl SearchQuery {
    fn filter(&self) -> Result<OrderFilter, AppError> {
        Ok(OrderFilter {
            openid: self
                .openid
                .clone()
                .map(wechat_pay::OpenId::parse)
                .transpose()
                .map_err(invalid("openid"))?,
            status: self
                .status
                .as_deref()
                .map(str::parse::<OrderStatus>)
                .transpose()
                .map_err(invalid("status"))?,
            out_trade_no: self
                .out_trade_no
                .clone()
                .map(wechat_pay::OutTradeNo::parse)
                .transpose()
                .map_err(invalid("out_trade_no"))?,
            transaction_id: self
                .transaction_id
                .clone()
                .map(wechat_pay::TransactionId::parse)
                .transpose()
                .map_err(invalid("transaction_id"))?,
            from: time_param("from", self.from.as_deref())?,
            to: time_param("to", self.to.as_deref())?,
        })
    }
}

/// Orders of any buyer, newest first, by status, number, transaction, buyer or time.
#[utoipa::path(get, path = "/admin/v1/orders", tag = "admin", operation_id = "admin_search_orders",
    security(("operator" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrdersPage),
        (status = 400, description = "`invalid_request`: a parameter that does not parse", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
    ))]
async fn search_orders(
    State(state): State<AppState>,
    Operator(_operator): Operator,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<OrdersPage>, AppError> {
    let filter = query.filter()?;
    let (size, cursor) = super::extract::page(query.limit, query.cursor.as_deref())?;
    let page = state.orders.search(&filter, size, cursor).await?;
    Ok(Json(OrdersPage::from(page)))
}

/// An order with its refunds and history.
#[utoipa::path(get, path = "/admin/v1/orders/{id}", tag = "admin", operation_id = "admin_get_order",
    security(("operator" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = AdminOrderView),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
    ))]
async fn get_order(
    State(state): State<AppState>,
    Operator(_operator): Operator,
    PathOrderId(id): PathOrderId,
) -> Result<Json<AdminOrderView>, AppError> {
    let order = state.orders.find(&OrderRef::Id(id)).await?;
    let refunds = state.refunds.of_order(id).await?;
    let (history, actions) = state.orders.history(id).await?;
    Ok(Json(AdminOrderView {
        order: OrderView::from(&order),
        openid: order.openid.to_string(),
        refunding_fen: order.refunding.get(),
        timeline: timeline(&order, &history, &refunds, &actions),
        refunds: refunds.iter().map(RefundView::from).collect(),
    }))
}

/// Refund all or part of a paid order. The amount is reserved at once, so concurrent refunds
/// never add up to more than was paid; WeChat's outcome arrives later (refund notification or
/// refund query) and shows in the refund's `status` and the order's `refunded_fen`.
#[utoipa::path(post, path = "/admin/v1/orders/{id}/refunds", tag = "admin", operation_id = "create_refund",
    security(("operator" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The order's id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 64, pattern = "^[!-~]+$",
            description = "The same key with the same request returns the same refund"),
    ),
    request_body = RefundBody,
    responses(
        (status = 201, description = "The refund (`Idempotent-Replayed: true` when it was made before under this key)", body = RefundView),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`refund_exceeds_paid`: more than is left to refund; `order_not_refundable`: the order is not paid; `idempotency_key_reused`", body = ErrorBody),
    ))]
async fn create_refund(
    State(state): State<AppState>,
    Operator(operator): Operator,
    PathOrderId(id): PathOrderId,
    Idempotency(key): Idempotency,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<Response, AppError> {
    let request = RefundRequest::try_from(body)?;
    let (refund, replayed) = state.refunds.request(&operator, id, &request, key).await?;
    let mut response = (StatusCode::CREATED, Json(RefundView::from(&refund))).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// An event order-svc's queue gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLetterView {
    /// Its id here.
    id: i64,
    /// `payment.succeeded`, `payment.failed`, `refund.settled`.
    routing_key: String,
    /// The event id.
    message_id: Option<String>,
    /// The order it is about, as its body says.
    out_trade_no: Option<String>,
    /// `rejected` (order-svc refused it; its log line and metric give why) or
    /// `delivery_limit` (it kept failing).
    reason: String,
    /// The trace id it travelled with (its log lines carry it).
    trace_id: Option<String>,
    /// When it was taken off the dead-letter queue (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    dead_at: OffsetDateTime,
    /// How often it was replayed.
    replays: i32,
    /// When it was last replayed (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_replayed_at: Option<OffsetDateTime>,
    /// By whom.
    last_replayed_by: Option<String>,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(d: &DeadLetter) -> Self {
        DeadLetterView {
            id: d.id,
            routing_key: d.routing_key.clone(),
            message_id: d.message_id.clone(),
            out_trade_no: crate::dead_letters::out_trade_no_of(&d.routing_key, &d.body),
            reason: d.reason.clone(),
            trace_id: d.trace_id.clone(),
            dead_at: d.dead_at,
            replays: d.replays,
            last_replayed_at: d.last_replayed_at,
            last_replayed_by: d.last_replayed_by.clone(),
        }
    }
}

/// The dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLettersView {
    /// Newest first, at most 200.
    dead_letters: Vec<DeadLetterView>,
}

/// Why an operator does something.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    /// 1 to 80 characters, for the audit log.
    #[schema(min_length = 1, max_length = 80)]
    reason: String,
}

impl ReasonBody {
    /// The reason, checked.
    pub(super) fn checked(self) -> Result<String, AppError> {
        crate::domain::checked_reason(&self.reason)
    }
}

/// The events order-svc's queue gave up on, newest first.
#[utoipa::path(get, path = "/admin/v1/dead-letters", tag = "admin", operation_id = "list_dead_letters",
    security(("operator" = [])),
    responses(
        (status = 200, description = "The dead letters", body = DeadLettersView),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
    ))]
async fn list_dead_letters(
    State(state): State<AppState>,
    Operator(_operator): Operator,
) -> Result<Json<DeadLettersView>, AppError> {
    let letters = state.dead_letters.list().await?;
    Ok(Json(DeadLettersView {
        dead_letters: letters.iter().map(DeadLetterView::from).collect(),
    }))
}

/// Sends a dead letter back through the normal consumer path (a second replay, or one of
/// something applied meanwhile, changes nothing: the consumer is idempotent).
#[utoipa::path(post, path = "/admin/v1/dead-letters/{id}/replay", tag = "admin", operation_id = "replay_dead_letter",
    security(("operator" = [])),
    params(("id" = i64, Path, description = "The dead letter's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Published again (confirmed by the broker)", body = DeadLetterView),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 404, description = "`dead_letter_not_found`", body = ErrorBody),
        (status = 503, description = "`broker_unavailable`: RabbitMQ did not confirm; try again", body = ErrorBody),
    ))]
async fn replay_dead_letter(
    State(state): State<AppState>,
    Operator(operator): Operator,
    axum::extract::Path(id): axum::extract::Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<DeadLetterView>, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::DeadLetterNotFound)?;
    let reason = body.checked()?;
    let letter = state.dead_letters.replay(&operator, id, &reason).await?;
    Ok(Json(DeadLetterView::from(&letter)))
}

/// An order in REVIEW with the anomaly that put it there.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewView {
    /// The order.
    #[serde(flatten)]
    order: OrderView,
    /// The buyer.
    openid: String,
    /// Why it is in review: `paid_after_close`, `amount_mismatch`, `currency_mismatch`, ...
    reason: String,
    /// The contradicting payment's WeChat transaction, when recorded.
    anomaly_transaction_id: Option<String>,
    /// Its amount in fen, when recorded.
    anomaly_amount_fen: Option<i64>,
    /// Where it came from: `notification` or `query`.
    anomaly_source: Option<String>,
}

/// The review queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewsView {
    /// The longest waiting first, at most 200.
    reviews: Vec<ReviewView>,
}

/// An operator's decision about an order in REVIEW.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    /// `accept_payment` (WeChat has the payment; keep it), `refund` (WeChat has it; give it
    /// all back) or `close` (WeChat has none).
    action: crate::reviews::Resolution,
    /// Why, for the audit log (and the payer, on a refund): 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    reason: String,
}

impl ResolveBody {
    /// The decision and its reason, checked.
    pub(super) fn checked(self) -> Result<(crate::reviews::Resolution, String), AppError> {
        Ok((self.action, crate::domain::checked_reason(&self.reason)?))
    }
}

/// The orders a payment contradicted, waiting for an operator.
#[utoipa::path(get, path = "/admin/v1/reviews", tag = "admin", operation_id = "list_reviews",
    security(("operator" = [])),
    responses(
        (status = 200, description = "The review queue", body = ReviewsView),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
    ))]
async fn list_reviews(
    State(state): State<AppState>,
    Operator(_operator): Operator,
) -> Result<Json<ReviewsView>, AppError> {
    let reviews = state.reviews.list().await?;
    Ok(Json(ReviewsView {
        reviews: reviews
            .iter()
            .map(|r| ReviewView {
                order: OrderView::from(&r.order),
                openid: r.order.openid.to_string(),
                reason: r.reason.clone(),
                anomaly_transaction_id: r.transaction_id.clone(),
                anomaly_amount_fen: r.amount_fen,
                anomaly_source: r.source.clone(),
            })
            .collect(),
    }))
}

/// Settles an order in REVIEW. WeChat is asked first: `accept_payment` and `refund` need it
/// to say the order was paid (a `refund` also needs its amount to be the order's), `close`
/// needs it to say it was not.
#[utoipa::path(post, path = "/admin/v1/orders/{id}/resolve", tag = "admin", operation_id = "resolve_order",
    security(("operator" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "The order as it is now", body = OrderView),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`resolution_not_allowed`: not in REVIEW, or WeChat's answer rules the action out", body = ErrorBody),
        (status = 503, description = "`payment_unavailable`: WeChat could not be asked; try again", body = ErrorBody),
    ))]
async fn resolve_order(
    State(state): State<AppState>,
    Operator(operator): Operator,
    PathOrderId(id): PathOrderId,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<OrderView>, AppError> {
    let (action, reason) = body.checked()?;
    let order = state
        .reviews
        .resolve(&operator, id, action, &reason)
        .await?;
    Ok(Json(OrderView::from(&order)))
}

/// A day to reconcile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconcileBody {
    /// The Beijing-time day, `YYYY-MM-DD`.
    date: String,
}

/// `?date=YYYY-MM-DD`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayQuery {
    /// The Beijing-time day, `YYYY-MM-DD`.
    date: String,
}

/// `YYYY-MM-DD`, checked.
pub(super) fn day(text: &str) -> Result<time::Date, AppError> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| AppError::InvalidRequest("date must be a day, YYYY-MM-DD".into()))
}

impl ReconcileBody {
    /// The day, checked.
    pub(super) fn checked(self) -> Result<time::Date, AppError> {
        day(&self.date)
    }
}

/// One difference between WeChat's bill and the books.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DifferenceView {
    /// `paid_at_wechat_not_here`, `paid_here_not_on_bill`, `amount_differs`,
    /// `refund_unknown_here`, `refund_differs` or `duplicate_line`.
    kind: String,
    out_trade_no: String,
    transaction_id: String,
    /// The refund, for refund differences (else empty).
    out_refund_no: String,
    /// What each side says (and, when healed, what WeChat's query confirmed).
    detail: String,
    /// Settled by this run through the normal rules, after WeChat confirmed it.
    healed: bool,
}

/// A day's reconciliation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReconciliationView {
    /// `YYYY-MM-DD`, Beijing time.
    date: String,
    /// `PENDING`, `RUNNING`, `MATCHED`, `DIFFERENCES` or `FAILED`.
    status: String,
    /// Runs so far.
    attempts: i32,
    /// Why the last run failed.
    error: Option<String>,
    /// `{"bill": {"lines", "payments", "refunds", "settlement_fen", "refund_fen", "fee_e5",
    /// "order_fen"} or null for a day without a bill, "books": {"paid_orders", "paid_fen",
    /// "refunds", "refunded_fen"}}`: amounts in integer fen, the fee in 0.00001 yuan.
    #[schema(value_type = Object)]
    totals: serde_json::Value,
    differences: Vec<DifferenceView>,
}

impl From<&crate::domain::reconciliation::Report> for ReconciliationView {
    fn from(r: &crate::domain::reconciliation::Report) -> Self {
        ReconciliationView {
            date: r.day.to_string(),
            status: r.status.as_str().to_owned(),
            attempts: r.attempts,
            error: r.error.clone(),
            totals: r.totals.clone(),
            differences: r
                .differences
                .iter()
                .map(|d| DifferenceView {
                    kind: d.kind.as_str().to_owned(),
                    out_trade_no: d.out_trade_no.clone(),
                    transaction_id: d.transaction_id.clone(),
                    out_refund_no: d.out_refund_no.clone(),
                    detail: d.detail.clone(),
                    healed: d.healed,
                })
                .collect(),
        }
    }
}

/// Reconciles a day now: WeChat's bill against the books; the safe differences are healed
/// after WeChat confirms them. Audited.
#[utoipa::path(post, path = "/admin/v1/reconciliations", tag = "admin", operation_id = "run_reconciliation",
    security(("operator" = [])),
    request_body = ReconcileBody,
    responses(
        (status = 200, description = "The day's report (a failed run is `FAILED` with its error; it is tried again)", body = ReconciliationView),
        (status = 400, description = "`invalid_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 409, description = "`reconciliation_running`: another replica is running it", body = ErrorBody),
    ))]
async fn run_reconciliation(
    State(state): State<AppState>,
    Operator(operator): Operator,
    JsonBody(body): JsonBody<ReconcileBody>,
) -> Result<Json<ReconciliationView>, AppError> {
    let day = body.checked()?;
    let report = state
        .reconciler
        .run_for(&operator, day)
        .await?
        .ok_or(AppError::ReconciliationRunning)?;
    Ok(Json(ReconciliationView::from(&report)))
}

/// A day's reconciliation report.
#[utoipa::path(get, path = "/admin/v1/reconciliations", tag = "admin", operation_id = "get_reconciliation",
    security(("operator" = [])),
    params(DayQuery),
    responses(
        (status = 200, description = "The day's report", body = ReconciliationView),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no operator's token", body = ErrorBody),
        (status = 404, description = "`reconciliation_not_found`: the day was never reconciled", body = ErrorBody),
    ))]
async fn get_reconciliation(
    State(state): State<AppState>,
    Operator(_operator): Operator,
    QueryParams(query): QueryParams<DayQuery>,
) -> Result<Json<ReconciliationView>, AppError> {
    let report = state
        .reconciler
        .report(day(&query.date)?)
        .await?
        .ok_or(AppError::ReconciliationNotFound)?;
    Ok(Json(ReconciliationView::from(&report)))
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/admin/v1/openapi.json", tag = "admin", operation_id = "admin_openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of the admin API")))]
async fn openapi_json() -> Json<serde_json::Value> {
    Json(document())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Minipay order-svc admin API",
        description = "The operators' API: orders with their refunds and history, refunds. Every call needs an operator's bearer token (ADMIN_TOKENS); every action is audited. Errors are `{\"code\", \"message\"}`.",
        version = "1"
    ),
    paths(
        search_orders,
        get_order,
        create_refund,
        list_reviews,
        resolve_order,
        list_dead_letters,
        replay_dead_letter,
        run_reconciliation,
        get_reconciliation,
        openapi_json
    ),
    modifiers(&OperatorAuth)
)]
struct AdminApiDoc;

struct OperatorAuth;

impl utoipa::Modify for OperatorAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An operator's token; ADMIN_TOKENS holds its SHA-256"))
                    .build(),
            ),
        );
    }
}

/// The admin API's OpenAPI document.
pub fn document() -> serde_json::Value {
    serde_json::to_value(AdminApiDoc::openapi())
        .unwrap_or_else(|e| unreachable!("the generated OpenAPI document always serializes: {e}"))
}

//! The order state machine in SQL. Every transition is one guarded UPDATE
//! (`WHERE id = $1 AND status = <from>`) inside a transaction that also writes its outbox
//! event, so a transition and its announcement commit together or not at all, and a
//! duplicate can never apply twice.

use prost::Message as _;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Order, OrderStatus, unix_ms};
use crate::error::AppError;
use crate::store::{ORDER_COLUMNS, order_from_row};

/// Where a payment claim came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A verified WeChat notification, through notify-svc and RabbitMQ.
    Notification,
    /// Our own order query at WeChat.
    Query,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Notification => "notification",
            Source::Query => "query",
        }
    }
}

/// What WeChat says was paid.
#[derive(Debug, Clone)]
pub struct PaymentFacts {
    /// Our order number.
    pub out_trade_no: String,
    /// WeChat's number.
    pub transaction_id: String,
    /// What was paid, in fen.
    pub amount_fen: i64,
    /// The Mini Program it was paid in.
    pub appid: String,
    /// The merchant it was paid to.
    pub mch_id: String,
    /// When (Unix seconds; 0 if unknown).
    pub paid_at_unix: i64,
    /// The event's id, for the record.
    pub event_id: Option<String>,
    /// Notification or query.
    pub source: Source,
}

/// The merchant this order-svc sells for.
#[derive(Debug, Clone)]
pub struct ExpectedMerchant {
    /// AppID.
    pub appid: String,
    /// Merchant number.
    pub mch_id: String,
}

/// What applying a payment did.
#[derive(Debug)]
pub enum Applied {
    /// PENDING → PAID (and an `order.paid` event in the outbox).
    Paid(Order),
    /// Already PAID by this same transaction: nothing changed, nothing emitted.
    Duplicate(Order),
    /// The payment contradicts the order, which went to REVIEW.
    Review(Order, &'static str),
    /// The payment cannot apply and the order was not changed (unknown order, another
    /// merchant, a second payment, an order already under review).
    Rejected(&'static str),
    /// This same contradicting payment was recorded before: nothing more to do.
    AlreadyRecorded,
}

async fn lock_by_number(
    conn: &mut PgConnection,
    out_trade_no: &str,
) -> Result<Option<Order>, AppError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE out_trade_no = $1 FOR UPDATE"
    ))
    .bind(out_trade_no)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Records a payment that contradicts its order; `false` when this same payment (order
/// number and transaction) was recorded before, i.e. this is a duplicate of it.
async fn record_anomaly(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order_id: Option<Uuid>,
    reason: &str,
) -> Result<bool, AppError> {
    let (seen,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM payment_anomalies WHERE out_trade_no = $1 AND transaction_id IS NOT DISTINCT FROM $2)",
    )
    .bind(&facts.out_trade_no)
    .bind(&facts.transaction_id)
    .fetch_one(&mut *conn)
    .await?;
    if seen {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO payment_anomalies (out_trade_no, order_id, reason, transaction_id, amount_fen, source, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&facts.out_trade_no)
    .bind(order_id)
    .bind(reason)
    .bind(&facts.transaction_id)
    .bind(facts.amount_fen)
    .bind(facts.source.as_str())
    .bind(&facts.event_id)
    .execute(&mut *conn)
    .await?;
    metrics::counter!("payment_anomalies_total", "reason" => reason.to_owned(), "source" => facts.source.as_str()).increment(1);
    tracing::error!(out_trade_no = %facts.out_trade_no, transaction_id = %facts.transaction_id, amount_fen = facts.amount_fen, reason, source = facts.source.as_str(), "payment contradicts the order");
    Ok(true)
}

/// Writes an event to the outbox (in the caller's transaction).
pub async fn outbox(
    conn: &mut PgConnection,
    routing_key: &str,
    payload: Vec<u8>,
    event_id: Uuid,
) -> Result<(), AppError> {
    let trace_id = service_runtime::telemetry::current_trace_id().unwrap_or_default();
    sqlx::query("INSERT INTO outbox (id, routing_key, payload, trace_id) VALUES ($1, $2, $3, $4)")
        .bind(event_id)
        .bind(routing_key)
        .bind(payload)
        .bind(trace_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn to_review(
    conn: &mut PgConnection,
    order: &Order,
    facts: &PaymentFacts,
    reason: &'static str,
) -> Result<Applied, AppError> {
    if !record_anomaly(conn, facts, Some(order.id), reason).await? {
        return Ok(Applied::AlreadyRecorded);
    }
    let row = sqlx::query(&format!(
        "UPDATE orders SET status = 'REVIEW', review_reason = $3, updated_at = now()
         WHERE id = $1 AND status = $2 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id)
    .bind(order.status.as_str())
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Applied::Review(order_from_row(&row)?, reason)),
        None => Ok(Applied::Rejected(reason)),
    }
}

/// Applies a payment to its order, inside the caller's transaction: the order is locked,
/// checked (merchant, amount, state), and moved by a guarded UPDATE.
pub async fn apply_payment(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    merchant: &ExpectedMerchant,
) -> Result<Applied, AppError> {
    if facts.appid != merchant.appid || facts.mch_id != merchant.mch_id {
        if !record_anomaly(conn, facts, None, "other_merchant").await? {
            return Ok(Applied::AlreadyRecorded);
        }
        return Ok(Applied::Rejected("other_merchant"));
    }
    let Some(order) = lock_by_number(conn, &facts.out_trade_no).await? else {
        if !record_anomaly(conn, facts, None, "unknown_order").await? {
            return Ok(Applied::AlreadyRecorded);
        }
        return Ok(Applied::Rejected("unknown_order"));
    };
    match order.status {
        OrderStatus::Pending if order.amount.as_i64() != facts.amount_fen => {
            to_review(conn, &order, facts, "amount_mismatch").await
        }
        OrderStatus::Pending => {
            let paid_at = OffsetDateTime::from_unix_timestamp(facts.paid_at_unix)
                .ok()
                .filter(|_| facts.paid_at_unix > 0);
            let row = sqlx::query(&format!(
                "UPDATE orders SET status = 'PAID', transaction_id = $2, paid_at = COALESCE($3, now()), next_query_at = NULL, updated_at = now()
                 WHERE id = $1 AND status = 'PENDING' RETURNING {ORDER_COLUMNS}"
            ))
            .bind(order.id)
            .bind(&facts.transaction_id)
            .bind(paid_at)
            .fetch_one(&mut *conn)
            .await?;
            let paid = order_from_row(&row)?;
            let event_id = Uuid::now_v7();
            let event = proto::events::v1::OrderPaid {
                event_id: event_id.to_string(),
                order_id: paid.id.to_string(),
                out_trade_no: paid.out_trade_no.to_string(),
                transaction_id: facts.transaction_id.clone(),
                amount_fen: paid.amount.as_i64(),
                openid: paid.openid.clone(),
                paid_at_unix_ms: paid.paid_at.map_or(0, unix_ms),
            };
            outbox(conn, messaging::ORDER_PAID, event.encode_to_vec(), event_id).await?;
            metrics::counter!("orders_paid_total", "source" => facts.source.as_str()).increment(1);
            tracing::info!(order_id = %paid.id, out_trade_no = %paid.out_trade_no, transaction_id = %facts.transaction_id, source = facts.source.as_str(), "order paid");
            Ok(Applied::Paid(paid))
        }
        OrderStatus::Paid
        | OrderStatus::Refunding
        | OrderStatus::PartiallyRefunded
        | OrderStatus::Refunded
            if order.transaction_id.as_deref() == Some(facts.transaction_id.as_str()) =>
        {
            Ok(Applied::Duplicate(order))
        }
        OrderStatus::Paid
        | OrderStatus::Refunding
        | OrderStatus::PartiallyRefunded
        | OrderStatus::Refunded => {
            if !record_anomaly(conn, facts, Some(order.id), "second_payment").await? {
                return Ok(Applied::AlreadyRecorded);
            }
            Ok(Applied::Rejected("second_payment"))
        }
        OrderStatus::Closed => to_review(conn, &order, facts, "paid_after_close").await,
        OrderStatus::Review => {
            if !record_anomaly(conn, facts, Some(order.id), "order_under_review").await? {
                return Ok(Applied::AlreadyRecorded);
            }
            Ok(Applied::Rejected("order_under_review"))
        }
    }
}

/// PENDING → CLOSED (and an `order.closed` event), inside the caller's transaction; `None`
/// when the order is no longer PENDING.
pub async fn close(
    conn: &mut PgConnection,
    order: &Order,
    reason: &'static str,
) -> Result<Option<Order>, AppError> {
    let row = sqlx::query(&format!(
        "UPDATE orders SET status = 'CLOSED', closed_at = now(), close_reason = $2, next_query_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'PENDING' RETURNING {ORDER_COLUMNS}"
    ))
    .bind(order.id)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let closed = order_from_row(&row)?;
    let event_id = Uuid::now_v7();
    let event = proto::events::v1::OrderClosed {
        event_id: event_id.to_string(),
        order_id: closed.id.to_string(),
        out_trade_no: closed.out_trade_no.to_string(),
        reason: reason.to_owned(),
        closed_at_unix_ms: unix_ms(OffsetDateTime::now_utc()),
    };
    outbox(
        conn,
        messaging::ORDER_CLOSED,
        event.encode_to_vec(),
        event_id,
    )
    .await?;
    metrics::counter!("orders_closed_total", "reason" => reason).increment(1);
    tracing::info!(order_id = %closed.id, out_trade_no = %closed.out_trade_no, reason, "order closed");
    Ok(Some(closed))
}

/// Locks one order for a transition by id (and owner, when given).
pub async fn lock(
    conn: &mut PgConnection,
    id: Uuid,
    openid: Option<&str>,
) -> Result<Option<Order>, AppError> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND ($2::text IS NULL OR openid = $2) FOR UPDATE"))
        .bind(id)
        .bind(openid)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

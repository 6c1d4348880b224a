//! The order state machine applied to stored orders. Each transition runs inside the
//! caller's transaction: the order row is locked, the decision is taken from what is stored,
//! the status moves by a guarded UPDATE (`crate::store::orders`), and the outbox event is
//! written in the same transaction, so a transition and its announcement commit together or
//! not at all, and a duplicate can never apply twice.

use prost::Message as _;
use sqlx::PgConnection;
use tracing::Span;
use uuid::Uuid;

use crate::convert;
use crate::domain::{CloseReason, ExpectedMerchant, Order, OrderStatus, PaymentFacts};
use crate::error::AppError;
use crate::store::outbox::{self, OutboxEvent};
use crate::store::{anomalies, orders};

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

impl Applied {
    /// The order as it is now, if applying changed it (what the cache must hear about).
    pub fn changed(&self) -> Option<&Order> {
        match self {
            Applied::Paid(o) | Applied::Review(o, _) => Some(o),
            Applied::Duplicate(_) | Applied::Rejected(_) | Applied::AlreadyRecorded => None,
        }
    }
}

/// Writes an event to the outbox, stamped with the current trace id.
async fn announce(
    conn: &mut PgConnection,
    routing_key: &str,
    event_id: Uuid,
    payload: Vec<u8>,
) -> Result<(), AppError> {
    let event = OutboxEvent {
        id: event_id,
        routing_key: routing_key.to_owned(),
        payload,
        trace_id: service_runtime::telemetry::current_trace_id().unwrap_or_default(),
    };
    outbox::write(conn, &event).await?;
    Ok(())
}

/// Records a contradicting payment (a metric and an error log line with it); `false` when
/// this same payment was recorded before.
async fn record_anomaly(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order: Option<&Order>,
    reason: &'static str,
) -> Result<bool, AppError> {
    if !anomalies::record(conn, facts, order.map(|o| o.id), reason).await? {
        return Ok(false);
    }
    metrics::counter!("payment_anomalies_total", "reason" => reason, "source" => facts.source.as_str()).increment(1);
    tracing::error!(transaction_id = %facts.transaction_id, amount_fen = facts.amount.get(), reason, source = facts.source.as_str(), "payment contradicts the order");
    Ok(true)
}

async fn reject(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    order: Option<&Order>,
    reason: &'static str,
) -> Result<Applied, AppError> {
    Ok(if record_anomaly(conn, facts, order, reason).await? {
        Applied::Rejected(reason)
    } else {
        Applied::AlreadyRecorded
    })
}

async fn to_review(
    conn: &mut PgConnection,
    order: &Order,
    facts: &PaymentFacts,
    reason: &'static str,
) -> Result<Applied, AppError> {
    if !record_anomaly(conn, facts, Some(order), reason).await? {
        return Ok(Applied::AlreadyRecorded);
    }
    Ok(match orders::mark_review(conn, order, reason).await? {
        Some(order) => Applied::Review(order, reason),
        None => Applied::Rejected(reason),
    })
}

/// Applies a payment to its order, inside the caller's transaction: the order is locked,
/// checked (merchant, amount, state), and moved by a guarded UPDATE.
#[tracing::instrument(skip_all, fields(out_trade_no = %facts.out_trade_no, order_id))]
pub async fn apply_payment(
    conn: &mut PgConnection,
    facts: &PaymentFacts,
    merchant: &ExpectedMerchant,
) -> Result<Applied, AppError> {
    if !merchant.is_payee_of(facts) {
        return reject(conn, facts, None, "other_merchant").await;
    }
    let Some(order) = orders::lock_by_number(conn, &facts.out_trade_no).await? else {
        return reject(conn, facts, None, "unknown_order").await;
    };
    Span::current().record("order_id", tracing::field::display(order.id));
    match order.status {
        OrderStatus::Pending if order.amount != facts.amount => {
            to_review(conn, &order, facts, "amount_mismatch").await
        }
        OrderStatus::Pending => {
            let paid = orders::mark_paid(conn, &order, &facts.transaction_id, facts.paid_at)
                .await?
                .ok_or_else(|| AppError::internal("mark paid", "the locked order left PENDING"))?;
            let event_id = Uuid::now_v7();
            let event = convert::order_paid(&paid, &event_id);
            announce(conn, messaging::ORDER_PAID, event_id, event.encode_to_vec()).await?;
            metrics::counter!("orders_paid_total", "source" => facts.source.as_str()).increment(1);
            tracing::info!(transaction_id = %facts.transaction_id, source = facts.source.as_str(), "order paid");
            Ok(Applied::Paid(paid))
        }
        status
            if status.is_paid() && order.transaction_id.as_ref() == Some(&facts.transaction_id) =>
        {
            Ok(Applied::Duplicate(order))
        }
        status if status.is_paid() => reject(conn, facts, Some(&order), "second_payment").await,
        OrderStatus::Closed => to_review(conn, &order, facts, "paid_after_close").await,
        _ => reject(conn, facts, Some(&order), "order_under_review").await,
    }
}

/// PENDING → CLOSED (and an `order.closed` event), inside the caller's transaction; `None`
/// when the order is no longer PENDING.
#[tracing::instrument(skip_all, fields(order_id = %order.id, out_trade_no = %order.out_trade_no))]
pub async fn close(
    conn: &mut PgConnection,
    order: &Order,
    reason: CloseReason,
) -> Result<Option<Order>, AppError> {
    let Some(closed) = orders::mark_closed(conn, order, reason).await? else {
        return Ok(None);
    };
    let event_id = Uuid::now_v7();
    let event = convert::order_closed(&closed, reason, &event_id);
    announce(
        conn,
        messaging::ORDER_CLOSED,
        event_id,
        event.encode_to_vec(),
    )
    .await?;
    metrics::counter!("orders_closed_total", "reason" => reason.as_str()).increment(1);
    tracing::info!(reason = reason.as_str(), "order closed");
    Ok(Some(closed))
}
